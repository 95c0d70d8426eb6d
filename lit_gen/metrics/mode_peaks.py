"""Does a 2D energy map ``exp(−E(x))`` peak at known mode centres? (the DDAEBM 25gaussians check).

The authors' toy code draws the density of the data level as ``exp(f(x, 0))`` with their negative energy
``f = −E``, normalised over a grid, with no conditioning on x_1 (Geng et al. 2024, ``train_toy.py``); at the
equilibrium of the game ``p_θ(x_0 | x_1) ∝ exp(−E(x_0, 0)) N(x_1; a_1 x_0, β_1 I)`` equals
``q(x_0 | x_1) ∝ q_0(x_0) N(x_1; a_1 x_0, β_1 I)`` for every x_1, so ``E(x, 0) = −log q_0(x) + const``:
the map is the data-level marginal and its maxima sit on the modes.

Criterion. For each centre c, take the square cell ``c + [−h, h]²`` (h = half the distance to the nearest
other centre, so cells do not overlap) on an ``n × n`` grid, and the log-map ``−E`` on it. The mode counts as
a *peak* when

    ‖argmax_cell(−E) − c‖ ≤ radius   and   max_cell(−E) − max_edge(−E) ≥ min_contrast,

i.e. the highest point of the cell lies within ``radius`` of the centre and stands at least ``min_contrast``
nats above the highest point of the cell's edge (a strict interior maximum, not a plateau or a slope).
The returned fraction is over all centres. The true mixture's energy scores 1; a flat or monotone energy
scores 0 (the cell maximum lies on its edge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ModePeakReport", "mode_peak_report"]


@dataclass(frozen=True)
class ModePeakReport:
    """Result of :func:`mode_peak_report`; per-mode tensors have shape (K,)."""

    fraction: float
    """Fraction of the centres that are peaks of the map (see the module docstring)."""
    offset: Tensor
    """Distance from each centre to the maximum of −E over its cell."""
    contrast: Tensor
    """``max_cell(−E) − max_edge(−E)`` per cell, in nats (> 0: an interior maximum)."""


def _half_cell(centres: Tensor) -> float:
    dist = torch.cdist(centres, centres)
    dist.fill_diagonal_(float("inf"))
    return 0.5 * float(dist.min())


@torch.no_grad()
def mode_peak_report(
    energy: Callable[[Tensor], Tensor],
    centres: Tensor,
    radius: float,
    min_contrast: float = 0.5,
    n: int = 41,
) -> ModePeakReport:
    """Score ``exp(−energy)`` against the mode ``centres`` (K, 2); see the module docstring.

    Args:
        energy: ``(m, 2) -> (m,)`` energy of the map (e.g. ``lambda x: module.energy(x, 0)``).
        centres: the K >= 2 mode centres.
        radius: how far from its centre a cell's maximum may lie; less than half the cell width.
        min_contrast: nats by which the maximum must exceed the highest point of the cell's edge.
        n: grid points per side of a cell (odd, so that the centre is on the grid).
    """
    if centres.dim() != 2 or centres.shape[1] != 2 or centres.shape[0] < 2:
        raise ValueError(f"centres must have shape (K >= 2, 2), got {tuple(centres.shape)}")
    if not isinstance(n, int) or n < 3 or n % 2 == 0:
        raise ValueError(f"n must be an odd int >= 3 (the centre must be a grid point), got {n!r}")
    centres = centres.float()
    h = _half_cell(centres)
    if not 0.0 < radius < h:
        raise ValueError(f"radius must lie in (0, {h:.4g}) (half the cell width), got {radius}")
    side = torch.linspace(-h, h, n)
    offsets = torch.stack(torch.meshgrid(side, side, indexing="xy"), dim=-1).reshape(-1, 2)
    points = (centres[:, None, :] + offsets[None]).reshape(-1, 2)
    log_map = -energy(points).detach().float().reshape(len(centres), n * n)
    if not torch.isfinite(log_map).all():
        raise ValueError("the energy is not finite on the grid around the centres; check the model for divergence")
    best = log_map.max(dim=1)
    offset = offsets[best.indices].norm(dim=1)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="xy")
    edge = ((i == 0) | (i == n - 1) | (j == 0) | (j == n - 1)).reshape(-1).nonzero().squeeze(1)
    contrast = best.values - log_map[:, edge].max(dim=1).values
    peak = (offset <= radius) & (contrast >= min_contrast)
    return ModePeakReport(float(peak.float().mean()), offset, contrast)

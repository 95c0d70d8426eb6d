"""Sanity checks of a chain run against the box the data live in: chains that fly off, chains that do not move.

Neither is an error (a tempered or annealed chain may legitimately leave the box for a while), but both usually
mean a step size off by orders of magnitude, and both are silent otherwise: an EBM trained on chains at
|x| = 600 for data within ±4 learns nothing about the data, and chains that do not move make contrastive
divergence compare the data with (almost) the initial noise.

With the box ``[low, high]`` (per coordinate), centre ``c = (low + high)/2`` and half-width ``h = (high − low)/2``:

- *reach* ``max_{i,j} |x_ij − c_j| / h_j`` over chains i and coordinates j: above ``far`` (default 10) the
  chains went far outside the box;
- *movement* ``mean_i ‖x_i − x⁰_i‖ / ‖h‖`` (RMS over coordinates): below ``still`` (default 1e-3) the chains
  hardly moved in the run.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["chain_sanity_problems"]


def chain_sanity_problems(
    init: Tensor, final: Tensor, low: Tensor, high: Tensor, far: float = 10.0, still: float = 1e-3
) -> dict[str, str]:
    """Problems of one chain run from ``init`` to ``final`` (both ``(B, *shape)``) against the box ``[low, high]``.

    Returns ``{"far": message}`` and/or ``{"still": message}`` (empty when both checks pass); each message gives
    the figures and what to change. ``low``/``high`` broadcast against one state.
    """
    with torch.no_grad():
        low = low.to(device=final.device, dtype=torch.float64)
        high = high.to(device=final.device, dtype=torch.float64)
        centre, half = (low + high) / 2, ((high - low) / 2).clamp_min(1e-12)
        x, x0 = final.detach().double(), init.detach().double()
        b = x.shape[0]
        reach = ((x - centre).abs() / half).reshape(b, -1).amax(dim=1)
        scale = half.expand_as(x[0]).reshape(-1).pow(2).mean().sqrt()
        move = (x - x0).reshape(b, -1).pow(2).mean(dim=1).sqrt() / scale
        top, worst_abs, moved = torch.stack([reach.max(), x.abs().max(), move.mean()]).tolist()
    problems: dict[str, str] = {}
    box = f"[{float(low.min()):.3g}, {float(high.max()):.3g}]"
    if not top <= far:  # also true for NaN
        problems["far"] = (
            f"MCMC chains left the data's box: max |x| = {worst_abs:.3g} for a box of {box} ({top:.3g} half-widths "
            f"from its centre, over {b} chains). The step size is probably too large for this energy: lower it "
            "(or set a sample_clamp / grad_clamp on the sampler)."
        )
    if moved < still:
        problems["still"] = (
            f"MCMC chains hardly moved: mean displacement {moved:.2e} of the box's half-width {float(scale):.3g} "
            f"over the run ({b} chains). The step size is probably too small (or the energy's gradient vanishes): "
            "raise it, or run more steps."
        )
    return problems

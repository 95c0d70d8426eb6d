"""Periodic toy data: wrapped Gaussian mixtures of angles on the torus ``[−π, π)^d``.

A wrapped mixture draws ``x ~ Σ_k w_k N(μ_k, s_k² I)`` and maps every coordinate into ``[−π, π)``; its density
(w.r.t. the flat measure on the box) sums the mixture over the lattice images ``x + 2πn``, ``n ∈ ℤ^d``:
``p(x) = Σ_n Σ_k w_k N(x + 2πn; μ_k, s_k² I)``. The sum is truncated to ``n ∈ {−K..K}^d`` with ``K`` chosen
so that every dropped image lies at least ``8 s_max`` beyond the box (relative error below ``e^{−32}``).
Used by the Riemannian kernel score (:class:`~lit_gen.diffusion.kernel_score.TorusKernelDenoiser`).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from lit_gen.data.mixture import GaussianMixture

__all__ = ["WrappedGaussianMixture", "wrapped_gaussians"]


class WrappedGaussianMixture:
    """A :class:`~lit_gen.data.mixture.GaussianMixture` wrapped onto ``[−π, π)^d`` (module docstring)."""

    def __init__(self, mixture: GaussianMixture) -> None:
        self.mixture = mixture
        reach = float(mixture.means.abs().max()) + 8.0 * float(mixture.stds.max())
        # images n with |2πn| − π − reach > 0 contribute nothing for x in the box
        self.num_images = max(1, math.ceil((reach + math.pi) / (2 * math.pi)))
        d = mixture.dim
        if (2 * self.num_images + 1) ** d > 10_000:
            raise ValueError(
                f"a wrapped mixture in d={d} dimensions with components that wide needs "
                f"{(2 * self.num_images + 1) ** d} lattice images; use fewer dimensions or narrower components"
            )
        grid = range(-self.num_images, self.num_images + 1)
        self.shifts = 2 * math.pi * torch.tensor(list(itertools.product(grid, repeat=d)), dtype=torch.float64)

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the torus."""
        return self.mixture.dim

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact (to truncation) ``log p(x)`` for ``x`` of shape ``(n, d)`` in ``[−π, π)^d``; ``(n,)`` in ``x``'s dtype.

        Points outside the box get ``−inf`` (no mass there): wrap them first if they are angles.
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        x64 = x.to(torch.float64)
        images = (x64[:, None, :] + self.shifts.to(x64.device)[None]).reshape(-1, self.dim)
        lp = self.mixture.log_prob(images).reshape(x.shape[0], -1)
        out = torch.logsumexp(lp, dim=1)
        inside = ((x64 >= -math.pi) & (x64 < math.pi)).all(dim=1)
        out = out.masked_fill(~inside, -math.inf).masked_fill(torch.isnan(x64).any(dim=1), math.nan)
        return out.to(x.dtype if x.is_floating_point() else torch.float32)

    def __call__(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` float32 points ``(n, d)`` in ``[−π, π)^d``."""
        return self.sample_with_labels(n, generator)[0]

    def sample_with_labels(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The points of :meth:`sample` (same generator state, same points) and the index ``(n,)`` (``torch.long``)
        of the component each was drawn from."""
        x, comp = self.mixture.sample_with_labels(n, generator)
        x = x.to(torch.float64)
        return (torch.remainder(x + math.pi, 2 * math.pi) - math.pi).to(torch.float32), comp


def wrapped_gaussians() -> WrappedGaussianMixture:
    """``wrapped_gaussians``: six wrapped Gaussians (std 0.35) on the 2-torus, three of them centred on the
    seam ``±π`` so that their mass is split across the box's edges — only a periodic model joins the halves."""
    p = math.pi
    means = [(p, 0.0), (0.0, p), (p, p), (-p / 2, -p / 2), (p / 2, -p / 2), (-p / 2, p / 2)]
    return WrappedGaussianMixture(GaussianMixture(torch.ones(6), means, 0.35))

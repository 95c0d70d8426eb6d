"""Isotropic Gaussian mixture with an exact density, the ground truth for toy-data NLL."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class GaussianMixture:
    """Mixture ``p(x) = Σ_k w_k N(x; μ_k, s_k² I)`` in ``d`` dimensions.

    ``log p(x) = logsumexp_k [log w_k − d/2 log(2π s_k²) − ‖x − μ_k‖² / (2 s_k²)]``.

    Args:
        weights: ``(K,)`` non-negative mixing weights (normalised here; need not sum to 1).
        means: ``(K, d)`` component means.
        stds: ``(K,)`` positive isotropic standard deviations, or a single number for all components.
    """

    def __init__(
        self,
        weights: Tensor | Sequence[float],
        means: Tensor | Sequence[Sequence[float]],
        stds: Tensor | Sequence[float] | float,
    ) -> None:
        means_t = torch.as_tensor(means, dtype=torch.float64)
        if means_t.ndim != 2:
            raise ValueError(f"means must have shape (K, d), got {tuple(means_t.shape)}")
        k = means_t.shape[0]
        weights_t = torch.as_tensor(weights, dtype=torch.float64)
        if weights_t.shape != (k,):
            raise ValueError(f"weights must have shape (K,) = ({k},) like means, got {list(weights_t.shape)}")
        if not torch.isfinite(weights_t).all() or (weights_t < 0).any() or weights_t.sum() <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all zero, got {weights_t.tolist()}")
        stds_t = torch.as_tensor(stds, dtype=torch.float64)
        if stds_t.ndim == 0:
            stds_t = stds_t.expand(k).clone()
        if stds_t.shape != (k,):
            raise ValueError(f"stds must be a number or have shape (K,) = ({k},), got {tuple(stds_t.shape)}")
        if not torch.isfinite(stds_t).all() or (stds_t <= 0).any():
            raise ValueError(f"stds must be finite and positive, got {stds_t.tolist()}")
        self.weights = weights_t / weights_t.sum()
        self.means = means_t
        self.stds = stds_t

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the data space."""
        return self.means.shape[1]

    @property
    def num_components(self) -> int:
        """Number of components ``K``."""
        return self.means.shape[0]

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` for ``x`` of shape ``(n, d)``; returns ``(n,)`` in ``x``'s dtype.

        Computed in float64 so that far-out points do not underflow to ``-inf`` prematurely.
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        x64 = x.to(torch.float64)
        means = self.means.to(x64.device)
        var = self.stds.to(x64.device) ** 2
        # The non-matmul mode avoids the ‖x‖² + ‖μ‖² − 2x·μ cancellation for points far from the means.
        sq = torch.cdist(x64, means, compute_mode="donot_use_mm_for_euclid_dist").pow(2)  # (n, K)
        log_comp = -0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        out = torch.logsumexp(torch.log(self.weights.to(x64.device)) + log_comp, dim=1)
        return out.to(x.dtype if x.is_floating_point() else torch.float32)

    def __call__(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` float32 points ``(n, d)``: component ``k ~ Cat(w)``, then ``μ_k + s_k ε``."""
        return self.sample_with_labels(n, generator)[0]

    def sample_with_labels(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` points as :meth:`sample` does (the same points for the same generator state) together with
        the index ``k`` of the component each came from: ``(x (n, d) float32, k (n,) torch.long)``."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if n == 0:
            return torch.empty(0, self.dim), torch.empty(0, dtype=torch.long)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[comp] + self.stds[comp, None] * eps
        return x.to(torch.float32), comp

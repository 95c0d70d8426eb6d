"""Score-matching objectives for energies E(x) with score s(x) = −∇ₓE(x).

* Denoising score matching (Vincent 2011), one or several noise levels weighted by σ² (Song & Ermon 2019):
  ``L = E_{σ, ε} σ² ‖s(x + σε) + ε/σ‖² / 2``.
* Sliced score matching (Song, Garg, Shi & Ermon 2019) with Gaussian projections v:
  ``L = E_v[vᵀ∇ₓs(x)v + ½(vᵀs(x))²]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Energy = Callable[[Tensor], Tensor]


def _score(energy: Energy, x: Tensor) -> Tensor:
    x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    return -grad


def denoising_score_matching_loss(
    energy: Energy, x: Tensor, sigmas: Sequence[float], generator: torch.Generator | None = None
) -> Tensor:
    """DSM with σ drawn uniformly per sample from ``sigmas``; each term weighted by σ² (scale-free)."""
    sig = torch.as_tensor(list(sigmas), dtype=x.dtype, device=x.device)
    idx = torch.randint(len(sig), (x.shape[0],), device=x.device, generator=generator)
    s = sig[idx].view(-1, *([1] * (x.dim() - 1)))
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    score = _score(energy, (x + s * eps).detach())
    return 0.5 * (s * score + eps).flatten(1).pow(2).sum(1).mean()


def sliced_score_matching_loss(
    energy: Energy, x: Tensor, num_slices: int = 1, generator: torch.Generator | None = None
) -> Tensor:
    """Sliced score matching with Gaussian projections (Song, Garg, Shi & Ermon 2019)."""
    x = x.detach().repeat(num_slices, *([1] * (x.dim() - 1))).requires_grad_(True)
    v = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    score = _score(energy, x)
    sv = (score * v).flatten(1).sum(1)
    (grad_sv,) = torch.autograd.grad(sv.sum(), x, create_graph=True)
    return ((grad_sv * v).flatten(1).sum(1) + 0.5 * sv.pow(2)).mean()

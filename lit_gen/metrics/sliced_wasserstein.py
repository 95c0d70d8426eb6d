"""Sliced Wasserstein-1 distance between equal-size sample sets (Rabin et al. 2011; Bonneel et al. 2015)."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lit_gen.metrics._checks import as_sample_matrix, check_same_dim


def random_directions(num_projections: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``num_projections`` unit vectors of R^dim, uniform on the sphere, fixed by ``seed`` (CPU, float64)."""
    if not isinstance(num_projections, int) or num_projections < 1:
        raise ValueError(f"num_projections must be a positive int, got {num_projections!r}")
    gen = torch.Generator().manual_seed(int(seed))
    u = torch.randn(num_projections, dim, generator=gen, dtype=torch.float64)
    return u / u.norm(dim=1, keepdim=True)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, num_projections: int = 512, seed: int = 0
) -> torch.Tensor:
    """Monte-Carlo sliced Wasserstein-1 distance between two samples of equal size n.

        SW1(a, b) = (1/K) Σ_k (1/n) Σ_i | sort(a·u_k)_i − sort(b·u_k)_i |

    with K = ``num_projections`` unit directions u_k drawn uniformly on the sphere from a fixed ``seed``
    (the same directions on every call, so values are comparable across runs). In 1-D, W1 between two
    empirical measures of equal size is the mean gap between their order statistics, hence the sorts.
    Samples of any shape (N, *data_shape) are flattened. Returns a 0-d tensor (float32 at least) on ``a``'s
    device. NaNs in the inputs propagate to the result.
    """
    a2, b2 = as_sample_matrix(a, "a"), as_sample_matrix(b, "b")
    check_same_dim(a2, b2)
    if a2.shape[0] != b2.shape[0]:
        raise ValueError(
            f"sliced_wasserstein needs equal-size samples, got {a2.shape[0]} and {b2.shape[0]}; "
            "pass equal-size samples (e.g. subsample the larger set)"
        )
    dtype = torch.promote_types(torch.promote_types(a2.dtype, b2.dtype), torch.float32)
    u = random_directions(num_projections, a2.shape[1], seed).to(device=a2.device, dtype=dtype)
    pa = torch.sort(a2.to(dtype) @ u.T, dim=0).values
    pb = torch.sort(b2.to(device=a2.device, dtype=dtype) @ u.T, dim=0).values
    return (pa - pb).abs().mean()


class SlicedWassersteinDistance(Metric):
    """Accumulating SW1 (see :func:`sliced_wasserstein`) between generated ``preds`` and data ``target``.

    ``update(preds, target)`` stores both batches; ``compute()`` evaluates SW1 on everything stored, so the
    total numbers of preds and target must match. States are concatenated across processes under DDP.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    preds: list[torch.Tensor]
    target: list[torch.Tensor]

    def __init__(self, num_projections: int = 512, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_projections, int) or num_projections < 1:
            raise ValueError(f"num_projections must be a positive int, got {num_projections!r}")
        self.num_projections = num_projections
        self.seed = seed
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        p, t = as_sample_matrix(preds, "preds"), as_sample_matrix(target, "target")
        check_same_dim(p, t)
        self.preds.append(p.detach())
        self.target.append(t.detach())

    def compute(self) -> torch.Tensor:
        if len(self.preds) == 0:
            raise ValueError("SlicedWassersteinDistance.compute() called before any update(preds, target)")
        return sliced_wasserstein(
            dim_zero_cat(self.preds), dim_zero_cat(self.target), self.num_projections, self.seed
        )

"""Input checks shared by the sample-based metrics."""

from __future__ import annotations

import torch


def as_sample_matrix(x: torch.Tensor, name: str) -> torch.Tensor:
    """Flatten a batch (N, *shape) to (N, d), raising a clear error on anything that is not a sample set."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of samples shaped (N, *data_shape), got {type(x).__name__}"
        )
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one sample shaped (N, *data_shape), got {tuple(x.shape)}"
        )
    if not (torch.is_floating_point(x) or x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a real-valued tensor, got dtype {x.dtype}")
    return x.reshape(x.shape[0], -1)


def check_same_dim(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"the two sample sets have different dimensions ({a.shape[1]} vs {b.shape[1]} features "
            "per sample); compare samples of the same data shape"
        )

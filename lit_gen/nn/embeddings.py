"""Sinusoidal embedding of the diffusion time (Vaswani et al. 2017; Ho et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalTimeEmbedding(nn.Module):
    """Map times t of shape (B,) to features of shape (B, dim).

    With ``half = dim // 2`` and frequencies ``w_k = max_period^(-k / half)`` for k = 0..half-1,

        emb(t) = [sin(t w_0), ..., sin(t w_{half-1}), cos(t w_0), ..., cos(t w_{half-1})]

    (Vaswani et al. 2017, "Attention is all you need"; used for the time step by Ho et al. 2020, DDPM).
    ``t`` is given in schedule units (0 .. T-1, roughly 0..1000); fractional values are fine. For odd
    ``dim`` a zero column is appended. The embedding has no parameters; its output is float32 (float64 for
    float64 t) whatever the module's dtype, because half-precision phases of t ~ 1000 would be meaningless.
    """

    freqs: torch.Tensor

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"SinusoidalTimeEmbedding needs an integer dim >= 2, got {dim!r}")
        if max_period <= 1.0:
            raise ValueError(f"max_period must be > 1, got {max_period}")
        self.dim = dim
        self.max_period = float(max_period)
        half = dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, dtype=torch.float32) / half)
        # Non-persistent: recomputed on construction, so checkpoints do not depend on it.
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() != 1:
            raise ValueError(f"SinusoidalTimeEmbedding expects t of shape (B,), got {tuple(t.shape)}")
        # Arguments reach ~1000 rad, so they are computed (and returned) in float32 at least; callers cast
        # the result to their layers' dtype.
        dtype = torch.promote_types(t.dtype, torch.float32) if torch.is_floating_point(t) else torch.float32
        args = t.to(dtype)[:, None] * self.freqs.to(dtype)[None, :]
        emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
        if self.dim % 2 == 1:
            emb = torch.nn.functional.pad(emb, (0, 1))
        return emb

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_period={self.max_period}"

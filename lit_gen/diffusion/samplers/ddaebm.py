"""DDAEBM's sampler: T generator calls from N(0, I), the energy unused (Geng et al. 2024; Xiao et al. 2022).

    x_T ∼ N(0, I);  for t = T−1 … 0:  z ∼ N(0, I),  x̂_0 = G(x, t, z),  x ← sample of q(x_t | x_{t+1} = x, x̂_0)

with the posterior mean only at t = 0. NFE = T.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lit_gen.diffusion.schedules import DDAEBMSchedule

LatentGenerator = Callable[[Tensor, Tensor, Tensor], Tensor]
"""A generator ``G(x_{t+1}, t, z) -> x̂_0``."""

__all__ = ["LatentGenerator", "ddaebm_sample"]


@torch.no_grad()
def ddaebm_sample(
    generator_net: LatentGenerator,
    schedule: DDAEBMSchedule,
    shape: Sequence[int],
    latent_dim: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Draw ``shape[0]`` samples of shape ``shape`` with ``schedule.num_timesteps`` generator evaluations."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or shape[0] <= 0:
        raise ValueError(f"shape must be (n, *data_shape) with n > 0, got {shape}")
    n = shape[0]
    x = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    for step in reversed(range(schedule.num_timesteps)):
        t = torch.full((n,), step, device=x.device, dtype=torch.long)
        z = torch.randn((n, latent_dim), generator=generator, device=x.device, dtype=dtype)
        x0 = generator_net(x, t, z).to(dtype)
        noise = torch.randn(shape, generator=generator, device=x.device, dtype=dtype)
        x = schedule.posterior_sample(x0, x, t, noise)
    return x

"""DDIM sampling (Song, Meng & Ermon, 2021, "Denoising diffusion implicit models", eq. 12)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion._random import randn
from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import SampleOutput, check_num_steps, full_t, prepare, timesteps
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["ddim_sample"]


def ddim_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 50,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    eta: float = 0.0,
    spacing: Literal["trailing", "leading", "linspace"] = "trailing",
) -> SampleOutput:
    """DDIM: from ``x_t`` to ``x_s`` (``s`` the next visited step, or the clean data after the last one)::

        x̂_0 = D(x_t, t),   ε̂ = (x_t − sqrt(ᾱ_t) x̂_0) / sqrt(1 − ᾱ_t)
        x_s = sqrt(ᾱ_s) x̂_0 + sqrt(1 − ᾱ_s − σ²) ε̂ + σ z,   σ = η sqrt((1 − ᾱ_s)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_s))

    ``η = 0`` is the deterministic sampler (a first-order solver of the probability-flow ODE); ``η = 1``
    equals ancestral DDPM with the posterior variance. The default ``trailing`` spacing starts at ``t = T−1``
    (Lin et al., 2024), so sampling never begins at a noise level the training data never reached.

    Returns:
        :class:`SampleOutput` with ``nfe = num_steps``.
    """
    eta = float(eta)
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    n = check_num_steps(num_steps, schedule)
    ts = timesteps(schedule.num_timesteps, n, spacing)
    with torch.no_grad():
        x = prepare(schedule, shape, generator, device, dtype, x_T)
        batch = x.shape[0]
        # One lookup for all visited steps; python floats keep the per-step arithmetic in float64.
        table = schedule.log_alpha_bar(torch.tensor(ts, dtype=torch.float64, device=x.device)).tolist()
        for i, t in enumerate(ts):
            la_t = table[i]
            la_s = table[i + 1] if i + 1 < n else 0.0
            x0 = denoiser(x, full_t(t, batch, x.device, dtype)).to(dtype)
            if i + 1 == n:
                x = x0
                break
            one_minus_t, one_minus_s = -math.expm1(la_t), -math.expm1(la_s)
            eps = (x - math.exp(0.5 * la_t) * x0) / math.sqrt(one_minus_t)
            var = eta**2 * one_minus_s / one_minus_t * -math.expm1(la_t - la_s)
            x = math.exp(0.5 * la_s) * x0 + math.sqrt(max(one_minus_s - var, 0.0)) * eps
            if var > 0:
                x = x + math.sqrt(var) * randn(x.shape, generator, x.device, dtype)
    return SampleOutput(x=x, nfe=n)

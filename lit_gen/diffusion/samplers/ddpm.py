"""Ancestral DDPM sampling (Ho et al., 2020, "Denoising diffusion probabilistic models", Algorithm 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion._random import randn
from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import SampleOutput, check_num_steps, full_t, prepare, timesteps
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["ddpm_sample"]


def ddpm_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    variance: Literal["posterior", "beta"] = "posterior",
    spacing: Literal["trailing", "leading", "linspace"] = "trailing",
) -> SampleOutput:
    """Ancestral sampling ``x_s ~ q(x_s | x_t, x̂_0 = D(x_t, t))`` from ``x_T ~ N(0, I)`` down to the data.

    Each step draws ``x_s = mean + sqrt(v) z`` with the posterior mean of
    :meth:`NoiseSchedule.posterior` and ``v = β̃_{t|s}`` (``variance="posterior"``, the lower bound of
    Ho et al.) or ``v = β_{t|s} = 1 − ᾱ_t/ᾱ_s`` (``variance="beta"``, the upper bound). The last step, to the
    clean data (ᾱ = 1), returns the posterior mean, which is x̂_0 itself, without noise.

    Args:
        num_steps: ``None`` walks all T steps; fewer visit an evenly strided subset of the integer steps
            (``spacing``, see :func:`~lit_gen.diffusion.samplers._common.timesteps`), with ᾱ ratios between
            visited steps as in Song et al. (2021), so the marginals stay those of the forward process.

    Returns:
        :class:`SampleOutput` with ``nfe = num_steps`` (T when ``None``).
    """
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    n = schedule.num_timesteps if num_steps is None else check_num_steps(num_steps, schedule)
    ts = timesteps(schedule.num_timesteps, n, spacing)
    with torch.no_grad():
        x = prepare(schedule, shape, generator, device, dtype, x_T)
        batch = x.shape[0]
        for i, t in enumerate(ts):
            s = ts[i + 1] if i + 1 < n else -1
            x0 = denoiser(x, full_t(t, batch, x.device, dtype)).to(dtype)
            # Scalar (0-dim) times: every sample shares the step, so the coefficients are computed once.
            t_s, s_s = (torch.tensor(float(v), dtype=torch.float64, device=x.device) for v in (t, s))
            mean, var_post, beta = schedule.posterior(x, x0, t_s, s_s)
            if s < 0:
                x = mean
            else:
                var = var_post if variance == "posterior" else beta
                x = mean + var.sqrt().to(dtype) * randn(x.shape, generator, x.device, dtype)
    return SampleOutput(x=x, nfe=n)

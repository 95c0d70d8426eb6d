"""Heun's second-order solver of the probability-flow ODE (Karras et al., 2022, "Elucidating the design
space of diffusion-based generative models", Algorithm 1, deterministic)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import SampleOutput, check_num_steps, full_t, prepare
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["heun_sample", "karras_sigmas", "EDM_SIGMA_MAX"]

# Relative slack when checking a user σ range against the schedule's (float32 table round-off).
_SIGMA_SLACK = 1e-4
# Default cap on σ_max, as in EDM's generate.py (Karras et al., 2022): far above any data scale, and short of
# the ≈ 2e4 of cosine-like schedules, where an ε-predicting network's errors are integrated over σ and blow up.
EDM_SIGMA_MAX = 80.0


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """``σ_i = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ`` for ``i < N``, then ``σ_N = 0``
    (Karras et al., 2022, eq. 5); ``N = 1`` gives ``[σ_max, 0]``."""
    check_num_steps(num_steps)
    if not 0.0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}")
    if num_steps == 1:
        return [float(sigma_max), 0.0]
    hi, lo = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sigmas = [(hi + i / (num_steps - 1) * (lo - hi)) ** rho for i in range(num_steps)]
    return [*sigmas, 0.0]


def heun_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 18,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    rho: float = 7.0,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> SampleOutput:
    """Deterministic EDM sampler in the variance-exploding variable ``y = x / sqrt(ᾱ)``.

    With ``σ = sqrt((1 − ᾱ)/ᾱ)`` (``schedule.edm_sigma``) the probability-flow ODE reads
    ``dy/dσ = (y − D(y; σ))/σ`` where ``D(y; σ) = denoiser(y / sqrt(1 + σ²), t(σ))`` and
    ``t(σ) = schedule.t_from_edm_sigma(σ)``. Heun steps on the Karras grid (:func:`karras_sigmas`); the last
    step, to ``σ = 0``, is a plain Euler step (it lands on ``D`` itself), hence ``nfe = 2·num_steps − 1``.
    Starting from ``x_T ~ N(0, I)``, ``y = x_T·sqrt(1 + σ_max²)``.

    Args:
        sigma_min: lower grid end; default ``edm_sigma(0)``, the schedule's smallest noise level.
        sigma_max: upper grid end; default ``min(edm_sigma(T−1), 80)``. Both must lie inside the schedule's
            range, since the denoiser only knows its noise levels. The cap at 80 is EDM's (``generate.py``);
            without it, schedules with a tiny ``ᾱ_{T−1}`` (cosine: σ ≈ 2e4 at T−1) waste a short grid far above
            the data scale — on a 2D Gaussian with the exact denoiser, 18 steps inflate the covariance by 0.72
            instead of 0.08 — and a trained ε-predictor's errors, integrated over ``dσ`` up there, swamp the
            sample (8gaussians, 1500 training steps: SW1 10.4 instead of 0.15). Starting at σ = 80 from
            N(0, I) ignores the data's share ``x_0/sqrt(1 + 80²)`` of x_T, an error below 1/80 of its scale.
    """
    n = check_num_steps(num_steps)
    with torch.no_grad():
        x = prepare(schedule, shape, generator, device, dtype, x_T)
        batch = x.shape[0]
        ends = torch.tensor([0.0, schedule.num_timesteps - 1.0], dtype=torch.float64, device=x.device)
        lo_s, hi_s = schedule.edm_sigma(ends).tolist()
        s_min = lo_s if sigma_min is None else float(sigma_min)
        s_max = min(hi_s, EDM_SIGMA_MAX) if sigma_max is None else float(sigma_max)
        if s_min < lo_s * (1 - _SIGMA_SLACK) or s_max > hi_s * (1 + _SIGMA_SLACK):
            raise ValueError(
                f"sigma_min={s_min:.4g} and sigma_max={s_max:.4g} must lie within the schedule's EDM noise "
                f"range [{lo_s:.4g}, {hi_s:.4g}] (edm_sigma at t=0 and t=T-1)"
            )
        sigmas = karras_sigmas(n, s_min, s_max, rho)
        grid = torch.tensor(sigmas[:-1], dtype=torch.float64, device=x.device)
        t_grid = schedule.t_from_edm_sigma(grid).tolist()

        def denoise(y: Tensor, i: int) -> Tensor:
            scale = 1.0 / math.sqrt(1.0 + sigmas[i] ** 2)
            return denoiser(y * scale, full_t(t_grid[i], batch, y.device, dtype)).to(dtype)

        y = x * math.sqrt(1.0 + sigmas[0] ** 2)
        for i in range(n):
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            d = (y - denoise(y, i)) / sigma
            y_next = y + (sigma_next - sigma) * d
            if sigma_next > 0:
                d_next = (y_next - denoise(y_next, i + 1)) / sigma_next
                y_next = y + (sigma_next - sigma) * 0.5 * (d + d_next)
            y = y_next
    return SampleOutput(x=y, nfe=2 * n - 1)

"""DPM-Solver++(2M): multistep second-order solver of the diffusion ODE in data-prediction form (Lu, Zhou, Bao,
Chen, Li & Zhu, 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
Algorithm 2); see ``docs/algorithms.md#ode-solvers-and-dpm-solver``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import SampleOutput, check_num_steps, full_t, prepare
from lit_gen.diffusion.samplers.heun import EDM_SIGMA_MAX, karras_sigmas
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["DPM_SPACINGS", "dpm_solver_pp_sample", "noise_levels"]

DPM_SPACINGS: tuple[str, ...] = ("logsnr", "karras", "time_uniform")
# Relative slack when checking a user σ range against the schedule's (float32 table round-off).
_SIGMA_SLACK = 1e-4


def noise_levels(
    schedule: NoiseSchedule,
    num_points: int,
    spacing: Literal["logsnr", "karras", "time_uniform"] = "logsnr",
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float = 7.0,
    device: torch.device | str | None = None,
) -> list[float]:
    """``num_points`` decreasing EDM noise levels ``σ = sqrt((1 − ᾱ)/ᾱ)`` from ``σ_max`` to ``σ_min``.

    ``logsnr``: uniform in ``λ = log(α/σ_VP) = −log σ`` (the DPM-Solver papers' choice for few steps);
    ``karras``: the ρ-spaced grid of Karras et al. (2022); ``time_uniform``: uniform in the schedule's time.
    Defaults: ``σ_min = edm_sigma(0)``, ``σ_max = min(edm_sigma(T−1), 80)`` (as the Heun sampler).
    """
    if spacing not in DPM_SPACINGS:
        raise ValueError(f"spacing must be one of {list(DPM_SPACINGS)}, got {spacing!r}")
    n = check_num_steps(num_points, name="num_steps")
    dev = schedule.log_alpha_bars.device if device is None else torch.device(device)
    ends = torch.tensor([0.0, schedule.num_timesteps - 1.0], dtype=torch.float64, device=dev)
    lo_s, hi_s = schedule.edm_sigma(ends).tolist()
    s_min = lo_s if sigma_min is None else float(sigma_min)
    s_max = min(hi_s, EDM_SIGMA_MAX) if sigma_max is None else float(sigma_max)
    if not (lo_s * (1 - _SIGMA_SLACK) <= s_min < s_max <= hi_s * (1 + _SIGMA_SLACK)):
        raise ValueError(
            f"need edm_sigma(0) <= sigma_min < sigma_max <= edm_sigma(T-1), i.e. within [{lo_s:.4g}, {hi_s:.4g}]; "
            f"got sigma_min={s_min:.4g}, sigma_max={s_max:.4g}"
        )
    if n == 1:
        return [s_max]
    if spacing == "logsnr":
        return torch.linspace(math.log(s_max), math.log(s_min), n, dtype=torch.float64).exp().tolist()
    if spacing == "karras":
        return karras_sigmas(n, s_min, s_max, rho)[:-1]
    t_hi, t_lo = schedule.t_from_edm_sigma(torch.tensor([s_max, s_min], dtype=torch.float64, device=dev)).tolist()
    ts = torch.linspace(t_hi, t_lo, n, dtype=torch.float64, device=dev)
    return schedule.edm_sigma(ts).tolist()


def dpm_solver_pp_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 20,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    spacing: Literal["logsnr", "karras", "time_uniform"] = "logsnr",
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float = 7.0,
) -> SampleOutput:
    """DPM-Solver++(2M) from ``x_T ~ N(0, I)``, one denoiser evaluation per step (``nfe = num_steps``).

    With the VP coefficients ``α_t = sqrt(ᾱ_t)``, ``σ_t = sqrt(1 − ᾱ_t)``, ``λ_t = log(α_t/σ_t)`` and the data
    prediction ``x̂_0 = D(x_t, t)``, the exact solution of the diffusion ODE from ``s`` to ``t`` is
    ``x_t = (σ_t/σ_s) x_s + σ_t ∫_{λ_s}^{λ_t} e^{λ} x̂_0 dλ``. Approximating ``x̂_0`` linearly in ``λ`` through the
    last two evaluations gives, with ``h_i = λ_{t_i} − λ_{t_{i−1}}`` and ``r_i = h_{i−1}/h_i``::

        D_i     = (1 + 1/(2 r_i)) x̂_0(t_{i−1}) − 1/(2 r_i) x̂_0(t_{i−2})        (D_1 = x̂_0(t_0): first order)
        x_{t_i} = (σ_{t_i}/σ_{t_{i−1}}) x_{t_{i−1}} − α_{t_i} (e^{−h_i} − 1) D_i

    The solver visits ``num_steps`` noise levels from ``σ_max`` to ``σ_min`` (:func:`noise_levels`, in EDM units
    ``σ = σ_t/α_t``) and, from the last one, steps to the clean data, where the update's first-order limit is
    ``x̂_0`` itself (as DDIM's last step).

    Args:
        spacing: ``logsnr`` (uniform λ, default), ``karras`` (``rho``) or ``time_uniform``.
        sigma_min, sigma_max: ends of the grid in EDM units (defaults as :func:`noise_levels`).

    Returns:
        :class:`SampleOutput` with ``nfe = num_steps``.
    """
    n = check_num_steps(num_steps)
    with torch.no_grad():
        x = prepare(schedule, shape, generator, device, dtype, x_T)
        batch = x.shape[0]
        sigmas = noise_levels(schedule, n, spacing, sigma_min, sigma_max, rho, device=x.device)
        ts = schedule.t_from_edm_sigma(torch.tensor(sigmas, dtype=torch.float64, device=x.device)).tolist()
        lambdas = [-math.log(s) for s in sigmas]
        alphas = [1.0 / math.sqrt(1.0 + s * s) for s in sigmas]
        sig_vp = [s * a for s, a in zip(sigmas, alphas, strict=True)]
        x0_prev: Tensor | None = None
        h_prev = 0.0
        for i in range(n):
            x0 = denoiser(x, full_t(ts[i], batch, x.device, dtype)).to(dtype)
            if i + 1 == n:
                x = x0
                break
            h = lambdas[i + 1] - lambdas[i]
            if x0_prev is None:
                d = x0
            else:
                r = h_prev / h
                d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
            x = (sig_vp[i + 1] / sig_vp[i]) * x - alphas[i + 1] * math.expm1(-h) * d
            x0_prev, h_prev = x0, h
    return SampleOutput(x=x, nfe=n)

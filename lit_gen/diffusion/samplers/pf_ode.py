"""The probability-flow ODE of a diffusion model solved by any solver of :mod:`lit_gen.diffusion.ode`
(Song et al., 2021, "Score-based generative modeling through stochastic differential equations", §4.3);
see ``docs/algorithms.md#ode-solvers-and-dpm-solver``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.ode import METHODS, Method, odeint
from lit_gen.diffusion.samplers._common import SampleOutput, check_num_steps, full_t, prepare
from lit_gen.diffusion.samplers.dpm_solver import noise_levels
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["pf_ode_sample"]


def pf_ode_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 18,
    *,
    method: Method = "heun",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
    rho: float = 7.0,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> SampleOutput:
    """Integrate the probability-flow ODE from ``σ_max`` down to ``σ_min``, then denoise once.

    In the variance-exploding variable ``y = x / sqrt(ᾱ)`` with ``σ = sqrt((1 − ᾱ)/ᾱ)`` the ODE reads
    ``dy/dσ = (y − D(y; σ))/σ``, ``D(y; σ) = denoiser(y / sqrt(1 + σ²), t(σ))`` (Karras et al., 2022). The
    fixed-step methods step through the Karras grid of ``num_steps + 1`` levels (``rho``) in ``σ`` (there Euler
    is DDIM, and Heun is :func:`~lit_gen.diffusion.samplers.heun_sample` without its final Euler step);
    ``dopri5`` integrates ``dy/du = y − D(y; e^u)`` in log-time ``u = log σ``, where the field is bounded, and picks
    its own steps (``rtol``, ``atol``). The last step, from ``σ_min`` to the clean data, returns
    ``x̂_0 = D(y_{σ_min}; σ_min)`` (one evaluation, as DDIM and DPM-Solver do).

    Returns:
        :class:`SampleOutput`; ``nfe`` counts every denoiser evaluation (``stages · num_steps + 1`` for the
        fixed-step methods).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    n = check_num_steps(num_steps)
    with torch.no_grad():
        x = prepare(schedule, shape, generator, device, dtype, x_T)
        batch = x.shape[0]
        sigmas = noise_levels(schedule, n + 1, "karras", sigma_min, sigma_max, rho, device=x.device)

        def denoise(y: Tensor, sigma: float) -> Tensor:
            t = schedule.t_from_edm_sigma(torch.tensor([sigma], dtype=torch.float64, device=y.device)).item()
            return denoiser(y / math.sqrt(1.0 + sigma * sigma), full_t(t, batch, y.device, dtype)).to(dtype)

        def drift_log_sigma(u: float, y: Tensor) -> Tensor:
            return y - denoise(y, math.exp(u))

        def drift_sigma(sigma: float, y: Tensor) -> Tensor:
            return (y - denoise(y, sigma)) / sigma

        y = x * math.sqrt(1.0 + sigmas[0] ** 2)
        if method == "dopri5":
            sol = odeint(drift_log_sigma, y, math.log(sigmas[0]), math.log(sigmas[-1]), "dopri5", rtol=rtol,
                         atol=atol)
        else:
            sol = odeint(drift_sigma, y, method=method, grid=sigmas)
        out = denoise(sol.x, sigmas[-1])  # type: ignore[arg-type]
    return SampleOutput(x=out, nfe=sol.nfe + 1)

"""Diffusion samplers: pure functions ``(denoiser, schedule, shape, num_steps, ...) -> SampleOutput``, and the
sampler objects (:class:`DiffusionSampler`) that plug them into a module (names as shorthands)."""

from __future__ import annotations

from collections.abc import Callable

from lit_gen.diffusion.samplers._common import SampleOutput, timesteps
from lit_gen.diffusion.samplers.ddim import ddim_sample
from lit_gen.diffusion.samplers.ddpm import ddpm_sample
from lit_gen.diffusion.samplers.dpm_solver import dpm_solver_pp_sample
from lit_gen.diffusion.samplers.euler_maruyama import euler_maruyama_sample
from lit_gen.diffusion.samplers.heun import heun_sample, karras_sigmas
from lit_gen.diffusion.samplers.pf_ode import pf_ode_sample
from lit_gen.diffusion.samplers.strategy import (
    DDIM,
    DDPM,
    PFODE,
    SAMPLER_CLASSES,
    DiffusionSampler,
    DPMSolverPP,
    EulerMaruyama,
    Heun,
    build_sampler,
)

__all__ = [
    "DDIM",
    "DDPM",
    "DPMSolverPP",
    "PFODE",
    "SAMPLER_CLASSES",
    "DiffusionSampler",
    "EulerMaruyama",
    "Heun",
    "build_sampler",
    "SampleOutput",
    "SAMPLERS",
    "get_sampler",
    "ddpm_sample",
    "ddim_sample",
    "heun_sample",
    "euler_maruyama_sample",
    "dpm_solver_pp_sample",
    "pf_ode_sample",
    "karras_sigmas",
    "timesteps",
]

SAMPLERS: dict[str, Callable[..., SampleOutput]] = {
    "ddpm": ddpm_sample,
    "ddim": ddim_sample,
    "heun": heun_sample,
    "euler_maruyama": euler_maruyama_sample,
    "dpm_solver++": dpm_solver_pp_sample,
    "pf_ode": pf_ode_sample,
}


def get_sampler(name: str) -> Callable[..., SampleOutput]:
    """The sampler function registered under ``name`` (``ddpm``, ``ddim``, ``heun``, ``euler_maruyama``,
    ``dpm_solver++``, ``pf_ode``)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]

"""Diffusion samplers as objects: the one way a sampler is plugged into :class:`~lit_gen.models.DiffusionModule`.

A :class:`DiffusionSampler` holds its settings (number of steps, η, spacing, ...) and is called as
``sampler(denoiser, schedule, shape, *, generator=None, device=None, **overrides) -> SampleOutput``. The
built-in ones wrap the sampling functions of this package (:func:`ddpm_sample`, :func:`ddim_sample`,
:func:`heun_sample`, :func:`euler_maruyama_sample`, :func:`dpm_solver_pp_sample`, :func:`pf_ode_sample`; equations
in their docstrings and in ``docs/algorithms.md``); a user's own sampler subclasses :class:`DiffusionSampler`,
implements :meth:`run`, and is chosen in YAML by ``class_path``::

    model:
      init_args:
        sampler:
          class_path: my_project.samplers.MySampler
          init_args: {num_steps: 20}

The names ``ddpm``, ``ddim``, ``heun``, ``euler_maruyama``, ``dpm_solver++`` and ``pf_ode`` stay as shorthands
(:func:`build_sampler`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal

import torch

from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import SampleOutput
from lit_gen.diffusion.samplers.ddim import ddim_sample
from lit_gen.diffusion.samplers.ddpm import ddpm_sample
from lit_gen.diffusion.samplers.dpm_solver import dpm_solver_pp_sample
from lit_gen.diffusion.samplers.euler_maruyama import euler_maruyama_sample
from lit_gen.diffusion.samplers.heun import heun_sample
from lit_gen.diffusion.samplers.pf_ode import pf_ode_sample
from lit_gen.diffusion.schedules import NoiseSchedule
from lit_gen.utils.config import RecordsInit

__all__ = ["DDIM", "DDPM", "PFODE", "SAMPLER_CLASSES", "DPMSolverPP", "DiffusionSampler", "EulerMaruyama", "Heun",
           "build_sampler"]


class DiffusionSampler(RecordsInit):
    """Interface of a configured diffusion sampler.

    Args:
        num_steps: the default number of steps (network evaluations per step depend on the sampler).
        **options: further settings, passed to :meth:`run` on every call.
    """

    def __init__(self, num_steps: int, **options: Any) -> None:
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        self.num_steps = num_steps
        self.options = options

    def __call__(
        self,
        denoiser: Denoiser,
        schedule: NoiseSchedule,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        **overrides: Any,
    ) -> SampleOutput:
        """Sample ``shape`` from ``denoiser``; ``overrides`` (``num_steps`` included) replace the settings once."""
        kwargs = {"num_steps": self.num_steps, **self.options, **overrides}
        return self.run(denoiser, schedule, shape, generator=generator, device=device, **kwargs)

    def run(
        self, denoiser: Denoiser, schedule: NoiseSchedule, shape: Sequence[int], *, num_steps: int,
        generator: torch.Generator | None, device: torch.device | str | None, **options: Any,
    ) -> SampleOutput:
        """The sampling loop (subclasses implement it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in {"num_steps": self.num_steps, **self.options}.items())
        return f"{type(self).__name__}({settings})"


class DDPM(DiffusionSampler):
    """Ancestral DDPM sampling (Ho et al. 2020): :func:`~lit_gen.diffusion.samplers.ddpm_sample`."""

    def __init__(self, num_steps: int = 1000, variance: Literal["posterior", "beta"] = "posterior",
                 spacing: Literal["trailing", "leading", "linspace"] = "trailing") -> None:
        super().__init__(num_steps, variance=variance, spacing=spacing)

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):  # noqa: ANN001, ANN201
        return ddpm_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device, **options)


class DDIM(DiffusionSampler):
    """DDIM (Song, Meng & Ermon 2021): :func:`~lit_gen.diffusion.samplers.ddim_sample`; ``eta = 0`` deterministic."""

    def __init__(self, num_steps: int = 50, eta: float = 0.0,
                 spacing: Literal["trailing", "leading", "linspace"] = "trailing") -> None:
        super().__init__(num_steps, eta=eta, spacing=spacing)

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):  # noqa: ANN001, ANN201
        return ddim_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device, **options)


class Heun(DiffusionSampler):
    """Heun's second-order PF-ODE solver on Karras σ steps (Karras et al. 2022): NFE = 2·steps − 1."""

    def __init__(self, num_steps: int = 18, rho: float = 7.0, sigma_min: float | None = None,
                 sigma_max: float | None = None) -> None:
        super().__init__(num_steps, rho=rho, sigma_min=sigma_min, sigma_max=sigma_max)

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):  # noqa: ANN001, ANN201
        return heun_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device, **options)


class EulerMaruyama(DiffusionSampler):
    """Euler–Maruyama on the reverse VP SDE (Song et al. 2021): :func:`euler_maruyama_sample`."""

    def __init__(self, num_steps: int = 100) -> None:
        super().__init__(num_steps)

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):  # noqa: ANN001, ANN201
        return euler_maruyama_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device,
                                     **options)


class DPMSolverPP(DiffusionSampler):
    """DPM-Solver++(2M) (Lu et al. 2022): :func:`~lit_gen.diffusion.samplers.dpm_solver_pp_sample`; NFE = steps."""

    def __init__(self, num_steps: int = 20, spacing: Literal["logsnr", "karras", "time_uniform"] = "logsnr",
                 sigma_min: float | None = None, sigma_max: float | None = None, rho: float = 7.0) -> None:
        super().__init__(num_steps, spacing=spacing, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):  # noqa: ANN001, ANN201
        return dpm_solver_pp_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device,
                                    **options)


class PFODE(DiffusionSampler):
    """The probability-flow ODE solved by a :mod:`lit_gen.diffusion.ode` solver (``method``: ``euler``,
    ``midpoint``, ``heun``, ``rk4`` on ``num_steps`` Karras steps, or adaptive ``dopri5`` with ``rtol``/``atol``):
    :func:`~lit_gen.diffusion.samplers.pf_ode_sample`."""

    def __init__(self, num_steps: int = 18, method: Literal["euler", "midpoint", "heun", "rk4", "dopri5"] = "heun",
                 rho: float = 7.0, sigma_min: float | None = None, sigma_max: float | None = None,
                 rtol: float = 1e-4, atol: float = 1e-4) -> None:
        super().__init__(num_steps, method=method, rho=rho, sigma_min=sigma_min, sigma_max=sigma_max, rtol=rtol,
                         atol=atol)

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):  # noqa: ANN001, ANN201
        return pf_ode_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device, **options)


#: the shorthands: a name in a config or on the command line builds one of these
SAMPLER_CLASSES: dict[str, type[DiffusionSampler]] = {
    "ddpm": DDPM, "ddim": DDIM, "heun": Heun, "euler_maruyama": EulerMaruyama, "dpm_solver++": DPMSolverPP,
    "pf_ode": PFODE,
}


def build_sampler(
    spec: DiffusionSampler | str, num_steps: int | None = None, options: dict[str, Any] | None = None
) -> DiffusionSampler:
    """``spec`` itself if it is a :class:`DiffusionSampler`, else the shorthand's class built with ``num_steps``
    (default: the class's own) and ``options``; an unknown name or option is a ``ValueError`` naming the choices."""
    if isinstance(spec, DiffusionSampler):
        if options:
            raise ValueError(f"sampler_kwargs {sorted(options)} only go with a sampler name; set them on {spec!r}")
        return spec
    if not isinstance(spec, str) or spec not in SAMPLER_CLASSES:
        raise ValueError(
            f"unknown sampler {spec!r}; choose one of {sorted(SAMPLER_CLASSES)} or give a "
            "lit_gen.diffusion.samplers.DiffusionSampler (class_path in YAML)"
        )
    cls = SAMPLER_CLASSES[spec]
    named = set(inspect.signature(cls.__init__).parameters) - {"self"}
    kwargs = {k: v for k, v in (options or {}).items() if k in named}
    if num_steps is not None:
        kwargs["num_steps"] = num_steps
    sampler = cls(**kwargs)
    # options the class does not name (e.g. x_T, dtype) go straight to the sampling function
    sampler.options.update({k: v for k, v in (options or {}).items() if k not in named})
    return sampler

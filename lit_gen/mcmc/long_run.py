"""Long-run sampling from an energy: an adapted step size and, on request, the chains' diagnostics.

A model's ``sample()`` runs its MCMC sampler for hundreds of steps from the init distribution. Two things make
such a run trustworthy (Hoffman & Gelman 2014; Vehtari et al. 2021):

- **A step size fitted to the model**, not the one that suited the training chains: for a Metropolis–Hastings
  sampler (MALA, HMC) :func:`long_run` first adapts the step by dual averaging to the sampler's target
  acceptance (0.57 MALA, 0.75 HMC) during ``warmup`` updates, on a copy of the sampler (the model's own stays as
  configured), then freezes it for the run. Unadjusted Langevin has no acceptance to adapt to and runs as is.
- **Diagnostics of the run**: with ``record`` the second half of the run is cut into segments whose end states
  form a trace ``(draws, chains, *event)``; its bulk ESS and rank-normalised split-R̂ per coordinate
  (:func:`lit_gen.mcmc.diagnostics.summarize`) say whether the chains mixed (R̂ close to 1, ESS of the order of
  the number of chains or more).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lit_gen.mcmc.adaptation import adapt_step_size
from lit_gen.mcmc.base import EnergyFn, MCMCSampler
from lit_gen.mcmc.diagnostics import summarize
from lit_gen.mcmc.langevin import Langevin

__all__ = ["LongRunResult", "adaptable", "long_run"]

#: most trace draws recorded by ``long_run(record=True)``
MAX_DRAWS = 50


@dataclass
class LongRunResult:
    """Final states and, with ``record``, the run's statistics (``ess_min``, ``ess_mean``, ``rhat_max``,
    ``acceptance_rate``, ``step_size``, ``warmup``, ``num_draws``)."""

    x: Tensor
    stats: dict[str, float] = field(default_factory=dict)


def adaptable(sampler: MCMCSampler) -> bool:
    """Whether dual averaging applies: a Metropolis–Hastings sampler with a ``step_size`` (not unadjusted
    Langevin)."""
    return hasattr(sampler, "step_size") and not isinstance(sampler, Langevin)


def long_run(
    sampler: MCMCSampler,
    energy: EnergyFn,
    x: Tensor,
    num_steps: int,
    *,
    warmup: int = 0,
    record: bool = False,
    generator: torch.Generator | None = None,
) -> LongRunResult:
    """``num_steps`` of ``sampler`` on ``exp(−energy)`` from ``x``, after ``warmup`` dual-averaging updates of a
    copy of the sampler's step (skipped for samplers without an accept test), recording diagnostics on request."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    stats: dict[str, float] = {}
    if warmup > 0 and adaptable(sampler):
        sampler = copy.deepcopy(sampler)
        adapted = adapt_step_size(sampler, energy, x, warmup, generator=generator)
        x = adapted.x
        stats["warmup"] = float(warmup)
    if hasattr(sampler, "step_size"):
        stats["step_size"] = float(sampler.step_size)
    if not record:
        return LongRunResult(sampler.run(energy, x, num_steps, generator=generator).x, stats)
    if num_steps < 8:
        raise ValueError(f"return_stats needs at least 8 steps (a trace of 4 draws), got {num_steps}")
    burn = num_steps // 2
    x = sampler.run(energy, x, burn, generator=generator).x
    draws = min(MAX_DRAWS, num_steps - burn)
    sizes = [(num_steps - burn) // draws + (1 if k < (num_steps - burn) % draws else 0) for k in range(draws)]
    trace, accepted = [], []
    for size in sizes:
        result = sampler.run(energy, x, size, generator=generator)
        x = result.x
        trace.append(x.detach().cpu())
        accepted.append(float(result.stats.get("acceptance_rate", 1.0)))
    summary = summarize(torch.stack(trace), with_acceptance=False)
    stats.update(summary.as_dict())
    stats["acceptance_rate"] = sum(a * s for a, s in zip(accepted, sizes, strict=True)) / sum(sizes)
    stats["num_draws"] = float(draws)
    return LongRunResult(x, stats)

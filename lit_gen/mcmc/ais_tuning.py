"""A per-temperature step-size schedule for AIS, tuned on pilot chains (Robbins–Monro tracking of a target acceptance).

Along the annealing path ``E_β = β E + (1 − β) b`` the curvature of the target changes with β, so one MALA/HMC step
size fits at most part of the path: too large where ``E`` is steep (every move rejected, the chains stay at their
base draws and the weights are those of plain importance sampling), too small where it is flat. Following the
adaptive-MCMC recipe of Andrieu & Thoms (2008, "A tutorial on adaptive MCMC", §4.2, the stochastic-approximation
update of a scale towards a target acceptance), a pilot of ``num_chains`` separate chains is annealed forward and
after each move at temperature ``β_t``

    log ε ← log ε + gain · (ᾱ − δ),        ᾱ = mean over pilot chains of min(1, α)

so ``ε`` tracks the step whose acceptance probability is δ (0.57 for MALA: Roberts & Rosenthal 1998). The step left
at the end of temperature t is recorded as ``ε_t``. Before the anneal, ``warmup`` such updates run at ``β_1``, so a
badly chosen initial step is corrected before it matters.

Why not dual averaging (``lit_gen.mcmc.adaptation``): its averaged iterate converges to one step for one stationary
target, while here the target moves with β; a constant gain follows it. The real chains then use the frozen
schedule: it depends on the pilot chains only, so each AIS transition still leaves its ``E_{β_t}`` exactly invariant
and ``E[w] = Z`` holds as before (an anneal that adapted on its own chains would lose that). See
docs/algorithms.md#annealed-importance-sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from lit_gen.mcmc.adaptation import DEFAULT_TARGET_ACCEPT, _check_fraction
from lit_gen.mcmc.ais import _Annealer, _check_base, _check_int, _Path, _resolve_schedule, _sample_base
from lit_gen.mcmc.base import EnergyFn, MCMCSampler
from lit_gen.mcmc.hmc import HMC
from lit_gen.mcmc.mala import MALA

__all__ = ["AISStepSizes", "tune_ais_step_sizes"]


@dataclass
class AISStepSizes:
    """Outcome of :func:`tune_ais_step_sizes`.

    Attributes:
        step_sizes: ``(T − 1,)`` float64, the step for each intermediate temperature ``β_1 … β_{T−1}`` (pass it as
            ``step_sizes=`` to ``ais_log_partition``, ``ais_log_partition_reverse`` or ``ais_bracket``).
        accept_probs: ``(T − 1,)`` the pilot's mean acceptance probability at each temperature (its last move).
        target_accept: δ.
    """

    step_sizes: Tensor
    accept_probs: Tensor
    target_accept: float


def tune_ais_step_sizes(
    energy: EnergyFn,
    base: Distribution,
    num_steps: int | None = 1000,
    sampler: MCMCSampler | None = None,
    num_chains: int = 32,
    target_accept: float | None = None,
    *,
    schedule: str | Tensor = "sigmoid",
    warmup: int = 30,
    moves_per_temperature: int = 1,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> AISStepSizes:
    """Tune a step size for every intermediate temperature of an AIS schedule on separate pilot chains.

    Args:
        energy: callable ``x -> (B,)``.
        base: the AIS base (as for ``ais_log_partition``).
        num_steps: T, the annealing increments the schedule is for (implied by a schedule tensor).
        sampler: ``MALA`` (default ``MALA(0.01)``) or ``HMC``; its ``step_size`` is the first pilot step and is
            left unchanged.
        num_chains: pilot chains (their acceptance is averaged before each update).
        target_accept: δ; default 0.57 for MALA, 0.75 for HMC (``DEFAULT_TARGET_ACCEPT``).
        schedule: as for ``ais_log_partition``.
        warmup: updates at ``β_1`` before the anneal starts.
        moves_per_temperature: pilot moves (and updates) at each temperature.
        gain: the constant step of the update of ``log ε``.
        generator: random source of the pilot.

    Returns:
        ``AISStepSizes`` whose ``step_sizes`` feed the real (forward and reverse) runs.
    """
    base = _check_base(base)
    if not callable(energy):
        raise TypeError(f"energy must be callable x -> (B,), got {type(energy).__name__}")
    sampler = MALA(0.01) if sampler is None else sampler
    if not isinstance(sampler, (MALA, HMC)):
        raise TypeError(f"tune_ais_step_sizes tunes MALA or HMC transitions, got {type(sampler).__name__}")
    if target_accept is None:
        target_accept = DEFAULT_TARGET_ACCEPT["mala" if isinstance(sampler, MALA) else "hmc"]
    delta = _check_fraction("target_accept", target_accept)
    num_chains = _check_int("num_chains", num_chains, 1)
    warmup = _check_int("warmup", warmup, 0)
    moves = _check_int("moves_per_temperature", moves_per_temperature, 1)
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain must be a positive finite number, got {gain!r}")
    betas = _resolve_schedule(schedule, num_steps)
    initial = float(sampler.step_size)
    annealer = _Annealer(_Path(energy, base), sampler, 1, generator)
    steps: list[float] = []
    probs: list[float] = []
    log_eps = math.log(initial)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = _sample_base(base, num_chains, generator).detach().clone()
            e, b, ge, gb, ok = annealer.path.at(x)
            if not bool(ok):
                raise FloatingPointError(
                    "AIS step tuning: the energy, the base log-density or a gradient is non-finite at the base's "
                    "draws; check the energy there"
                )
            for t in range(1, len(betas) - 1):
                for _ in range(warmup if t == 1 else 0):
                    x, e, b, ge, gb, log_eps, _ = _pilot_move(annealer, betas[t], x, e, b, ge, gb, log_eps, delta,
                                                              gain)
                for _ in range(moves):
                    x, e, b, ge, gb, log_eps, prob = _pilot_move(annealer, betas[t], x, e, b, ge, gb, log_eps,
                                                                 delta, gain)
                steps.append(math.exp(log_eps))
                probs.append(prob)
    finally:
        sampler.step_size = initial
    return AISStepSizes(
        step_sizes=torch.tensor(steps, dtype=torch.float64),
        accept_probs=torch.tensor(probs, dtype=torch.float64),
        target_accept=delta,
    )


def _pilot_move(annealer: _Annealer, beta: float, x: Tensor, e: Tensor, b: Tensor, ge: Tensor, gb: Tensor,
                log_eps: float, delta: float, gain: float):
    """One pilot move at step ``exp(log_eps)`` followed by the update of ``log_eps`` (bounded to e^±50)."""
    annealer.sampler.step_size = math.exp(log_eps)
    x, e, b, ge, gb, _, ok = annealer._move(beta, x, e, b, ge, gb)
    if not bool(ok):
        raise FloatingPointError(
            f"AIS step tuning: the energy or its gradient became non-finite at β = {beta:.4g} with step "
            f"{math.exp(log_eps):.3g}; start from a smaller sampler step_size"
        )
    prob = float(annealer.last_accept_prob)
    log_eps = min(max(log_eps + gain * (prob - delta), -50.0), 50.0)
    return x, e, b, ge, gb, log_eps, prob

"""Step-size adaptation by dual averaging (Nesterov 2009; Hoffman & Gelman 2014, the NUTS paper, Algorithm 5).

After warm-up iteration m with acceptance probability ``α_m`` and target ``δ``:

    H̄_m = (1 − 1/(m + t₀)) H̄_{m−1} + (δ − α_m) / (m + t₀)
    log ε_m = μ − (√m / γ) H̄_m
    log ε̄_m = m^{−κ} log ε_m + (1 − m^{−κ}) log ε̄_{m−1}

with ``H̄_0 = 0``, ``log ε̄_0 = 0``, ``μ = log(10 ε₀)``, ``γ = 0.05``, ``t₀ = 10``, ``κ = 0.75``. ``ε_m`` is the step
of the next warm-up iteration; after warm-up the step is frozen at ``ε̄_M``. Adaptation changes the chain at every
step, so only the draws after it are samples of the target. See docs/algorithms.md#step-size-adaptation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lit_gen.mcmc.base import EnergyFn, MCMCSampler, check_positive
from lit_gen.mcmc.hmc import HMC
from lit_gen.mcmc.langevin import Langevin
from lit_gen.mcmc.mala import MALA

__all__ = ["DEFAULT_TARGET_ACCEPT", "AdaptationResult", "DualAveraging", "adapt_step_size"]

#: Target acceptance probabilities: 0.574 is optimal for MALA in high dimension (Roberts & Rosenthal 1998); HMC's
#: optimum is 0.65 in the limit (Beskos et al. 2013) and Stan's default 0.8; 0.75 sits between.
DEFAULT_TARGET_ACCEPT: dict[str, float] = {"mala": 0.57, "hmc": 0.75}


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1), got {type(value).__name__}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return value


class DualAveraging:
    """Dual-averaging controller of ``log ε`` towards a target mean acceptance probability.

    Args:
        target_accept: δ, the acceptance probability to reach (0.57 for MALA, 0.65–0.8 for HMC).
        initial_step_size: ε₀; sets the shrinkage point ``μ = log(10 ε₀)`` unless ``mu`` is given.
        gamma: γ, how strongly ``log ε`` is pulled towards μ (larger = more conservative).
        t0: t₀, damps the first iterations.
        kappa: κ ∈ (0.5, 1], the decay of the averaging weights.
        mu: shrinkage point of ``log ε``.

    ``update(accept_prob)`` takes iteration m's acceptance probability (mean over chains) and returns ``ε_m`` for the
    next iteration; ``final_step_size`` is ``ε̄`` (exp of the weighted average of ``log ε``).
    """

    def __init__(
        self,
        target_accept: float,
        initial_step_size: float = 0.01,
        gamma: float = 0.05,
        t0: float = 10.0,
        kappa: float = 0.75,
        mu: float | None = None,
    ) -> None:
        self.target_accept = _check_fraction("target_accept", target_accept)
        self.initial_step_size = check_positive("initial_step_size", initial_step_size)
        self.gamma = check_positive("gamma", gamma)
        self.t0 = check_positive("t0", t0)
        kappa = check_positive("kappa", kappa)
        if not 0.5 < kappa <= 1.0:
            raise ValueError(f"kappa must be in (0.5, 1] for the averaged step to converge, got {kappa}")
        self.kappa = kappa
        if mu is None:
            mu = math.log(10.0 * self.initial_step_size)
        elif isinstance(mu, bool) or not isinstance(mu, (int, float)) or not math.isfinite(mu):
            raise ValueError(f"mu must be a finite number (the log step size to shrink towards), got {mu!r}")
        self.mu = float(mu)
        self.reset()

    def reset(self) -> None:
        """Back to iteration 0 (``H̄ = 0``, ``ε = ε₀``, ``log ε̄ = 0``)."""
        self.iteration = 0
        self._h_bar = 0.0
        self._log_step = math.log(self.initial_step_size)
        self._log_step_bar = 0.0

    @property
    def step_size(self) -> float:
        """``ε_m``: the step to use in the next iteration."""
        return math.exp(self._log_step)

    @property
    def final_step_size(self) -> float:
        """``ε̄``: the step to freeze after warm-up (``ε₀`` before any update)."""
        return self.initial_step_size if self.iteration == 0 else math.exp(self._log_step_bar)

    def update(self, accept_prob: float | Tensor) -> float:
        """Feed one iteration's acceptance probability; return the next step size ``ε_m``."""
        if isinstance(accept_prob, Tensor):
            if accept_prob.numel() != 1:
                raise ValueError(
                    f"accept_prob must be one number (the mean over chains), got a tensor of shape "
                    f"{tuple(accept_prob.shape)}"
                )
            accept_prob = float(accept_prob)
        if isinstance(accept_prob, bool) or not isinstance(accept_prob, (int, float)):
            raise TypeError(f"accept_prob must be a number in [0, 1], got {type(accept_prob).__name__}")
        if not 0.0 <= accept_prob <= 1.0:  # also rejects NaN
            raise ValueError(
                f"accept_prob must be in [0, 1], got {accept_prob}; a NaN means the sampler's energy became "
                "non-finite, which the sampler itself reports"
            )
        self.iteration += 1
        m = self.iteration
        eta = 1.0 / (m + self.t0)
        self._h_bar = (1.0 - eta) * self._h_bar + eta * (self.target_accept - accept_prob)
        # Saturate instead of overflowing math.exp when the acceptance never reaches the target (e.g. a flat energy
        # accepts every step): e^±100 is already far outside any usable step.
        self._log_step = min(max(self.mu - math.sqrt(m) / self.gamma * self._h_bar, -100.0), 100.0)
        weight = m ** (-self.kappa)
        self._log_step_bar = weight * self._log_step + (1.0 - weight) * self._log_step_bar
        return self.step_size

    def state_dict(self) -> dict[str, float | int]:
        """The controller's progress (``m``, ``H̄``, ``log ε``, ``log ε̄``): numbers only, for checkpoints."""
        return {"iteration": self.iteration, "h_bar": self._h_bar, "log_step": self._log_step,
                "log_step_bar": self._log_step_bar}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Continue from ``state_dict()``'s output (the settings δ, γ, t₀, κ, μ come from the constructor)."""
        keys = {"iteration", "h_bar", "log_step", "log_step_bar"}
        if not isinstance(state, dict) or not keys <= set(state):
            raise ValueError(f"state must be a dict from DualAveraging.state_dict() with keys {sorted(keys)}, got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        values = [float(state[k]) for k in ("h_bar", "log_step", "log_step_bar")]
        if not all(math.isfinite(v) for v in values) or int(state["iteration"]) < 0:
            raise ValueError(f"the dual-averaging state is not finite or has a negative iteration: {state}")
        self.iteration = int(state["iteration"])
        self._h_bar, self._log_step, self._log_step_bar = values

    def __repr__(self) -> str:
        return (f"DualAveraging(target_accept={self.target_accept}, iteration={self.iteration}, "
                f"step_size={self.step_size:.4g}, final_step_size={self.final_step_size:.4g})")


@dataclass
class AdaptationResult:
    """Outcome of ``adapt_step_size``.

    Attributes:
        x: states after warm-up (detached), a good start for sampling.
        step_size: the frozen step size, now set on the sampler.
        accept_probs: ``(num_warmup,)`` the acceptance probability of every warm-up iteration.
        step_sizes: ``(num_warmup,)`` the step used in every warm-up iteration.
    """

    x: Tensor
    step_size: float
    accept_probs: Tensor
    step_sizes: Tensor


def _mean_accept_prob(result) -> float:
    if result.accept_prob is not None:
        return float(result.accept_prob.mean())
    return float(result.stats["acceptance_rate"])  # a sampler that reports only the accepted fraction


def adapt_step_size(
    sampler: MCMCSampler,
    energy: EnergyFn,
    x: Tensor,
    num_warmup: int,
    target_accept: float | None = None,
    *,
    steps_per_update: int = 1,
    generator: torch.Generator | None = None,
    controller: DualAveraging | None = None,
) -> AdaptationResult:
    """Warm ``sampler`` up on ``energy`` from ``x``, adapting its ``step_size`` by dual averaging, then freeze it.

    Every update runs ``sampler.run(energy, x, steps_per_update)`` at the current step and feeds the mean over
    chains and steps of the acceptance probability ``min(1, α)`` to the controller. After ``num_warmup`` updates
    ``sampler.step_size`` is set to ``ε̄`` and left there: later ``run`` calls use the frozen step.

    Each ``run`` call recomputes the gradient at its start, so a warm-up update costs ``steps_per_update + 1``
    gradient evaluations with MALA (``L · steps_per_update + 1`` with HMC).

    Args:
        sampler: a Metropolis–Hastings sampler with a ``step_size`` (``MALA``, ``HMC`` or your own).
        energy: callable ``x -> (B,)``.
        x: initial states ``(B, *shape)``.
        num_warmup: number of controller updates (> 0).
        target_accept: δ; default from ``DEFAULT_TARGET_ACCEPT`` (0.57 MALA, 0.75 HMC).
        steps_per_update: sampler steps per update (1 is Algorithm 5 as written).
        generator: random source.
        controller: a configured ``DualAveraging`` (its target wins over ``target_accept``); default one starts at
            the sampler's current step.

    Returns:
        ``AdaptationResult`` with the warmed-up states and the frozen step.
    """
    if not isinstance(sampler, MCMCSampler):
        raise TypeError(f"sampler must be a lit_gen.mcmc.MCMCSampler, got {type(sampler).__name__}")
    if isinstance(sampler, Langevin) or not hasattr(sampler, "step_size"):
        raise ValueError(
            f"{type(sampler).__name__} has no accept/reject step to adapt to: dual averaging needs a "
            "Metropolis–Hastings sampler with a step_size (MALA, HMC)"
        )
    for name, value in (("num_warmup", num_warmup), ("steps_per_update", steps_per_update)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if controller is None:
        if target_accept is None:
            if isinstance(sampler, MALA):
                target_accept = DEFAULT_TARGET_ACCEPT["mala"]
            elif isinstance(sampler, HMC):
                target_accept = DEFAULT_TARGET_ACCEPT["hmc"]
            else:
                raise ValueError(f"give target_accept for {type(sampler).__name__} (no default for it)")
        controller = DualAveraging(target_accept, initial_step_size=float(sampler.step_size))
    probs, steps = [], []
    for _ in range(num_warmup):
        steps.append(float(sampler.step_size))
        result = sampler.run(energy, x, steps_per_update, generator=generator)
        x = result.x
        prob = _mean_accept_prob(result)
        probs.append(prob)
        sampler.step_size = check_positive("adapted step_size", controller.update(prob))
    sampler.step_size = check_positive("final step_size", controller.final_step_size)
    return AdaptationResult(
        x=x,
        step_size=sampler.step_size,
        accept_probs=torch.tensor(probs, dtype=torch.float64),
        step_sizes=torch.tensor(steps, dtype=torch.float64),
    )

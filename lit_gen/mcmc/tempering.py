"""Replica exchange, or parallel tempering (Swendsen & Wang 1986; Geyer 1991; Earl & Deem 2005).

K replicas of every chain sample the tempered laws ``π_k ∝ exp(−E / T_k)``, ``1 = T_0 < T_1 < … < T_{K−1}``, on a
geometric ladder ``T_k = T_max^{k/(K−1)}``. Between runs of the base sampler, neighbouring replicas ``(i, j = i+1)``
exchange states with the Metropolis probability

    min(1, exp((1/T_i − 1/T_j) (E(x_i) − E(x_j))))

which keeps the product ``Π_k π_k`` invariant, so the T = 1 replica still samples ``exp(−E)`` while hot replicas
carry it across energy barriers. Pairs alternate between even ``(0,1), (2,3), …`` and odd ``(1,2), (3,4), …`` rounds
(the deterministic even-odd scheme; Okabe et al. 2001, Syed et al. 2022).

The base sampler sees every replica in scaled coordinates ``y = x / √T_k`` with energy ``U_k(y) = E(√T_k y) / T_k``:
``U_k`` is ``exp(−E/T_k)`` up to a constant Jacobian, and its curvature is that of E, so one step size suits every
temperature (in x, replica k moves with step ``η T_k``). See docs/algorithms.md#replica-exchange.

As a training sampler (EBM negatives, DCD's recovery posterior; docs/algorithms.md#tempered-and-adapted-training-chains)
``persistent=True`` keeps the hot replicas between calls, ``state_dict()`` / ``load_state_dict()`` carry them and the
cumulative swap counters through checkpoints, and :func:`per_chain_energy` serves energies that carry per-chain
conditioning (labels, noisy targets) to the ``K · B`` stacked replicas.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lit_gen.mcmc.base import EnergyFn, MCMCSampler, _log_uniform, check_positive, energy_and_grad
from lit_gen.mcmc.mala import MALA

__all__ = ["ReplicaExchange", "ReplicaExchangeResult", "geometric_temperatures", "per_chain_energy", "tile_chains"]


def tile_chains(t: Tensor, copies: int) -> Tensor:
    """``copies`` copies of a per-chain tensor ``(B, …)`` stacked along dim 0, ``(copies · B, …)``: row ``k·B + b``
    is chain b, the layout of the replicas ``ReplicaExchange`` hands its energy (replica k of chain b)."""
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be a positive int, got {copies!r}")
    return t.repeat(copies, *([1] * (t.dim() - 1)))


def per_chain_energy(make: Callable[[int], EnergyFn], batch_size: int) -> EnergyFn:
    """An energy with per-chain conditioning, callable on any whole number m of copies of the B chains.

    ``ReplicaExchange`` evaluates its energy on all K replicas of the B chains at once, ``(K·B, *shape)`` with
    replica k of chain b at row ``k·B + b``, and on the B cold chains alone. An energy that closes over one
    conditioning value per chain (the labels y of ``E(x, y)``, DCD's noisy targets x̃ in
    ``U(x') = E(x') + ‖x̃ − a x'‖²/(2s²)``) must see that conditioning tiled the same way: ``make(m)`` builds the
    energy of m copies (tile with :func:`tile_chains`); each m is built once and reused.

    Args:
        make: ``m -> energy`` on ``(m·B, *shape)`` states.
        batch_size: B, the number of chains.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (the number of chains), got {batch_size!r}")
    built: dict[int, EnergyFn] = {}

    def energy(z: Tensor) -> Tensor:
        copies, rest = divmod(int(z.shape[0]), batch_size)
        if rest or copies < 1:
            raise ValueError(f"per-chain energy of {batch_size} chains called on {z.shape[0]} states, not a whole "
                             "number of copies of the chains")
        if copies not in built:
            built[copies] = make(copies)
        return built[copies](z)

    return energy


def geometric_temperatures(num_replicas: int, max_temperature: float) -> Tensor:
    """``T_k = T_max^{k/(K−1)}``, k = 0..K−1, float64 (``[1.]`` for one replica)."""
    if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
        raise ValueError(f"num_replicas must be a positive int, got {num_replicas!r}")
    t_max = check_positive("max_temperature", max_temperature)
    if t_max < 1.0:
        raise ValueError(f"max_temperature must be >= 1 (the ladder starts at T = 1), got {t_max}")
    if num_replicas == 1:
        return torch.ones(1, dtype=torch.float64)
    return t_max ** (torch.arange(num_replicas, dtype=torch.float64) / (num_replicas - 1))


@dataclass
class ReplicaExchangeResult:
    """All replicas after a run.

    Attributes:
        x: ``(B, *shape)`` the T = 1 chains (detached).
        replicas: ``(K, B, *shape)`` every replica, T = 1 first (pass ``replicas[1:]`` as ``hot`` to continue).
        temperatures: ``(K,)`` the ladder.
        swap_rates: ``(K − 1,)`` accepted fraction of the swaps attempted between replicas k and k + 1 (NaN for a
            pair never attempted: a run with a single swap round tries only the even pairs).
        stats: as ``MCMCSampler.run``: ``"acceptance_rate"`` of the base sampler over all replicas, ``"mean_energy"``
            and ``"grad_norm"`` of the T = 1 chains at the end, ``"steps"``; plus ``"swap_rate"`` (mean over the
            attempted pairs) and ``"swap_rate_k"`` per pair.
        accept_prob: ``(num_steps,)`` the base sampler's per-step mean acceptance probability over all replicas
            (``None`` for a base sampler without an accept test): step-size adaptation feeds on it.
    """

    x: Tensor
    replicas: Tensor
    temperatures: Tensor
    swap_rates: Tensor
    stats: dict[str, float]
    accept_prob: Tensor | None = None


class ReplicaExchange(MCMCSampler):
    """Parallel tempering around a base sampler; a drop-in ``MCMCSampler`` returning the T = 1 chains.

    Args:
        sampler: base sampler run on all replicas at once (default ``MALA(0.01)``; ``Langevin`` works too). With
            ``scale_steps`` a Langevin ``sample_clamp`` bounds ``y``, i.e. a box ``√T_k`` wider for replica k.
        num_replicas: K, including the T = 1 replica.
        max_temperature: ``T_{K−1}`` of the geometric ladder: high enough that ``E/T_max`` has barriers of about one
            nat. Ignored when ``temperatures`` is given.
        temperatures: an explicit ladder, increasing, starting at 1.
        swap_every: base-sampler steps between swap rounds. Each round is one ``sampler.run`` (which recomputes the
            gradient at its start) plus one energy evaluation for the swaps.
        scale_steps: run the base sampler in the coordinates ``y = x / √T_k`` (step ``η T_k`` for replica k).
        persistent: keep the hot replicas between calls and start from them when the next call's chains have the
            same shape (otherwise hot replicas start as copies of ``x``); for training chains that persist. They
            are part of ``state_dict()``, so a checkpoint carries them.

    One ``run`` step is one base-sampler step of every replica: K gradient evaluations per chain. The energy is
    called on the ``K·B`` stacked replicas (replica k of chain b at row ``k·B + b``) and on the B cold chains: an
    energy with per-chain conditioning must accept both (:func:`per_chain_energy`).

    ``swap_attempts`` / ``swap_accepts`` count, per neighbouring pair, the swaps tried and taken over the sampler's
    life (all calls; checkpointed); ``swap_rate`` is their overall ratio.
    """

    name = "replica_exchange"

    def __init__(
        self,
        sampler: MCMCSampler | None = None,
        num_replicas: int = 8,
        max_temperature: float = 10.0,
        temperatures: Sequence[float] | Tensor | None = None,
        swap_every: int = 10,
        scale_steps: bool = True,
        persistent: bool = False,
    ) -> None:
        self.sampler = MALA(0.01) if sampler is None else sampler
        if not isinstance(self.sampler, MCMCSampler) or isinstance(self.sampler, ReplicaExchange):
            raise TypeError(f"sampler must be a lit_gen.mcmc.MCMCSampler (Langevin, MALA, HMC), got "
                            f"{type(self.sampler).__name__}")
        if temperatures is None:
            ladder = geometric_temperatures(num_replicas, max_temperature)
        else:
            ladder = torch.as_tensor(temperatures, dtype=torch.float64).detach().cpu().reshape(-1)
            if ladder.numel() < 1 or not bool(torch.isfinite(ladder).all()):
                raise ValueError("temperatures must be a non-empty sequence of finite numbers")
            if float(ladder[0]) != 1.0 or not bool((ladder[1:] > ladder[:-1]).all()):
                raise ValueError(f"temperatures must increase strictly from T = 1, got {ladder.tolist()}")
        self.temperatures = ladder.tolist()
        if isinstance(swap_every, bool) or not isinstance(swap_every, int) or swap_every < 1:
            raise ValueError(f"swap_every must be a positive int (base steps between swaps), got {swap_every!r}")
        self.swap_every = swap_every
        self.scale_steps = bool(scale_steps)
        self.persistent = bool(persistent)
        self._hot: Tensor | None = None
        self._pending_hot: Tensor | None = None
        self._last: ReplicaExchangeResult | None = None
        pairs = max(len(self.temperatures) - 1, 0)
        self.swap_attempts = torch.zeros(pairs, dtype=torch.float64)
        self.swap_accepts = torch.zeros(pairs, dtype=torch.float64)

    @property
    def num_replicas(self) -> int:
        return len(self.temperatures)

    @property
    def hot(self) -> Tensor | None:
        """``(K − 1, B, *shape)`` the persisted hot replicas (``persistent=True``), or None before the first run."""
        return self._hot

    @property
    def swap_rate(self) -> float:
        """Swaps taken / swaps tried over all pairs and all calls so far (NaN before any swap round)."""
        tried = float(self.swap_attempts.sum())
        return float(self.swap_accepts.sum()) / tried if tried > 0 else math.nan

    # ------------------------------------------------------------------------------------------- state
    def non_persistent_copy(self, sampler: MCMCSampler | None = None) -> ReplicaExchange:
        """A copy that keeps no hot replicas between runs (its own swap counters, cloned from this one's), around
        ``sampler`` (default: the same base sampler). For chains whose targets change from run to run, or that must
        not touch the training chains' replicas."""
        out = copy.copy(self)
        if sampler is not None:
            out.sampler = sampler
        out.persistent, out._hot = False, None
        out.swap_attempts, out.swap_accepts = self.swap_attempts.clone(), self.swap_accepts.clone()
        return out

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state: the persisted hot replicas (``None`` if none) and the cumulative swap counters.

        CPU tensors and numbers only (checkpoints load with ``torch.load(weights_only=True)``). The ladder and the
        base sampler are configuration: they come from the constructor, and ``load_state_dict`` checks the ladder.
        """
        return {
            "temperatures": torch.tensor(self.temperatures, dtype=torch.float64),
            "hot": None if self._hot is None else self._hot.detach().cpu().clone(),
            "swap_attempts": self.swap_attempts.detach().cpu().clone(),
            "swap_accepts": self.swap_accepts.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output; the next call continues the hot replicas exactly where they were.

        Raises:
            ValueError: the state is for another ladder (number of replicas or temperatures), or its hot replicas
                are malformed or not finite.
        """
        if not isinstance(state, dict) or not {"hot", "swap_attempts", "swap_accepts"} <= set(state):
            raise ValueError("state must be a dict from ReplicaExchange.state_dict() (keys hot, swap_attempts, "
                             f"swap_accepts), got {type(state).__name__}"
                             + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
        ladder = state.get("temperatures")
        if ladder is not None:
            ladder = torch.as_tensor(ladder, dtype=torch.float64).reshape(-1)
            if ladder.numel() != self.num_replicas or not torch.allclose(
                    ladder, torch.tensor(self.temperatures, dtype=torch.float64), rtol=1e-12, atol=0.0):
                raise ValueError(f"the state is for the temperature ladder {ladder.tolist()}, this sampler has "
                                 f"{self.temperatures}: build the sampler with the ladder it was saved with")
        pairs = self.num_replicas - 1
        counters = []
        for key in ("swap_attempts", "swap_accepts"):
            value = torch.as_tensor(state[key], dtype=torch.float64).detach().cpu().reshape(-1).clone()
            if value.numel() != pairs:
                raise ValueError(f"{key} has {value.numel()} entries, the ladder has {pairs} pairs of replicas")
            counters.append(value)
        hot = state["hot"]
        if hot is not None:
            if not isinstance(hot, Tensor) or hot.dim() < 2 or hot.shape[0] != pairs:
                got = tuple(hot.shape) if isinstance(hot, Tensor) else type(hot).__name__
                raise ValueError(f"hot must be a tensor (K − 1 = {pairs}, B, *shape), got {got}")
            if not bool(torch.isfinite(hot).all()):
                raise ValueError("the saved hot replicas hold NaN or infinite values; drop them (hot=None) to start "
                                 "the hot replicas afresh from the chains")
            hot = hot.detach().clone()
        self._hot = hot
        self.swap_attempts, self.swap_accepts = counters

    def _run(
        self, energy: EnergyFn, x: Tensor, num_steps: int, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, float], Tensor | None]:
        out = self._exchange(energy, x, num_steps, generator, self._pending_hot)
        self._last = out
        return out.x, out.stats, out.accept_prob

    def sample(
        self,
        energy: EnergyFn,
        x: Tensor,
        num_steps: int,
        *,
        generator: torch.Generator | None = None,
        hot: Tensor | None = None,
    ) -> ReplicaExchangeResult:
        """Like ``run`` but returns every replica and the swap rates.

        Args:
            hot: ``(K − 1, B, *shape)`` states of the hotter replicas to continue from (default: the persisted ones
                with ``persistent``, else copies of ``x``).
        """
        self._pending_hot = hot
        try:
            self.run(energy, x, num_steps, generator=generator)  # the base class validates and clones x
            return self._last
        finally:
            self._pending_hot, self._last = None, None

    # ------------------------------------------------------------------------------------------------ core
    def _initial_hot(self, x: Tensor, hot: Tensor | None) -> Tensor:
        k = self.num_replicas - 1
        want = (k, *x.shape)
        if hot is not None:
            if not isinstance(hot, Tensor) or tuple(hot.shape) != want:
                got = tuple(hot.shape) if isinstance(hot, Tensor) else type(hot).__name__
                raise ValueError(f"hot must have shape (K − 1, B, *shape) = {want}, got {got}")
            if not bool(torch.isfinite(hot).all()):
                raise ValueError("hot replicas hold NaN or infinite values; start them from x instead (hot=None)")
            return hot.detach().to(device=x.device, dtype=x.dtype).clone()
        stored = self._hot
        if self.persistent and stored is not None and tuple(stored.shape) == want:
            # a loaded state lives on the CPU: it moves to the chains' device and dtype
            return stored.to(device=x.device, dtype=x.dtype, copy=True)
        return x.detach().unsqueeze(0).expand(want).clone()

    def _exchange(
        self, energy: EnergyFn, x: Tensor, num_steps: int, generator: torch.Generator | None, hot: Tensor | None
    ) -> ReplicaExchangeResult:
        k_rep, b = self.num_replicas, x.shape[0]
        shape = tuple(x.shape[1:])
        temps = torch.tensor(self.temperatures, dtype=torch.float64, device=x.device)
        inv_t = (1.0 / temps).to(x.dtype)
        view = (k_rep, 1, *([1] * len(shape)))
        scale = (temps.sqrt() if self.scale_steps else torch.ones_like(temps)).to(x.dtype).reshape(view)
        states = torch.cat([x.detach().unsqueeze(0), self._initial_hot(x, hot)])  # (K, B, *shape)

        def tempered(y_flat: Tensor) -> Tensor:
            xs = (y_flat.reshape(k_rep, b, *shape) * scale).reshape(k_rep * b, *shape)
            e = energy(xs)
            if isinstance(e, Tensor) and e.shape == (k_rep * b,):
                return (e.reshape(k_rep, b) * inv_t[:, None]).reshape(-1)
            return e  # wrong shape: the base sampler's check names it

        attempts = torch.zeros(max(k_rep - 1, 0), dtype=torch.float64, device=x.device)
        accepts = torch.zeros_like(attempts)
        base_acc, base_steps = 0.0, 0
        probs: list[Tensor] = []
        done, round_ = 0, 0
        while done < num_steps:
            steps = min(self.swap_every, num_steps - done)
            y = (states / scale).reshape(k_rep * b, *shape)
            result = self.sampler.run(tempered, y, steps, generator=generator)
            base_acc += result.stats["acceptance_rate"] * steps
            base_steps += steps
            if result.accept_prob is not None:
                probs.append(result.accept_prob)
            states = result.x.reshape(k_rep, b, *shape) * scale
            done += steps
            if k_rep > 1:
                states = self._swap(energy, states, temps, round_ % 2, attempts, accepts, generator)
            round_ += 1
        x1 = states[0].detach()
        e1, g1 = energy_and_grad(energy, x1)
        rates = accepts / attempts  # NaN where never attempted
        stats = self._stats(base_acc / base_steps, e1, g1, num_steps)
        rate_list = rates.tolist()
        tried = [r for r in rate_list if not math.isnan(r)]
        stats["swap_rate"] = sum(tried) / len(tried) if tried else math.nan
        for k, r in enumerate(rate_list):
            stats[f"swap_rate_{k}"] = r
        if self.persistent:
            self._hot = states[1:].detach().clone()
        self.swap_attempts = self.swap_attempts + attempts.cpu()
        self.swap_accepts = self.swap_accepts + accepts.cpu()
        accept_prob = torch.cat(probs) if len(probs) == round_ else None
        return ReplicaExchangeResult(x=x1, replicas=states.detach(), temperatures=temps, swap_rates=rates,
                                     stats=stats, accept_prob=accept_prob)

    def _swap(
        self, energy: EnergyFn, states: Tensor, temps: Tensor, parity: int, attempts: Tensor, accepts: Tensor,
        generator: torch.Generator | None,
    ) -> Tensor:
        k_rep, b = states.shape[0], states.shape[1]
        with torch.no_grad():
            e = energy(states.reshape(k_rep * b, *states.shape[2:]))
        if not isinstance(e, Tensor) or e.shape != (k_rep * b,):
            raise ValueError(f"energy must return shape (B,) = ({k_rep * b},), got "
                             f"{tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__}")
        e = e.detach().double().reshape(k_rep, b)
        if not bool(torch.isfinite(e).all()):
            self._nonfinite_error("a replica-exchange swap round (the replicas' energies)")
        lower = torch.arange(parity, k_rep - 1, 2, device=states.device)
        if lower.numel() == 0:
            return states
        upper = lower + 1
        inv = 1.0 / temps
        log_a = (inv[lower] - inv[upper])[:, None] * (e[lower] - e[upper])  # (pairs, B)
        log_u = _log_uniform(lower.numel() * b, generator, states.device).reshape(lower.numel(), b)
        swap = log_u < log_a
        attempts[lower] += b
        accepts[lower] += swap.sum(1, dtype=torch.float64)
        mask = swap.reshape(*swap.shape, *([1] * (states.dim() - 2)))
        lo, hi = states[lower], states[upper]
        new = states.clone()
        new[lower] = torch.where(mask, hi, lo)
        new[upper] = torch.where(mask, lo, hi)
        return new

    def __repr__(self) -> str:
        return (f"ReplicaExchange(sampler={self.sampler!r}, temperatures={[round(t, 4) for t in self.temperatures]}, "
                f"swap_every={self.swap_every}, scale_steps={self.scale_steps}, persistent={self.persistent})")

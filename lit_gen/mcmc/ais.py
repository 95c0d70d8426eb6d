"""Annealed importance sampling (AIS; Neal 2001) for the log partition function of an energy, both directions.

Geometric path from a normalised base ``p₀`` to ``f₁ = exp(−E)``, with ``b(x) = −log p₀(x)``:

    log f_β(x) = −β E(x) − (1 − β) b(x),        E_β(x) = β E(x) + (1 − β) b(x),        0 = β₀ < … < β_T = 1

Forward: ``x ~ p₀``; for t = 1..T add ``(β_t − β_{t−1}) (b(x) − E(x))`` to ``log w`` and then (t < T) move ``x`` by a
transition that leaves ``∝ exp(−E_{β_t})`` invariant (MALA or HMC from ``lit_gen.mcmc``). ``E[w] = Z``, so
``log Ẑ = log mean_i w_i`` is a stochastic lower bound of ``log Z`` (Jensen: ``E[log Ẑ] ≤ log Z``; Markov:
``P(log Ẑ > log Z + a) ≤ e^{−a}``).

Reverse (Grosse, Ghahramani & Adams 2015, "Sandwiching the marginal likelihood using bidirectional Monte Carlo";
RAISE, Burda, Grosse & Salakhutdinov 2015): the same recursion along ``1 = β_T > … > β₀ = 0`` started from exact
samples of ``exp(−E)/Z`` (in practice: data, which the model approximates) gives weights with ``E[w] = 1/Z``, so
``−log mean_i w_i`` is a stochastic upper bound of ``log Z``. Together they bracket the NLL of the data.

Standard error (delta method): ``se(log Ẑ) ≈ sd(w) / (√n · mean(w))``, computed on ``w / max w``; the effective
sample size of the weights is ``(Σ w)² / Σ w²``. Both are statistics of the chains actually run: a schedule far too
short gives a small stderr around a wrong value, which only the forward/reverse gap reveals.

See docs/algorithms.md#annealed-importance-sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, Uniform

from lit_gen.mcmc.base import EnergyFn, MCMCSampler, _check_energy_output, _log_uniform, _per_chain_sq_norm, _randn_like
from lit_gen.mcmc.hmc import HMC
from lit_gen.mcmc.mala import MALA, _bcast

__all__ = [
    "AISBracket",
    "AISResult",
    "ais_bracket",
    "ais_log_partition",
    "ais_log_partition_reverse",
    "annealing_schedule",
    "check_step_sizes",
    "fit_gaussian_base",
    "gather_log_weights",
    "uniform_box_base",
    "weight_statistics",
]


# ----------------------------------------------------------------------------------------------- results
@dataclass
class AISResult:
    """One AIS run.

    Attributes:
        log_z: the estimate of ``log Z``: ``log mean w`` forward, ``−log mean w`` reverse.
        stderr: delta-method standard error of ``log_z`` over chains.
        ess: ``(Σ w)² / Σ w²`` ∈ (0, n], n the number of chains (all ranks).
        log_weights: ``(n,)`` float64 log weights (all ranks when gathered; reverse weights estimate ``1/Z``).
        samples: this rank's final states ``(n_local, *event)``: forward, approximate samples of ``exp(−E)/Z`` once
            weighted by ``w``; reverse, approximate draws of the base.
        direction: ``"forward"`` or ``"reverse"``.
        num_steps: T, the number of annealing increments.
        acceptance_rate: fraction of accepted transitions over chains and steps (NaN with ``num_steps=1``).
    """

    log_z: float
    stderr: float
    ess: float
    log_weights: Tensor
    samples: Tensor
    direction: str
    num_steps: int
    acceptance_rate: float


@dataclass
class AISBracket:
    """Forward and reverse AIS on one energy, as a bracket of the data's NLL (nats per data point).

    ``nll_lower = mean E(data) + log Ẑ_forward`` and ``nll_upper = mean E(data) + log Ẑ_reverse``: the first is a
    lower bound in expectation, the second an upper bound when the reverse chains start at exact model samples (data
    only approximate them; see docs/algorithms.md#annealed-importance-sampling).
    """

    nll_lower: float
    nll_upper: float
    mean_energy: float
    forward: AISResult
    reverse: AISResult

    @property
    def gap(self) -> float:
        """``nll_upper − nll_lower``: shrinks towards 0 as the schedule lengthens."""
        return self.nll_upper - self.nll_lower


def weight_statistics(log_weights: Tensor) -> tuple[float, float, float]:
    """``(log mean w, se, ESS)`` of importance weights given as logs, computed on ``w / max w`` (no overflow).

    ``se = sd(w) / (√n mean(w))`` is the delta-method standard error of ``log mean w``; ``ESS = (Σw)²/Σw²``.
    """
    if not isinstance(log_weights, Tensor) or log_weights.dim() != 1 or log_weights.numel() < 2:
        raise ValueError(
            "log_weights must be a 1-D tensor of at least two chains' log weights (a standard error needs two), "
            f"got {tuple(log_weights.shape) if isinstance(log_weights, Tensor) else type(log_weights).__name__}"
        )
    lw = log_weights.detach().double()
    if bool(torch.isnan(lw).any()) or bool((lw == math.inf).any()):
        raise FloatingPointError(
            "AIS log weights hold NaN or +inf: the energy or the base log-density became non-finite on a chain"
        )
    top = lw.max()
    if not bool(torch.isfinite(top)):
        raise FloatingPointError(
            "every AIS chain has weight zero (log weight −inf): the chains left the base's support or the energy is "
            "+inf there; use a base that covers the data"
        )
    w = torch.exp(lw - top)
    n = lw.numel()
    mean, sd = w.mean(), w.std(correction=1)
    log_mean = float(top + torch.log(mean))
    stats = torch.stack([sd / (math.sqrt(n) * mean), w.sum() ** 2 / (w**2).sum()]).tolist()
    return log_mean, stats[0], stats[1]


# ----------------------------------------------------------------------------------------------- bases
def fit_gaussian_base(
    data: Tensor, full_covariance: bool = False, min_std: float = 1e-3, scale: float = 1.0
) -> Distribution:
    """Gaussian fitted to ``data`` ``(N, *event)``: per-feature mean and std (``Independent(Normal)``), or, for vector
    data with ``full_covariance``, ``MultivariateNormal`` with the sample covariance.

    ``min_std`` floors the std of constant features (image borders) so the base has a density there; ``scale``
    widens it (a base somewhat wider than the model costs little, a narrower one inflates the weights' variance).
    """
    if not isinstance(data, Tensor) or data.dim() < 1 or data.shape[0] < 2 or not data.is_floating_point():
        raise ValueError("fit_gaussian_base needs a floating-point tensor of at least two samples, shape (N, *event)")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("fit_gaussian_base: data hold NaN or infinite values; clean them before fitting a base")
    if not (math.isfinite(min_std) and min_std > 0 and math.isfinite(scale) and scale > 0):
        raise ValueError(f"min_std and scale must be positive finite numbers, got {min_std} and {scale}")
    with torch.inference_mode(False):  # normal tensors even when fitted under inference mode (a Lightning test loop)
        return _fit_gaussian(data.detach().clone(), full_covariance, min_std, scale)


def _fit_gaussian(data: Tensor, full_covariance: bool, min_std: float, scale: float) -> Distribution:
    mean = data.mean(0)
    if full_covariance:
        if data.dim() != 2:
            raise ValueError(f"full_covariance needs vector data (N, D), got {tuple(data.shape)}; flatten it first")
        centred = data - mean
        cov = centred.T @ centred / (data.shape[0] - 1)
        eye = torch.eye(data.shape[1], dtype=data.dtype, device=data.device)
        return MultivariateNormal(mean, covariance_matrix=scale**2 * cov + min_std**2 * eye)
    std = data.std(0, correction=1).clamp(min=min_std) * scale
    normal = Normal(mean, std)
    return normal if data.dim() == 1 else Independent(normal, data.dim() - 1)


def uniform_box_base(
    low: float | Tensor, high: float | Tensor, event_shape: Sequence[int] | None = None
) -> Distribution:
    """Uniform on the box ``[low, high]`` (per feature for tensors of the event shape; floats need ``event_shape``).

    Its log-density is −inf outside the box, where the intermediate energies are +inf and MALA/HMC reject every
    proposal, so the forward chains stay in the box until β = 1: ``log Ẑ`` then estimates ``log ∫_box exp(−E)``, the
    normaliser of the model restricted to the box (e.g. images in [−1, 1]).
    """
    with torch.inference_mode(False):  # normal tensors: autograd may save them during the anneal
        low_t = torch.as_tensor(low, dtype=torch.get_default_dtype()) if not isinstance(low, Tensor) \
            else low.detach().clone()
        high_t = torch.as_tensor(high, dtype=low_t.dtype, device=low_t.device) if not isinstance(high, Tensor) \
            else high.detach().clone()
    if event_shape is not None:
        shape = tuple(int(s) for s in event_shape)
        low_t, high_t = low_t.expand(shape).clone(), high_t.expand(shape).clone()
    low_t, high_t = torch.broadcast_tensors(low_t, high_t)
    if not bool((torch.isfinite(low_t) & torch.isfinite(high_t) & (high_t > low_t)).all()):
        raise ValueError("uniform_box_base needs finite bounds with high > low in every feature")
    box = Uniform(low_t, high_t, validate_args=False)  # −inf outside the box instead of an error
    return box if low_t.dim() == 0 else Independent(box, low_t.dim(), validate_args=False)


def _check_base(base: object) -> Distribution:
    if not isinstance(base, Distribution):
        raise TypeError(
            f"base must be a torch.distributions.Distribution (e.g. fit_gaussian_base(data)), got {type(base).__name__}"
        )
    if tuple(base.batch_shape) != ():
        raise ValueError(
            f"base must have batch shape () and event shape the data's, got batch shape {tuple(base.batch_shape)}; "
            f"wrap it: Independent(base, {len(base.batch_shape)})"
        )
    return base


def _sample_base(base: Distribution, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` draws of the base; with a generator, from a global RNG seeded by it (and restored afterwards), because
    ``torch.distributions`` draws from the global RNG only."""
    if generator is None:
        return base.sample((n,))
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if cuda else []):
        torch.manual_seed(seed)
        return base.sample((n,))


# ----------------------------------------------------------------------------------------------- schedule
def annealing_schedule(num_steps: int, kind: str = "sigmoid", delta: float = 4.0) -> Tensor:
    """Inverse temperatures ``β_0 = 0 < … < β_T = 1``, float64 ``(T + 1,)``.

    ``"linear"``: ``β_t = t / T``. ``"sigmoid"`` (Grosse, Maddison & Salakhutdinov 2013): ``s_t = σ(δ (2t/T − 1))``
    rescaled to [0, 1], denser at both ends where the path's distributions change fastest.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int (annealing increments), got {num_steps!r}")
    t = torch.linspace(0.0, 1.0, num_steps + 1, dtype=torch.float64)
    if kind == "linear":
        return t
    if kind == "sigmoid":
        if not (math.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a positive finite number, got {delta}")
        s = torch.sigmoid(delta * (2.0 * t - 1.0))
        beta = (s - s[0]) / (s[-1] - s[0])
        beta[0], beta[-1] = 0.0, 1.0
        return beta
    raise ValueError(f"schedule must be 'sigmoid', 'linear' or a tensor of inverse temperatures, got {kind!r}")


def _resolve_schedule(schedule: str | Tensor, num_steps: int | None) -> list[float]:
    if isinstance(schedule, Tensor):
        beta = schedule.detach().double().cpu()
        if beta.dim() != 1 or beta.numel() < 2:
            raise ValueError(f"a schedule tensor must be 1-D with at least two entries, got {tuple(beta.shape)}")
        if not bool(torch.isfinite(beta).all()) or float(beta[0]) != 0.0 or float(beta[-1]) != 1.0:
            raise ValueError("a schedule tensor must be finite, start at β = 0 and end at β = 1")
        if not bool((beta[1:] >= beta[:-1]).all()):
            raise ValueError("a schedule tensor must be non-decreasing from 0 to 1")
        if num_steps is not None and num_steps != beta.numel() - 1:
            raise ValueError(f"num_steps={num_steps} disagrees with the schedule's {beta.numel() - 1} increments")
        return beta.tolist()
    if num_steps is None:
        raise ValueError("give num_steps (or a schedule tensor)")
    return annealing_schedule(num_steps, schedule).tolist()


# ----------------------------------------------------------------------------------------------- the anneal
class _Path:
    """The energy and the base's negative log-density, with their gradients, at a batch of states."""

    def __init__(self, energy: EnergyFn, base: Distribution) -> None:
        self.energy, self.base = energy, base

    def at(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(E, b, ∇E, ∇b, ok)``: ``ok`` (0-d bool) is False iff E or a gradient is non-finite or b is NaN or −inf
        (b = +inf, outside a bounded base's support, is a legitimate zero density)."""
        with torch.inference_mode(False), torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            e = _check_energy_output(self.energy(xr), xr)
            lp = self.base.log_prob(xr)
            if lp.shape != e.shape:
                raise ValueError(
                    f"base.log_prob returned shape {tuple(lp.shape)} for states {tuple(x.shape)}; the base's event "
                    f"shape {tuple(self.base.event_shape)} must be the data's shape {tuple(x.shape[1:])}"
                )
            (ge,) = torch.autograd.grad(e.sum(), xr, materialize_grads=True)
            if lp.requires_grad:
                (gb,) = torch.autograd.grad(-lp.sum(), xr, materialize_grads=True)
            else:  # a uniform base: flat inside its support
                gb = torch.zeros_like(xr)
        e, b = e.detach(), -lp.detach()
        ok = (torch.isfinite(e).all() & ~torch.isnan(b).any() & (b > -math.inf).all()
              & torch.isfinite(ge).all() & torch.isfinite(gb).all())
        return e, b, ge, gb, ok

    def closure(self, beta: float) -> EnergyFn:
        """``E_β`` as an energy callable (for samplers that take one)."""

        def energy_beta(x: Tensor) -> Tensor:
            return _mix(beta, self.energy(x), -self.base.log_prob(x))

        return energy_beta


def _mix(beta: float, e: Tensor, b: Tensor) -> Tensor:
    """``β e + (1 − β) b`` without ``0 · inf``: at β = 1 the base term is dropped (its support no longer matters)."""
    return e if beta == 1.0 else beta * e + (1.0 - beta) * b


class _Annealer:
    """Runs one chunk of chains along a schedule; shared by both directions."""

    def __init__(self, path: _Path, sampler: MCMCSampler, steps_per_temperature: int,
                 generator: torch.Generator | None, step_sizes: list[float] | None = None) -> None:
        self.path, self.sampler, self.k, self.generator = path, sampler, steps_per_temperature, generator
        self.step_sizes = step_sizes  # aligned with the betas of run(): the step used at betas[t]

    def run(self, x: Tensor, betas: list[float]) -> tuple[Tensor, Tensor, Tensor, int]:
        """Anneal from ``x`` (distributed as ``∝ f_{betas[0]}``) along ``betas``: ``(log w, x, accepted, moves)``."""
        e, b, ge, gb, ok = self.path.at(x)
        if not bool(ok):
            raise FloatingPointError(
                "AIS: the energy, the base log-density or a gradient is non-finite at the chains' starting states "
                "(base draws forward, data reverse); check the energy there and that the base covers the data"
            )
        if betas[0] != 0.0 and not bool(torch.isfinite(b).all()):
            raise ValueError(
                "reverse AIS: some data points lie outside the base's support (its log-density is −inf there); use "
                "a base that covers the data, e.g. fit_gaussian_base(data) or a wider uniform_box_base"
            )
        log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        accepted = torch.zeros((), dtype=torch.float64, device=x.device)
        flags: list[Tensor] = []
        moves = 0
        last = len(betas) - 1
        for t in range(1, last + 1):
            d_beta = betas[t] - betas[t - 1]
            if d_beta != 0.0:
                # b = +inf never meets d_beta ≠ 0 here: chains with b = inf exist only at β = 1 (after the last move)
                log_w += d_beta * (b.double() - e.double())
            if t == last:
                break  # the last move would not change any weight
            if self.step_sizes is not None:
                self.sampler.step_size = self.step_sizes[t]
            for _ in range(self.k):
                x, e, b, ge, gb, acc, ok = self._move(betas[t], x, e, b, ge, gb)
                accepted += acc
                flags.append(ok)
                moves += 1
        if flags:
            bad = ~torch.stack(flags)
            if bool(bad.any()):
                step = int(bad.nonzero()[0, 0])
                raise FloatingPointError(
                    f"AIS: the energy or its gradient became non-finite at transition {step} (0-based) of {moves}; "
                    f"lower the sampler's step_size (now {getattr(self.sampler, 'step_size', '?')}) or check the "
                    "energy for overflow where the chains went"
                )
        return log_w, x, accepted, moves

    def _move(self, beta: float, x: Tensor, e: Tensor, b: Tensor, ge: Tensor, gb: Tensor):
        sampler, path, gen = self.sampler, self.path, self.generator
        e_beta, g_beta = _mix(beta, e, b), _mix(beta, ge, gb)
        if isinstance(sampler, MALA):
            eta = sampler.step_size
            with torch.no_grad():
                x_new = x - eta * g_beta + math.sqrt(2.0 * eta) * _randn_like(x, gen)
            e2, b2, ge2, gb2, ok = path.at(x_new)
            with torch.no_grad():
                log_alpha = sampler.log_accept_ratio(
                    x, x_new, e_beta, _mix(beta, e2, b2), g_beta, _mix(beta, ge2, gb2)
                )
        elif isinstance(sampler, HMC):
            p0 = _randn_like(x, gen)
            x_new, p_new, _, _, _ = sampler.leapfrog(path.closure(beta), x, p0, g_beta)
            e2, b2, ge2, gb2, ok = path.at(x_new)
            with torch.no_grad():
                h_new = _mix(beta, e2, b2) + 0.5 * _per_chain_sq_norm(p_new)
                log_alpha = (e_beta + 0.5 * _per_chain_sq_norm(p0)) - h_new
        else:  # any other sampler, through its own run (which recomputes the gradient at its start)
            result = sampler.run(path.closure(beta), x, 1, generator=gen)
            e2, b2, ge2, gb2, ok = path.at(result.x)
            acc = torch.as_tensor(result.stats["acceptance_rate"] * x.shape[0], dtype=torch.float64, device=x.device)
            self.last_accept_prob = acc / x.shape[0]
            return result.x, e2, b2, ge2, gb2, acc, ok
        with torch.no_grad():
            # log u < log α; a NaN ratio (inf − inf outside a bounded base) compares False: rejected
            accept = _log_uniform(x.shape[0], gen, x.device) < log_alpha
            # mean over chains of min(1, α) (a NaN ratio counts as 0): what step-size tuning feeds on
            self.last_accept_prob = torch.nan_to_num(log_alpha.clamp(max=0.0).exp(), nan=0.0).mean()
            x = torch.where(_bcast(accept, x), x_new, x)
            ge = torch.where(_bcast(accept, ge), ge2, ge)
            gb = torch.where(_bcast(accept, gb), gb2, gb)
            e = torch.where(accept, e2, e)
            b = torch.where(accept, b2, b)
        return x, e, b, ge, gb, accept.sum(dtype=torch.float64), ok


# ----------------------------------------------------------------------------------------------- DDP
def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def gather_log_weights(log_weights: Tensor) -> Tensor:
    """Concatenate every rank's log weights (rank order) with ``torch.distributed.all_gather``; unchanged when no
    process group is initialised. Ranks may hold different numbers of chains. Every rank must call it."""
    if not _distributed():
        return log_weights
    dist = torch.distributed
    lw = log_weights.detach().double().contiguous()
    size = torch.tensor([lw.numel()], dtype=torch.int64, device=lw.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    counts = [int(s) for s in sizes]
    padded = torch.full((max(counts),), -math.inf, dtype=torch.float64, device=lw.device)
    padded[: lw.numel()] = lw
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])


def _all_reduce_sum(values: Tensor) -> Tensor:
    if _distributed():
        values = values.clone()
        torch.distributed.all_reduce(values)
    return values


# ----------------------------------------------------------------------------------------------- entry points
def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_step_sizes(step_sizes: object, num_increments: int) -> list[float]:
    """Validate a per-temperature step-size schedule: a 1-D tensor (or sequence) of ``T − 1`` positive finite steps,
    one for each intermediate temperature ``β_1 … β_{T−1}`` in forward order."""
    values = torch.as_tensor(step_sizes, dtype=torch.float64).detach().cpu() \
        if isinstance(step_sizes, (Tensor, list, tuple)) else None
    if values is None or values.dim() != 1:
        raise ValueError("step_sizes must be a 1-D tensor of step sizes, one per intermediate temperature "
                         f"(from tune_ais_step_sizes), got {type(step_sizes).__name__}")
    if values.numel() != num_increments - 1:
        raise ValueError(f"step_sizes has {values.numel()} entries but a schedule of {num_increments} increments "
                         f"has {num_increments - 1} intermediate temperatures; tune it on the same num_steps")
    if not bool((torch.isfinite(values) & (values > 0)).all()):
        raise ValueError("step_sizes must all be positive and finite")
    return values.tolist()


def _aligned_steps(step_sizes: object, betas: list[float], direction: str) -> list[float] | None:
    """The schedule aligned with ``betas`` as run (reversed for the reverse direction), NaN at both ends."""
    if step_sizes is None:
        return None
    inner = check_step_sizes(step_sizes, len(betas) - 1)
    aligned = [math.nan, *inner, math.nan]
    return aligned if direction == "forward" else aligned[::-1]


def _anneal_chunks(
    energy: EnergyFn, base: Distribution, starts, betas: list[float], sampler: MCMCSampler | None,
    steps_per_temperature: int, generator: torch.Generator | None, direction: str, gather: bool,
    step_sizes: object = None,
) -> AISResult:
    if not callable(energy):
        raise TypeError(f"energy must be callable x -> (B,), got {type(energy).__name__}")
    sampler = MALA(0.01) if sampler is None else sampler
    if not isinstance(sampler, MCMCSampler):
        raise TypeError(f"sampler must be a lit_gen.mcmc.MCMCSampler (MALA, HMC), got {type(sampler).__name__}")
    aligned = _aligned_steps(step_sizes, betas, direction)
    if aligned is not None and not hasattr(sampler, "step_size"):
        raise ValueError(f"step_sizes needs a sampler with a step_size (MALA, HMC), got {type(sampler).__name__}")
    annealer = _Annealer(_Path(energy, base), sampler, _check_int("steps_per_temperature",
                                                                   steps_per_temperature, 1), generator, aligned)
    log_ws, samples = [], []
    moves = 0
    initial_step = getattr(sampler, "step_size", None)
    # Like MCMCSampler.run: works under torch.no_grad() or inference mode (the starts are cloned into normal tensors).
    try:
        with torch.inference_mode(False), torch.enable_grad():
            accepted = torch.zeros((), dtype=torch.float64)
            for x0 in starts:
                log_w, x, acc, m = annealer.run(x0.detach().clone(), betas)
                log_ws.append(log_w)
                samples.append(x)
                accepted += acc.cpu()
                moves += m * x.shape[0]
    finally:
        if aligned is not None:  # the schedule was set on the sampler move by move: leave it as it was given
            sampler.step_size = initial_step
    log_w = torch.cat(log_ws)
    if gather:
        log_w = gather_log_weights(log_w)
    log_mean, stderr, ess = weight_statistics(log_w)
    return AISResult(
        log_z=log_mean if direction == "forward" else -log_mean,
        stderr=stderr,
        ess=ess,
        log_weights=log_w,
        samples=torch.cat(samples),
        direction=direction,
        num_steps=len(betas) - 1,
        acceptance_rate=float(accepted / moves) if moves else math.nan,
    )


def ais_log_partition(
    energy: EnergyFn,
    base: Distribution,
    num_chains: int = 100,
    num_steps: int | None = 1000,
    sampler: MCMCSampler | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
    schedule: str | Tensor = "sigmoid",
    steps_per_temperature: int = 1,
    gather: bool = True,
    step_sizes: Tensor | None = None,
) -> AISResult:
    """Forward AIS estimate of ``log Z = log ∫ exp(−E(x)) dx`` from ``base`` along the geometric path.

    ``log Ẑ = log mean_i w_i``, ``log w_i = Σ_t (β_t − β_{t−1}) (b(x_t) − E(x_t))`` with ``b = −log base``; a stochastic
    lower bound of ``log Z`` (Neal 2001). MALA and HMC transitions reuse the gradients of E and b at the current
    state across temperatures, so one MALA move costs one evaluation of E and ∇E.

    Args:
        energy: callable ``x -> (B,)``.
        base: normalised ``torch.distributions`` distribution, batch shape ``()``, event shape the data's
            (``fit_gaussian_base(data)``, ``uniform_box_base(low, high)``).
        num_chains: chains on this rank (at least 2 in all).
        num_steps: T, annealing increments (T − 1 transitions); implied by a schedule tensor.
        sampler: transition kernel (default ``MALA(0.01)``); its ``step_size`` should suit the data's scale. Other
            samplers go through ``run`` (Langevin is not exactly invariant and biases the estimate).
        chunk_size: chains annealed at once (default all); bounds memory on large data.
        generator: random source; results depend on it and on ``chunk_size``. Under DDP seed each rank differently.
        schedule: ``"sigmoid"``, ``"linear"`` or a tensor ``β_0 = 0 ≤ … ≤ β_T = 1``.
        steps_per_temperature: transitions at each intermediate β.
        gather: under an initialised ``torch.distributed`` process group, pool every rank's log weights
            (each rank runs its own chains; every rank must call).
        step_sizes: one step size per intermediate temperature ``β_1 … β_{T−1}`` (forward order), e.g. from
            ``lit_gen.mcmc.tune_ais_step_sizes``; overrides the sampler's ``step_size`` move by move (and restores
            it afterwards). Tuned on separate pilot chains, the schedule does not depend on these chains, so the
            estimate keeps its unbiasedness.

    Returns:
        ``AISResult``; ``samples`` are this rank's final states.
    """
    base = _check_base(base)
    num_chains = _check_int("num_chains", num_chains, 1)
    betas = _resolve_schedule(schedule, num_steps)
    chunk = num_chains if chunk_size is None else _check_int("chunk_size", chunk_size, 1)

    def starts():
        done = 0
        while done < num_chains:
            n = min(chunk, num_chains - done)
            done += n
            yield _sample_base(base, n, generator)

    return _anneal_chunks(energy, base, starts(), betas, sampler, steps_per_temperature, generator, "forward", gather,
                          step_sizes)


def ais_log_partition_reverse(
    energy: EnergyFn,
    base: Distribution,
    data: Tensor,
    num_steps: int | None = 1000,
    sampler: MCMCSampler | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
    schedule: str | Tensor = "sigmoid",
    steps_per_temperature: int = 1,
    gather: bool = True,
    step_sizes: Tensor | None = None,
) -> AISResult:
    """Reverse AIS from ``data`` (one chain per row) annealed from β = 1 to 0: ``log Ẑ = −log mean_i w_i``.

    With exact samples of ``exp(−E)/Z`` as starts ``E[w] = 1/Z``, so ``log Ẑ`` is a stochastic upper bound of
    ``log Z`` (Grosse et al. 2015; Burda et al. 2015); data stand in for those samples to the extent the model fits
    them. Arguments as in ``ais_log_partition``; the schedule (and ``step_sizes``) is run backwards.
    """
    base = _check_base(base)
    if not isinstance(data, Tensor) or not data.is_floating_point() or data.dim() < 1:
        raise TypeError("data must be a floating-point tensor (N, *event) of reverse-chain starts")
    if tuple(data.shape[1:]) != tuple(base.event_shape):
        raise ValueError(
            f"data of shape {tuple(data.shape)} do not match the base's event shape {tuple(base.event_shape)}"
        )
    if not bool(torch.isfinite(data).all()):
        raise ValueError("reverse AIS: data hold NaN or infinite values; clean them first")
    betas = _resolve_schedule(schedule, num_steps)[::-1]
    chunk = data.shape[0] if chunk_size is None else _check_int("chunk_size", chunk_size, 1)
    starts = (data[i : i + chunk].detach() for i in range(0, data.shape[0], chunk))
    return _anneal_chunks(energy, base, starts, betas, sampler, steps_per_temperature, generator, "reverse", gather,
                          step_sizes)


def ais_bracket(
    energy: EnergyFn,
    base: Distribution,
    data: Tensor,
    num_chains: int = 100,
    num_steps: int | None = 1000,
    sampler: MCMCSampler | None = None,
    num_reverse_chains: int | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
    schedule: str | Tensor = "sigmoid",
    steps_per_temperature: int = 1,
    gather: bool = True,
    step_sizes: Tensor | None = None,
) -> AISBracket:
    """Bracket of the mean NLL of ``data`` (nats per point): forward AIS below, reverse AIS above.

    ``NLL(x) = E(x) + log Z``; the reverse chains start at ``num_reverse_chains`` rows of ``data`` drawn without
    replacement (default ``min(N, num_chains)``). Under DDP the mean energy and the weights are pooled over ranks.
    """
    if not isinstance(data, Tensor) or data.dim() < 1 or data.shape[0] < 2:
        raise ValueError("data must be a tensor (N, *event) with at least two points")
    n_rev = min(data.shape[0], num_chains) if num_reverse_chains is None else num_reverse_chains
    n_rev = _check_int("num_reverse_chains", n_rev, 1)
    if n_rev > data.shape[0]:
        raise ValueError(f"num_reverse_chains={n_rev} exceeds the {data.shape[0]} data points")
    common = dict(num_steps=num_steps, sampler=sampler, chunk_size=chunk_size, generator=generator,
                  schedule=schedule, steps_per_temperature=steps_per_temperature, gather=gather,
                  step_sizes=step_sizes)
    forward = ais_log_partition(energy, base, num_chains=num_chains, **common)
    perm = torch.randperm(data.shape[0], generator=generator, device=generator.device if generator else "cpu")
    reverse = ais_log_partition_reverse(energy, base, data[perm[:n_rev].to(data.device)], **common)
    step = data.shape[0] if chunk_size is None else chunk_size
    with torch.no_grad():
        total = sum(energy(data[i : i + step]).double().sum() for i in range(0, data.shape[0], step))
    if not bool(torch.isfinite(total)):
        raise FloatingPointError("the energy is non-finite at some data points: their NLL is undefined")
    pooled = torch.stack([total, torch.tensor(float(data.shape[0]), dtype=torch.float64, device=total.device)])
    if gather:
        pooled = _all_reduce_sum(pooled)
    mean_energy = float(pooled[0] / pooled[1])
    return AISBracket(
        nll_lower=mean_energy + forward.log_z,
        nll_upper=mean_energy + reverse.log_z,
        mean_energy=mean_energy,
        forward=forward,
        reverse=reverse,
    )

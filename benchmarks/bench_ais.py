"""AIS estimates of log Z: lit_gen's ``ais_log_partition`` against ebmkit's ``ais_log_z`` on the same energies.

Annealed importance sampling (Neal 2001) along the geometric path ``E_β = β E + (1 − β) b``, ``b = −log p₀``, from a
normalised base ``p₀``: ``log w = Σ_t (β_t − β_{t−1}) (b(x_t) − E(x_t))``, ``log Ẑ = log mean_i w_i``, a stochastic
lower bound of ``log Z = log ∫ exp(−E)``; run backwards from exact samples of ``exp(−E)/Z`` it gives a stochastic
upper bound (Grosse, Ghahramani & Adams 2015; Burda, Grosse & Salakhutdinov 2015), so the two bracket ``log Z``
(``docs/algorithms.md#annealed-importance-sampling``). Both libraries report the delta-method standard error
``sd(w) / (√n mean w)`` and the ESS ``(Σ w)² / Σ w²`` (the same formulas: read from both sources).

Matched per energy, for both libraries: the same base distribution object, the same inverse temperatures (lit_gen's
sigmoidal schedule of Grosse, Maddison & Salakhutdinov 2013, δ = 4, passed to ebmkit as an explicit tensor), the same
number of chains, one MCMC transition per temperature, and the same kernel with the same constants:

- MALA (Roberts & Tweedie 1996): both libraries propose ``x' = x − η ∇E_β(x) + √(2η) ξ`` and accept with the
  Metropolis–Hastings ratio of the Gaussian proposals of variance ``2η`` (``ebm.samplers.MALA(step_size=η)`` and
  ``lit_gen.mcmc.MALA(step_size=η)`` mean the same ``η``);
- HMC (Duane et al. 1987; Neal 2011) on one energy: identity mass, momentum ``p ~ N(0, I)``, ``L`` leapfrog steps of
  size ``ε`` with half momentum steps at both ends and the test ``min(1, exp(H − H'))``
  (``ebm.samplers.HMC(step_size=ε, leapfrog_steps=L)``, ``lit_gen.mcmc.HMC(step_size=ε, num_leapfrog=L)``).

ebmkit's step-size adaptation between temperatures (on by default) is switched off (``adapt_step_size=False``),
and lit_gen's per-temperature tuning is not used, so the kernels are the same; a second table gives each library its
own step-size rule from a mis-set first step (lit_gen: ``tune_ais_step_sizes`` on pilot chains, frozen; ebmkit: its
default rescaling of the real chains' step). One structural difference remains: with ``T``
increments ebmkit runs ``T`` transitions (one more at β = 1, after the last weight update, which changes no weight)
and lit_gen ``T − 1``. lit_gen keeps ``E``, ``b`` and their gradients at the current state across temperatures, ebmkit
recomputes them (and evaluates ``E`` once more, without gradient, for each weight update); the ``E rows/step`` column
counts the energy evaluations per chain and increment with a counting wrapper.

Energies (the first four with exact ``log Z``; reverse chains start at exact samples):

- ``gauss-2d``, ``gauss-10d``, ``gauss-64d``: ``E = ½ (x − μ)ᵀ Σ⁻¹ (x − μ)`` with a random rotation of log-spaced
  standard deviations (anisotropic) and a non-zero mean, ``log Z = (d/2) log 2π + ½ log det Σ``; base
  ``N(0, s² I)`` wider than the target;
- ``mixture-2d``: ``E = −log Σ_k w_k N(x; μ_k, σ_k² I) − 2`` with weights 0.6/0.3/0.1 and modes 5–8 apart at
  σ_k ≤ 0.5 (MALA never crosses between them; the weights must do it), ``log Z = 2``;
- ``digits EBM``: ``lit_gen.models.EBMModule`` trained from ``configs/ebm/digits.yaml`` through ``lit-gen fit``
  (``lit_gen.cli.build_cli``) for a short budget (200 steps; ``--quick`` 20), its test-time energy
  ``module.energy`` on ``(1, 8, 8)`` images. No truth. Two bases: (a) ``fit_gaussian_base`` on the dequantised
  training images (an ``ℝ⁶⁴`` normaliser), (b) ``uniform_box_base(−1, 1)`` (the normaliser on the data's box
  ``[−1, 1]⁶⁴``, where the model's own sampler keeps its chains). Reverse chains start at dequantised test images,
  which are model samples only as far as the model fits the data. The run also prints ``E`` at scaled data ``c·x``:
  a SiLU network grows at most linearly, and where ``E`` falls along rays ``∫_{ℝ⁶⁴} exp(−E)`` diverges, so (a) has
  no finite target and both libraries' numbers there only reflect how far their chains travelled.

Every setting is run ``--repeats`` times, the two libraries interleaved (the first one alternating), with seeds shared
by the two (ebmkit draws from the global torch RNG, lit_gen from a ``torch.Generator``); wall times are medians.
Reported per energy and library: ``log Z`` (true), the forward estimate (mean over repeats) and its error, the
median reported stderr, the mean over repeats of ``(log Ẑ − log Z) / stderr``, the spread of the estimates over
repeats, ESS, the reverse (upper) estimate, and times. A second table shows the error of ``gauss-64d`` at several
``T``.

    python benchmarks/bench_ais.py [--quick] [--repeats R] --out benchmarks/results/ais.md

Budget on one contended core (1 torch thread), measured on a shared, loaded 2-core machine: ``--quick`` (T = 100,
64 chains, 2 repeats, 20 training steps, digits T = 50 with 32 chains) under a minute; the default (T = 1000, 128
chains, 3 repeats; digits 200 training steps, T = 500 with 64 chains, 2 repeats; convergence at T = 10, 100, 1000)
about 8 minutes, a third of it the digits training (allow up to 12 under heavier load). If ebmkit is not
installed (``pip install ebmkit``, the ``bench`` extra) lit_gen runs alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import math
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from lit_gen.diffusion.likelihood import dequantize
from lit_gen.mcmc import HMC, MALA, tune_ais_step_sizes
from lit_gen.mcmc.ais import (
    ais_log_partition,
    ais_log_partition_reverse,
    annealing_schedule,
    fit_gaussian_base,
    uniform_box_base,
)

ROOT = Path(__file__).resolve().parents[1]
DIGITS_CONFIG = ROOT / "configs" / "ebm" / "digits.yaml"
LIBRARIES = ("lit_gen", "ebmkit")


# ----------------------------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Kernel:
    """The MCMC transition run at each temperature: ``"mala"`` (step η) or ``"hmc"`` (step ε, ``leapfrog`` steps)."""

    kind: str
    step_size: float
    leapfrog: int = 0

    def describe(self) -> str:
        """A table cell: ``MALA η=…`` or ``HMC ε=…, L=…``."""
        if self.kind == "mala":
            return f"MALA η={self.step_size:g}"
        return f"HMC ε={self.step_size:g}, L={self.leapfrog}"


@dataclass
class Problem:
    """One energy with its base, kernel, exact ``log Z`` (or ``None``) and a source of reverse-chain starts."""

    name: str
    shape: tuple[int, ...]
    energy: Callable[[Tensor], Tensor]
    base: Distribution
    kernel: Kernel
    log_z: float | None
    reverse_starts: Callable[[int, torch.Generator], Tensor]
    base_label: str = ""


class CountingEnergy:
    """Wraps an energy ``x -> (B,)`` and counts the rows it evaluates (forward passes, with or without gradient)."""

    def __init__(self, energy: Callable[[Tensor], Tensor]) -> None:
        self.energy, self.rows = energy, 0

    def __call__(self, x: Tensor) -> Tensor:
        self.rows += int(x.shape[0])
        return self.energy(x)


def gaussian_problem(name: str, dim: int, std_range: tuple[float, float], base_std: float, kernel: Kernel,
                     seed: int) -> Problem:
    """``E = ½ (x − μ)ᵀ Σ⁻¹ (x − μ)``, ``Σ = Q diag(s²) Qᵀ`` (Q a random rotation, s log-spaced in ``std_range``),
    ``μ ~ N(0, 1)``; ``log Z = (d/2) log 2π + Σ log s``; exact samples ``μ + Q (s ⊙ z)``; base ``N(0, base_std² I)``."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    std = torch.logspace(math.log10(std_range[0]), math.log10(std_range[1]), dim, dtype=torch.float64)
    mean = torch.randn(dim, generator=gen, dtype=torch.float64)
    precision = (q @ torch.diag(std**-2) @ q.T).float()
    mu, root = mean.float(), (q @ torch.diag(std)).float()
    log_z = 0.5 * dim * math.log(2 * math.pi) + float(std.log().sum())

    def energy(x: Tensor) -> Tensor:
        z = x - mu
        return 0.5 * ((z @ precision) * z).sum(-1)

    def starts(n: int, generator: torch.Generator) -> Tensor:
        return mu + torch.randn(n, dim, generator=generator) @ root.T

    base = Independent(Normal(torch.zeros(dim), torch.full((dim,), base_std)), 1)
    return Problem(name, (dim,), energy, base, kernel, log_z, starts, f"N(0, {base_std:g}² I)")


def mixture_problem(kernel: Kernel) -> Problem:
    """``E = −log Σ_k w_k N(x; μ_k, σ_k² I) − 2`` in 2-D, weights 0.6/0.3/0.1, so ``log Z = 2`` exactly."""
    weights = torch.tensor([0.6, 0.3, 0.1])
    means = torch.tensor([[-4.0, -3.0], [4.0, -3.0], [0.0, 4.0]])
    stds = torch.tensor([0.5, 0.3, 0.4])
    offset = 2.0

    def energy(x: Tensor) -> Tensor:
        sq = ((x[:, None, :] - means) ** 2).sum(-1)
        log_comp = weights.log() - sq / (2 * stds**2) - torch.log(2 * math.pi * stds**2)
        return -torch.logsumexp(log_comp, dim=1) - offset

    def starts(n: int, generator: torch.Generator) -> Tensor:
        k = torch.multinomial(weights, n, replacement=True, generator=generator)
        return means[k] + stds[k, None] * torch.randn(n, 2, generator=generator)

    base = Independent(Normal(torch.zeros(2), torch.full((2,), 4.0)), 1)
    return Problem("mixture-2d", (2,), energy, base, kernel, offset, starts, "N(0, 4² I)")


def analytic_problems() -> list[Problem]:
    """The energies with exact log Z; at T = 1000 the step sizes give lit_gen acceptance rates of 0.90–0.99."""
    return [
        gaussian_problem("gauss-2d", 2, (0.5, 2.0), 4.0, Kernel("mala", 0.2), seed=2),
        gaussian_problem("gauss-10d", 10, (0.3, 2.0), 3.0, Kernel("mala", 0.05), seed=10),
        gaussian_problem("gauss-10d", 10, (0.3, 2.0), 3.0, Kernel("hmc", 0.1, 5), seed=10),
        gaussian_problem("gauss-64d", 64, (0.5, 1.5), 2.0, Kernel("mala", 0.1), seed=64),
        mixture_problem(Kernel("mala", 0.05)),
    ]


# ----------------------------------------------------------------------------------------------- digits EBM
def train_digits_ebm(steps: int, workdir: str) -> Any:
    """``lit-gen fit --config configs/ebm/digits.yaml`` for ``steps`` steps (no validation, callbacks, logger or
    checkpoints); returns the LightningCLI (``.model``, ``.datamodule``)."""
    from lit_gen.cli import build_cli

    args = ["fit", "--config", str(DIGITS_CONFIG), "--trainer.max_steps", str(steps),
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.enable_checkpointing", "false",
            "--trainer.callbacks", "[]", "--trainer.limit_val_batches", "0",
            "--trainer.default_root_dir", str(Path(workdir) / "ebm_digits")]
    return build_cli(args)


def digits_problems(cli: Any, gaussian_step: float, box_step: float) -> tuple[list[Problem], list[str]]:
    """The trained EBM's energy with a Gaussian base fitted to the dequantised training images and with the uniform
    base on [−1, 1]⁶⁴; plus notes on how ``E`` behaves on scaled data (normalisability on ℝ⁶⁴)."""
    module = cli.model.eval()
    module.energy_net.requires_grad_(False)  # gradients w.r.t. the states only, in both libraries
    dm = cli.datamodule
    # sklearn's digits hold 17 grey levels (x / 16 · 2 − 1)
    train = dequantize(dm.tensor("train"), 17, generator=torch.Generator().manual_seed(0))
    test = dequantize(dm.tensor("test"), 17, generator=torch.Generator().manual_seed(1))

    def energy(x: Tensor) -> Tensor:
        return module.energy(x)

    def starts(n: int, generator: torch.Generator) -> Tensor:
        return test[torch.randperm(test.shape[0], generator=generator)[: min(n, test.shape[0])]]

    shape = tuple(train.shape[1:])
    gaussian = fit_gaussian_base(train)
    box = uniform_box_base(-1.0, 1.0, shape)
    with torch.no_grad():
        scaled = {c: float(energy(c * test).mean()) for c in (1.0, 10.0, 100.0)}
    notes = ["mean E over the test images x, at c·x: " + ", ".join(f"c = {c:g}: {v:.3g}" for c, v in scaled.items())]
    problems = [
        Problem("digits EBM (ℝ⁶⁴)", shape, energy, gaussian, Kernel("mala", gaussian_step), None, starts,
                "fit_gaussian_base(train)"),
        Problem("digits EBM ([−1,1]⁶⁴)", shape, energy, box, Kernel("mala", box_step), None, starts,
                "uniform_box_base(−1, 1)"),
    ]
    return problems, notes


# ----------------------------------------------------------------------------------------------- the two libraries
@dataclass
class Run:
    """One AIS run: estimate, reported stderr, ESS, wall seconds, energy rows per chain and increment, acceptance."""

    log_z: float
    stderr: float
    ess: float
    seconds: float
    rows_per_step: float
    acceptance: float = math.nan


PILOT_CHAINS = 16


def run_lit_gen(problem: Problem, betas: Tensor, chains: int, seed: int, starts: Tensor | None,
                tune: bool = False) -> Run:
    """lit_gen's forward AIS (``starts is None``) or reverse AIS from ``starts``; with ``tune``, its own step sizes:
    ``tune_ais_step_sizes`` on 16 separate pilot chains (Robbins–Monro on log ε towards 57 % acceptance, one step
    per temperature), frozen for the real chains, the pilot's evaluations and time counted in the run's."""
    k = problem.kernel
    sampler = MALA(k.step_size) if k.kind == "mala" else HMC(k.step_size, num_leapfrog=k.leapfrog)
    energy = CountingEnergy(problem.energy)
    gen = torch.Generator().manual_seed(seed)
    steps = betas.numel() - 1
    t0 = time.perf_counter()
    step_sizes = tune_ais_step_sizes(energy, problem.base, steps, sampler=sampler, num_chains=PILOT_CHAINS,
                                     schedule=betas, generator=gen).step_sizes if tune else None
    if starts is None:
        res = ais_log_partition(energy, problem.base, num_chains=chains, num_steps=steps, sampler=sampler,
                                generator=gen, schedule=betas, step_sizes=step_sizes)
    else:
        res = ais_log_partition_reverse(energy, problem.base, starts, num_steps=steps, sampler=sampler,
                                        generator=gen, schedule=betas, step_sizes=step_sizes)
    seconds = time.perf_counter() - t0
    n = chains if starts is None else starts.shape[0]
    return Run(res.log_z, res.stderr, res.ess, seconds, energy.rows / (n * steps), res.acceptance_rate)


def run_ebmkit(problem: Problem, betas: Tensor, chains: int, seed: int, starts: Tensor | None,
               adapt: bool = False) -> Run:
    """ebmkit's ``ais_log_z`` / ``reverse_ais_log_z`` with the same base, betas and kernel, no step adaptation
    unless ``adapt``."""
    import ebm
    from ebm.samplers import HMC as EbmHMC
    from ebm.samplers import MALA as EbmMALA

    k = problem.kernel
    sampler = EbmMALA(step_size=k.step_size, steps=1) if k.kind == "mala" \
        else EbmHMC(step_size=k.step_size, leapfrog_steps=k.leapfrog, steps=1)
    energy = CountingEnergy(problem.energy)
    steps = betas.numel() - 1
    torch.manual_seed(seed)  # ebmkit draws from the global RNG
    common = dict(base=problem.base, n_temps=steps, transitions=1, sampler=sampler, schedule=betas,
                  adapt_step_size=adapt)
    t0 = time.perf_counter()
    if starts is None:
        res = ebm.ais_log_z(energy, problem.shape, n_chains=chains, **common)
    else:
        res = ebm.reverse_ais_log_z(energy, starts, **common)
    seconds = time.perf_counter() - t0
    n = chains if starts is None else starts.shape[0]
    return Run(res.log_z, res.stderr, res.ess, seconds, energy.rows / (n * steps))


def run_lit_gen_tuned(problem: Problem, betas: Tensor, chains: int, seed: int, starts: Tensor | None) -> Run:
    """lit_gen with its pilot-tuned step sizes (``run_lit_gen(..., tune=True)``)."""
    return run_lit_gen(problem, betas, chains, seed, starts, tune=True)


def run_ebmkit_adaptive(problem: Problem, betas: Tensor, chains: int, seed: int, starts: Tensor | None) -> Run:
    """ebmkit with its default step-size adaptation: after every transition of the real chains the step is
    multiplied by 1.1 when their acceptance is above 0.8 and by 0.9 when below 0.5."""
    return run_ebmkit(problem, betas, chains, seed, starts, adapt=True)


RUNNERS: dict[str, Callable[[Problem, Tensor, int, int, Tensor | None], Run]] = {
    "lit_gen": run_lit_gen, "ebmkit": run_ebmkit,
    "lit_gen tuned": run_lit_gen_tuned, "ebmkit adaptive": run_ebmkit_adaptive}


def available_contenders(notes: list[str]) -> list[str]:
    """lit_gen and ebmkit when it is installed; a missing ebmkit is noted and skipped."""
    try:
        import ebm  # noqa: F401
    except ImportError:
        notes.append("- ebmkit is not installed (`pip install ebmkit`, the `bench` extra): lit_gen ran alone.")
        print("note: ebmkit is not installed; running lit_gen alone")
        return ["lit_gen"]
    return list(LIBRARIES)


# ----------------------------------------------------------------------------------------------- comparison
@dataclass
class Row:
    """Aggregated repeats of one library on one problem at one ``T``."""

    problem: str
    kernel: str
    library: str
    num_steps: int
    num_chains: int
    log_z: float | None
    base: str = ""
    forward: list[Run] = field(default_factory=list)
    reverse: list[Run] = field(default_factory=list)

    @property
    def estimate(self) -> float:
        """Mean forward ``log Ẑ`` over repeats."""
        return statistics.fmean(r.log_z for r in self.forward)

    @property
    def stderr(self) -> float:
        """Median reported stderr of one forward run."""
        return statistics.median(r.stderr for r in self.forward)

    @property
    def error(self) -> float:
        """Mean forward ``log Ẑ − log Z`` (NaN without a truth)."""
        return math.nan if self.log_z is None else self.estimate - self.log_z

    @property
    def z(self) -> float:
        """Mean over repeats of ``(log Ẑ − log Z) / stderr`` of each run."""
        if self.log_z is None:
            return math.nan
        return statistics.fmean((r.log_z - self.log_z) / r.stderr for r in self.forward)

    @property
    def spread(self) -> float:
        """Standard deviation of the forward estimates over repeats (NaN with one repeat)."""
        return statistics.stdev(r.log_z for r in self.forward) if len(self.forward) > 1 else math.nan

    @property
    def reverse_estimate(self) -> float:
        """Mean reverse (upper) ``log Ẑ`` over repeats."""
        return statistics.fmean(r.log_z for r in self.reverse) if self.reverse else math.nan

    @property
    def reverse_stderr(self) -> float:
        """Median reported stderr of one reverse run."""
        return statistics.median(r.stderr for r in self.reverse) if self.reverse else math.nan

    def median(self, what: str, reverse: bool = False) -> float:
        """Median over repeats of one ``Run`` field."""
        runs = self.reverse if reverse else self.forward
        return statistics.median(getattr(r, what) for r in runs) if runs else math.nan


def compare(problem: Problem, libraries: list[str], num_steps: int, num_chains: int, repeats: int, seed: int = 0,
            reverse: bool = True) -> list[Row]:
    """Both directions of AIS by every library on ``problem``, ``repeats`` times, the libraries interleaved.

    Repeat ``r`` uses seed ``seed + r`` for every library (the same base draws are not shared: each library draws
    its own from its own RNG) and the same exact/data starts for the reverse chains; the library that goes first
    alternates between repeats so that a load change hits both alike.
    """
    betas = annealing_schedule(num_steps, "sigmoid")
    rows = {lib: Row(problem.name, problem.kernel.describe(), lib, num_steps, num_chains, problem.log_z,
                     problem.base_label) for lib in libraries}
    for r in range(repeats):
        order = libraries if r % 2 == 0 else libraries[::-1]
        starts = problem.reverse_starts(num_chains, torch.Generator().manual_seed(10_000 + seed + r)) \
            if reverse else None
        for lib in order:
            rows[lib].forward.append(RUNNERS[lib](problem, betas, num_chains, seed + r, None))
            if starts is not None:
                rows[lib].reverse.append(RUNNERS[lib](problem, betas, num_chains, seed + r + 5_000, starts))
    return [rows[lib] for lib in libraries]


# ----------------------------------------------------------------------------------------------- tables
def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


HEADER = ("| energy | base | kernel | T | chains | library | log Z | forward log Ẑ | error | stderr | error/stderr "
          "| sd over repeats | ESS | accept | reverse log Ẑ | reverse stderr | forward s | reverse s | E rows/step |")


def table(rows: list[Row]) -> list[str]:
    """Markdown table of aggregated rows (one line per library and problem)."""
    lines = [HEADER, "|" + "---|" * 6 + "---:|" * 13]
    for row in rows:
        lines.append(
            f"| {row.problem} | {row.base} | {row.kernel} | {row.num_steps} | {row.num_chains} | {row.library} "
            f"| {_f(row.log_z)} | {_f(row.estimate)} | {_f(row.error)} | {_f(row.stderr)} | {_f(row.z, 2)} "
            f"| {_f(row.spread)} | {_f(row.median('ess'), 1)} | {_f(row.median('acceptance'), 2)} "
            f"| {_f(row.reverse_estimate)} | {_f(row.reverse_stderr)} | {_f(row.median('seconds'), 2)} "
            f"| {_f(row.median('seconds', reverse=True), 2)} | {_f(row.median('rows_per_step'), 2)} |")
    return lines


def convergence_table(rows: list[Row]) -> list[str]:
    """Error of forward and reverse estimates against ``T`` (one line per T and library)."""
    lines = ["| T | library | forward error | stderr | error/stderr | ESS | reverse error | reverse stderr "
             "| forward s |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        rev_err = row.reverse_estimate - row.log_z if row.log_z is not None else math.nan
        lines.append(f"| {row.num_steps} | {row.library} | {_f(row.error)} | {_f(row.stderr)} | {_f(row.z, 2)} "
                     f"| {_f(row.median('ess'), 1)} | {_f(rev_err)} | {_f(row.reverse_stderr)} "
                     f"| {_f(row.median('seconds'), 2)} |")
    return lines


def reading(rows: list[Row], convergence: list[Row]) -> list[str]:
    """Plain statements computed from the rows: accuracy against the truth, agreement, brackets, speed."""
    out: list[str] = []
    by_key: dict[tuple[str, str], dict[str, Row]] = {}
    for row in rows:
        by_key.setdefault((row.problem, row.kernel), {})[row.library] = row
    ratios: list[float] = []
    for (name, kernel), libs in by_key.items():
        lit, peer = libs.get("lit_gen"), libs.get("ebmkit")
        if lit is None:
            continue
        if peer is None:
            out.append(f"- **{name}** ({kernel}): lit_gen error {_f(lit.error)} ({_f(lit.z, 2)} stderr).")
            continue
        ratio = peer.median("seconds") / lit.median("seconds")
        ratios.append(ratio)
        diff = lit.estimate - peer.estimate
        joint = math.hypot(lit.stderr, peer.stderr) / math.sqrt(len(lit.forward))
        verdict = (f"the two means agree (difference {_f(diff)}, 2 × joint stderr of the means {_f(2 * joint)})"
                   if abs(diff) <= 2 * joint else
                   f"the two means differ (difference {_f(diff)}, 2 × joint stderr of the means {_f(2 * joint)})")
        bracket = ""
        if lit.reverse and peer.reverse:
            crossed = [lib for lib, r in (("lit_gen", lit), ("ebmkit", peer)) if r.reverse_estimate < r.estimate]
            bracket = (f"; brackets [forward, reverse]: lit_gen [{_f(lit.estimate)}, {_f(lit.reverse_estimate)}], "
                       f"ebmkit [{_f(peer.estimate)}, {_f(peer.reverse_estimate)}]")
            if crossed:
                bracket += f" (crossed for {' and '.join(crossed)}: reverse below forward)"
        if lit.log_z is not None:
            closer = ""
            if abs(diff) > 2 * joint:
                closer = f"; closer to the truth: {'lit_gen' if abs(lit.error) < abs(peer.error) else 'ebmkit'}"
            out.append(
                f"- **{name}** ({kernel}): error lit_gen {_f(lit.error)} ({_f(lit.z, 2)} stderr), ebmkit "
                f"{_f(peer.error)} ({_f(peer.z, 2)} stderr); {verdict}{closer}{bracket}; ebmkit/lit_gen forward "
                f"time {ratio:.2f}.")
        else:
            out.append(
                f"- **{name}** ({kernel}): no truth; lit_gen {_f(lit.estimate)} ± {_f(lit.stderr)}, ebmkit "
                f"{_f(peer.estimate)} ± {_f(peer.stderr)}; {verdict}{bracket}; ebmkit/lit_gen forward time "
                f"{ratio:.2f}.")
    if ratios:
        out.append(f"- Forward wall time, ebmkit / lit_gen, median over the energies: {statistics.median(ratios):.2f} "
                   f"(range {min(ratios):.2f}–{max(ratios):.2f}).")
    if convergence:
        errs = {(r.library, r.num_steps): r.error for r in convergence}
        steps = sorted({r.num_steps for r in convergence})
        for lib in dict.fromkeys(r.library for r in convergence):
            out.append(f"- {convergence[0].problem}, {lib}: forward error at T = "
                       + ", ".join(f"{t}: {_f(errs[(lib, t)], 2)}" for t in steps) + ".")
    return out


def adaptation_problems() -> list[Problem]:
    """gauss-10d and gauss-64d of the matched table (their MALA rows) with a first step 50× too small and 10× too
    large."""
    chosen = [p for p in analytic_problems() if p.name in ("gauss-10d", "gauss-64d") and p.kernel.kind == "mala"]
    return [dataclasses.replace(p, kernel=Kernel("mala", eta)) for p in chosen for eta in (0.002, 1.0)]


def adaptation_table(rows: list[Row]) -> list[str]:
    """Error of forward and reverse estimates with each library's own step-size rule, from a mis-set step."""
    lines = ["| energy | first step | T | library | forward error | stderr | error/stderr | ESS | accept "
             "| reverse error | bracket width | forward s |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        rev_err = row.reverse_estimate - row.log_z if row.log_z is not None else math.nan
        lines.append(f"| {row.problem} | {row.kernel} | {row.num_steps} | {row.library} | {_f(row.error)} "
                     f"| {_f(row.stderr)} | {_f(row.z, 2)} | {_f(row.median('ess'), 1)} "
                     f"| {_f(row.median('acceptance'), 2)} | {_f(rev_err)} "
                     f"| {_f(row.reverse_estimate - row.estimate)} | {_f(row.median('seconds'), 2)} |")
    return lines


def adaptation_reading(rows: list[Row]) -> list[str]:
    """One line per energy and first step: each library's forward error and bracket width (reverse − forward)."""
    out: list[str] = []
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.problem, row.kernel), []).append(row)
    for (name, kernel), group in groups.items():
        parts = [f"{r.library} error {_f(r.error, 2)}, width {_f(r.reverse_estimate - r.estimate, 2)} "
                 f"(accept {_f(r.median('acceptance'), 2)})" for r in group]
        best = min(group, key=lambda r: abs(r.reverse_estimate - r.estimate)
                   if r.reverse else math.inf)
        out.append(f"- **{name}**, first step {kernel}: " + "; ".join(parts) + f"; narrowest bracket: {best.library}.")
    return out


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small budgets (about 1.5 min on one core)")
    p.add_argument("--repeats", type=int, default=None, help="repeats of every analytic setting (default 3, quick 2)")
    p.add_argument("--steps", type=int, default=None, help="annealing increments T on the analytic energies")
    p.add_argument("--chains", type=int, default=None, help="chains on the analytic energies")
    p.add_argument("--train-steps", type=int, default=None, help="training steps of the digits EBM")
    p.add_argument("--no-digits", action="store_true", help="skip the trained digits EBM")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ais.md")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    q = args.quick
    repeats = args.repeats or (2 if q else 3)
    steps = args.steps or (100 if q else 1000)
    chains = args.chains or (64 if q else 128)
    train_steps = args.train_steps or (20 if q else 200)
    digits_steps, digits_chains, digits_repeats = (50, 32, 1) if q else (500, 64, 2)
    conv_steps = (10, 100) if q else (10, 100, 1000)
    notes: list[str] = []
    libraries = available_contenders(notes)
    command = "python benchmarks/bench_ais.py" + (" --quick" if q else "")
    for flag, value in (("--repeats", args.repeats), ("--steps", args.steps), ("--chains", args.chains),
                        ("--train-steps", args.train_steps)):
        if value is not None:
            command += f" {flag} {value}"
    if args.no_digits:
        command += " --no-digits"

    started = time.perf_counter()
    rows: list[Row] = []
    for problem in analytic_problems():
        rows += compare(problem, libraries, steps, chains, repeats)
        print("\n".join(table(rows[-len(libraries):])[2:]), flush=True)

    convergence: list[Row] = []
    gauss64 = next(p for p in analytic_problems() if p.name == "gauss-64d")
    for t in conv_steps:
        convergence += compare(gauss64, libraries, t, chains, repeats, seed=100)
        print("\n".join(convergence_table(convergence[-len(libraries):])[2:]), flush=True)

    adaptive_libs = ["lit_gen", "lit_gen tuned"] + (["ebmkit adaptive"] if "ebmkit" in libraries else [])
    adaptation: list[Row] = []
    for problem in adaptation_problems():
        adaptation += compare(problem, adaptive_libs, steps, chains, repeats, seed=300)
        print("\n".join(adaptation_table(adaptation[-len(adaptive_libs):])[2:]), flush=True)

    digits_notes: list[str] = []
    train_s = math.nan
    if not args.no_digits:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:
            cli = train_digits_ebm(train_steps, workdir)
        train_s = time.perf_counter() - t0
        problems, digits_notes = digits_problems(cli, gaussian_step=1e-3, box_step=1e-3)
        print(digits_notes[0], flush=True)
        for problem in problems:
            rows += compare(problem, libraries, digits_steps, digits_chains, digits_repeats, seed=200)
            print("\n".join(table(rows[-len(libraries):])[2:]), flush=True)
    minutes = (time.perf_counter() - started) / 60

    versions = f"torch {torch.__version__}"
    if "ebmkit" in libraries:
        versions += f" · ebmkit {importlib.metadata.version('ebmkit')}"
    lines = [
        "## AIS log Z: lit_gen against ebmkit", "",
        f"Command: `{command}` · {datetime.date.today()} · {versions} · cpu ({platform.machine()}, 1 thread) · "
        f"{minutes:.1f} min on a shared, loaded 2-core machine", "",
        "Same energy, base distribution object, inverse temperatures (sigmoidal schedule, δ = 4, handed to ebmkit as "
        "a tensor), chains, one transition per temperature and the same kernel in both libraries: MALA with "
        "proposal `x − η∇E_β + √(2η) ξ` (ebmkit's and lit_gen's `step_size` are both this η), or HMC with identity "
        "mass, ε and L leapfrog steps; ebmkit's step-size adaptation off (lit_gen's tuning off; both are compared "
        "below). Reverse chains start at "
        "exact samples (analytic energies) or dequantised test images (digits), the same tensor for both libraries. "
        f"Analytic energies: T = {steps}, {chains} chains, {repeats} repeats; digits EBM: {train_steps} training "
        f"steps of `configs/ebm/digits.yaml` ({_f(train_s, 0)} s), T = {digits_steps}, {digits_chains} chains, "
        f"{digits_repeats} repeat(s). *forward log Ẑ*: mean over repeats; *stderr*: median reported stderr of one run; "
        "*error/stderr*: mean over repeats of each run's (log Ẑ − log Z)/stderr; *accept*: lit_gen's acceptance "
        "rate (ebmkit keeps only the last step's); *E rows/step*: energy evaluations per chain and increment "
        "(with or without gradient); times are medians over repeats, libraries interleaved.", "",
        *table(rows), "",
        f"Convergence on gauss-64d ({chains} chains, {repeats} repeats, same kernel):", "",
        *convergence_table(convergence), "",
        f"Each library's own step-size rule, from a first MALA step 50× too small (0.002) or 10× too large (1.0), "
        f"T = {steps}, {chains} chains, {repeats} repeats, the same schedule: *lit_gen* keeps the first step; "
        f"*lit_gen tuned* runs `tune_ais_step_sizes` on {PILOT_CHAINS} separate pilot chains (Robbins–Monro on "
        "log ε towards 57 % acceptance, Andrieu & Thoms 2008) and freezes the schedule for the real chains, which "
        "keeps E[w] = Z exact; *ebmkit adaptive* is its default, which rescales the step of the real chains after "
        "every transition (× 1.1 above 80 % acceptance, × 0.9 below 50 %), so their weights follow a kernel chosen "
        "from their own past. Times include the pilot.", "",
        *adaptation_table(adaptation), "",
        "Reading (computed from the tables):", "",
        *reading(rows, convergence), *adaptation_reading(adaptation), "",
    ]
    if digits_notes:
        lines += [
            f"- Digits EBM: {digits_notes[0]}. An energy that falls along rays has ∫_ℝ⁶⁴ exp(−E) = ∞, so the ℝ⁶⁴ rows "
            "estimate no finite number: they show how far each library's chains travelled in T steps, and their "
            "agreement only says the two anneals are the same computation. The [−1, 1]⁶⁴ rows (uniform base) have a "
            "finite target, the normaliser of the model on the data's box.", ""]
    lines += [
        "Notes:", "",
        "- Each library draws its own base samples and noise, so the two are compared in distribution (means over "
        "repeats against the stderr), not chain by chain.",
        "- With T increments ebmkit makes T transitions (one more at β = 1, which changes no weight), lit_gen T − 1.",
        "- ebmkit recomputes E and ∇E at the current state in every transition and evaluates E once more (no "
        "gradient) for each weight update; lit_gen carries E, b and their gradients between temperatures (see "
        "*E rows/step*). On the cheap analytic energies Python overhead dominates the time, on the network the "
        "evaluations do.",
        "- lit_gen's HMC move evaluates E and ∇E once more at the end of each trajectory (the leapfrog's last "
        "evaluation is of the mixed E_β only, and the weights need E and b apart): L + 1 evaluations per move "
        "(6 rows/step at L = 5) against ebmkit's L + 1 with gradient plus one without, so its HMC saves no gradient "
        "and, with its per-step finiteness checks, is not faster than ebmkit's on a cheap energy.",
        "- The delta-method stderr is itself estimated from the weights: where the ESS is near 1 (a short anneal in "
        "64-D) it understates the real spread (compare *sd over repeats*), and 'agree'/'differ' inherits that.",
        "- Wall times were taken on a shared, loaded machine: ratios between the interleaved libraries are more "
        "reliable than absolute seconds.",
        *notes, ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

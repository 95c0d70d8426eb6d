"""MCMC samplers for energy-based models, in pure torch: ``p(x) ∝ exp(−E(x))`` for any ``energy(x) -> (B,)``.

Samplers share ``run(energy, x, num_steps, *, generator=None) -> MCMCResult``:
``Langevin`` (ULA, exact or tempered), ``MALA`` and ``HMC`` (Metropolis–Hastings corrected).
Chain initialisation: ``ReplayBuffer`` (persistent chains), ``NoiseInit`` (short-run), ``DataInit`` (CD-k),
with init distributions ``UniformInit`` and ``GaussianInit``.
``ReplicaExchange`` (parallel tempering around any of them), ``adapt_step_size`` / ``DualAveraging`` (step size to a
target acceptance), ``ais_log_partition`` / ``ais_log_partition_reverse`` / ``ais_bracket`` (log Z and NLL by AIS, with
``tune_ais_step_sizes`` for a per-temperature step and ``BoxReparametrization`` for models on a box),
and the diagnostics ``effective_sample_size``, ``split_rhat``, ``autocorrelation``, ``acceptance_rate``.
"""

from lit_gen.mcmc.adaptation import DEFAULT_TARGET_ACCEPT, AdaptationResult, DualAveraging, adapt_step_size
from lit_gen.mcmc.ais import (
    AISBracket,
    AISResult,
    ais_bracket,
    ais_log_partition,
    ais_log_partition_reverse,
    annealing_schedule,
    fit_gaussian_base,
    gather_log_weights,
    uniform_box_base,
    weight_statistics,
)
from lit_gen.mcmc.ais_box import BoxReparametrization, LogisticBoxBase
from lit_gen.mcmc.ais_tuning import AISStepSizes, tune_ais_step_sizes
from lit_gen.mcmc.base import EnergyFn, MCMCResult, MCMCSampler, energy_and_grad
from lit_gen.mcmc.conditional import (
    conditional_energy,
    guided_energy,
    jem_accuracy,
    jem_class_energy,
    jem_energy,
    product_of_experts,
)
from lit_gen.mcmc.diagnostics import (
    MCMCDiagnostics,
    acceptance_rate,
    autocorrelation,
    effective_sample_size,
    split_rhat,
    summarize,
)
from lit_gen.mcmc.hmc import HMC
from lit_gen.mcmc.init import (
    ChainInit,
    DataInit,
    GaussianInit,
    InitDistribution,
    NoiseInit,
    ReplayBuffer,
    UniformInit,
)
from lit_gen.mcmc.langevin import Langevin
from lit_gen.mcmc.long_run import LongRunResult, adaptable, long_run
from lit_gen.mcmc.mala import MALA
from lit_gen.mcmc.tempering import (
    ReplicaExchange,
    ReplicaExchangeResult,
    geometric_temperatures,
    per_chain_energy,
    tile_chains,
)

SAMPLERS: dict[str, type[MCMCSampler]] = {"langevin": Langevin, "mala": MALA, "hmc": HMC}

__all__ = [
    "DEFAULT_TARGET_ACCEPT",
    "AISBracket",
    "AISResult",
    "AISStepSizes",
    "BoxReparametrization",
    "LogisticBoxBase",
    "AdaptationResult",
    "DualAveraging",
    "MCMCDiagnostics",
    "ReplicaExchange",
    "ReplicaExchangeResult",
    "acceptance_rate",
    "adapt_step_size",
    "ais_bracket",
    "ais_log_partition",
    "ais_log_partition_reverse",
    "tune_ais_step_sizes",
    "annealing_schedule",
    "autocorrelation",
    "effective_sample_size",
    "fit_gaussian_base",
    "gather_log_weights",
    "geometric_temperatures",
    "per_chain_energy",
    "tile_chains",
    "split_rhat",
    "summarize",
    "uniform_box_base",
    "weight_statistics",
    "HMC",
    "MALA",
    "SAMPLERS",
    "ChainInit",
    "DataInit",
    "EnergyFn",
    "GaussianInit",
    "InitDistribution",
    "Langevin",
    "LongRunResult",
    "adaptable",
    "long_run",
    "MCMCResult",
    "MCMCSampler",
    "NoiseInit",
    "ReplayBuffer",
    "UniformInit",
    "energy_and_grad",
    "conditional_energy",
    "guided_energy",
    "jem_accuracy",
    "jem_class_energy",
    "jem_energy",
    "product_of_experts",
]

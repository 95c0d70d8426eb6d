"""MCMC samplers for energy-based models, in pure torch: ``p(x) ∝ exp(−E(x))`` for any ``energy(x) -> (B,)``.

Samplers share ``run(energy, x, num_steps, *, generator=None) -> MCMCResult``:
``Langevin`` (ULA, exact or tempered), ``MALA`` and ``HMC`` (Metropolis–Hastings corrected).
Chain initialisation: ``ReplayBuffer`` (persistent chains), ``NoiseInit`` (short-run), ``DataInit`` (CD-k),
with init distributions ``UniformInit`` and ``GaussianInit``.
"""

from lit_gen.mcmc.base import EnergyFn, MCMCResult, MCMCSampler, energy_and_grad
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
from lit_gen.mcmc.mala import MALA

SAMPLERS: dict[str, type[MCMCSampler]] = {"langevin": Langevin, "mala": MALA, "hmc": HMC}

__all__ = [
    "HMC",
    "MALA",
    "SAMPLERS",
    "ChainInit",
    "DataInit",
    "EnergyFn",
    "GaussianInit",
    "InitDistribution",
    "Langevin",
    "MCMCResult",
    "MCMCSampler",
    "NoiseInit",
    "ReplayBuffer",
    "UniformInit",
    "energy_and_grad",
]

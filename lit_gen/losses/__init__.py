"""Pure-torch training objectives for energy-based models."""

from lit_gen.losses.contrastive_divergence import contrastive_divergence_loss
from lit_gen.losses.dcd import (
    DiffusionKernel,
    dcd_loss,
    kernel_ladder,
    quadratic_dcd_gradient,
    recovery_energy,
)
from lit_gen.losses.ddaebm import diag_gaussian_nll, energy_step_loss, generator_step_loss, kl_to_standard_normal
from lit_gen.losses.energy_loss import (
    ENERGY_LOSSES,
    ContrastiveDivergence,
    DenoisingScoreMatching,
    EnergyLoss,
    SlicedScoreMatching,
    build_energy_loss,
)
from lit_gen.losses.score_matching import denoising_score_matching_loss, sliced_score_matching_loss

__all__ = [
    "ENERGY_LOSSES",
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "EnergyLoss",
    "SlicedScoreMatching",
    "build_energy_loss",
    "DiffusionKernel",
    "contrastive_divergence_loss",
    "dcd_loss",
    "denoising_score_matching_loss",
    "diag_gaussian_nll",
    "energy_step_loss",
    "generator_step_loss",
    "kernel_ladder",
    "kl_to_standard_normal",
    "quadratic_dcd_gradient",
    "recovery_energy",
    "sliced_score_matching_loss",
]

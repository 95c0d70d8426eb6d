"""Pure-torch parts of the denoising-diffusion adversarial EBM (Geng et al. 2024): schedule, networks, losses,
sampler. No Lightning imports; :class:`lit_gen.models.DDAEBMModule` wires them together."""

from lit_gen.ddaebm.losses import (
    diag_gaussian_nll,
    energy_step_loss,
    generator_step_loss,
    kl_to_standard_normal,
)
from lit_gen.ddaebm.networks import ConvPosterior, GeneratorMLP, MappingMLP, PosteriorMLP, UNetGenerator
from lit_gen.ddaebm.sampler import ddaebm_sample
from lit_gen.ddaebm.schedule import DDAEBMSchedule, vp_variance

__all__ = [
    "ConvPosterior",
    "DDAEBMSchedule",
    "GeneratorMLP",
    "MappingMLP",
    "PosteriorMLP",
    "UNetGenerator",
    "ddaebm_sample",
    "diag_gaussian_nll",
    "energy_step_loss",
    "generator_step_loss",
    "kl_to_standard_normal",
    "vp_variance",
]

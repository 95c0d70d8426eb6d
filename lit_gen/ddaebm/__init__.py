"""Pure-torch parts of the denoising-diffusion adversarial EBM (Geng et al. 2024): schedule, networks, losses,
sampler. No Lightning imports; :class:`lit_gen.models.DDAEBMModule` wires them together."""

from lit_gen.ddaebm.energy_map import ModePeakReport, mode_peak_report
from lit_gen.ddaebm.fourier_energy import FourierTimeEnergyMLP
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
    "FourierTimeEnergyMLP",
    "GeneratorMLP",
    "MappingMLP",
    "ModePeakReport",
    "PosteriorMLP",
    "UNetGenerator",
    "ddaebm_sample",
    "diag_gaussian_nll",
    "energy_step_loss",
    "generator_step_loss",
    "kl_to_standard_normal",
    "mode_peak_report",
    "vp_variance",
]

"""The pieces of the denoising-diffusion adversarial EBM (Geng et al. 2024, "Improving adversarial energy-based
model via diffusion process"), gathered under one name for configs, notebooks and older imports.

Nothing is defined here; each piece lives in the horizontal folder of its kind (all pure torch), and
:class:`lit_gen.models.DDAEBMModule` wires them together:

- schedule: :class:`lit_gen.diffusion.schedules.DDAEBMSchedule`, a :class:`~lit_gen.diffusion.NoiseSchedule`
  whose steps are the Gaussian kernel of :mod:`lit_gen.diffusion.kernels`, and :func:`vp_variance`;
- sampler: :func:`lit_gen.diffusion.samplers.ddaebm.ddaebm_sample`;
- networks: :mod:`lit_gen.nn.latent` (generators and posteriors) and :mod:`lit_gen.nn.fourier`
  (the Fourier-feature energy);
- losses: :mod:`lit_gen.losses.ddaebm`;
- the energy-map check: :mod:`lit_gen.metrics.mode_peaks`.

See ``docs/algorithms.md#ddaebm``.
"""

from lit_gen.diffusion.samplers.ddaebm import ddaebm_sample
from lit_gen.diffusion.schedules import DDAEBMSchedule, vp_variance
from lit_gen.losses.ddaebm import diag_gaussian_nll, energy_step_loss, generator_step_loss, kl_to_standard_normal
from lit_gen.metrics.mode_peaks import ModePeakReport, mode_peak_report
from lit_gen.nn.fourier import FourierTimeEnergyMLP
from lit_gen.nn.latent import ConvPosterior, GeneratorMLP, MappingMLP, PosteriorMLP, UNetGenerator

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

"""Pure-torch diffusion core: the Gaussian noise kernel, noise schedules, parametrisations, the DSM loss, denoisers
and samplers.

Nothing here imports Lightning; every piece works in a plain PyTorch loop.
"""

from lit_gen.diffusion.denoiser import Denoiser, GaussianDenoiser, NetworkDenoiser
from lit_gen.diffusion.guidance import ConditionalDenoiser, ConditionalNetworkDenoiser, GuidedDenoiser, drop_labels
from lit_gen.diffusion.kernel_score import KernelDenoiser, TorusKernelDenoiser, wrap_to_torus
from lit_gen.diffusion.kernels import (
    GaussianKernel,
    gaussian_log_prob,
    kernel_ladder,
    ladder_marginals,
    posterior_coefficients,
    recovery_energy,
    transition_log_prob,
)
from lit_gen.diffusion.likelihood import LikelihoodOutput, bits_per_dim, dequantize, pf_ode_log_prob
from lit_gen.diffusion.losses import DiffusionLoss, DSMLoss, Weighting, dsm_loss, min_snr_weight
from lit_gen.diffusion.ode import ODESolution, odeint
from lit_gen.diffusion.oism import OISMLoss, oism_loss, oism_posterior_mean, oism_target
from lit_gen.diffusion.parametrization import (
    PREDICTIONS,
    Prediction,
    check_prediction,
    convert,
    to_eps,
    to_v,
    to_x0,
    training_target,
)
from lit_gen.diffusion.samplers import (
    SAMPLERS,
    SampleOutput,
    ddim_sample,
    ddpm_sample,
    dpm_solver_pp_sample,
    euler_maruyama_sample,
    get_sampler,
    heun_sample,
    karras_sigmas,
    pf_ode_sample,
)
from lit_gen.diffusion.samplers.ddaebm import ddaebm_sample
from lit_gen.diffusion.schedules import (
    SCHEDULES,
    CosineSchedule,
    DDAEBMSchedule,
    LinearSchedule,
    NoiseSchedule,
    SigmoidSchedule,
    VPSchedule,
    get_schedule,
    vp_variance,
)

__all__ = [
    "GaussianKernel",
    "gaussian_log_prob",
    "transition_log_prob",
    "posterior_coefficients",
    "recovery_energy",
    "kernel_ladder",
    "ladder_marginals",
    "NoiseSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "SigmoidSchedule",
    "VPSchedule",
    "DDAEBMSchedule",
    "vp_variance",
    "SCHEDULES",
    "get_schedule",
    "Prediction",
    "PREDICTIONS",
    "check_prediction",
    "training_target",
    "to_x0",
    "to_eps",
    "to_v",
    "convert",
    "Weighting",
    "min_snr_weight",
    "dsm_loss",
    "Denoiser",
    "NetworkDenoiser",
    "GaussianDenoiser",
    "SampleOutput",
    "SAMPLERS",
    "get_sampler",
    "ddpm_sample",
    "ddim_sample",
    "heun_sample",
    "euler_maruyama_sample",
    "dpm_solver_pp_sample",
    "pf_ode_sample",
    "karras_sigmas",
    "ddaebm_sample",
    "oism_loss",
    "OISMLoss",
    "DiffusionLoss",
    "DSMLoss",
    "oism_target",
    "oism_posterior_mean",
    "KernelDenoiser",
    "TorusKernelDenoiser",
    "wrap_to_torus",
    "LikelihoodOutput",
    "pf_ode_log_prob",
    "dequantize",
    "bits_per_dim",
    "ODESolution",
    "odeint",
    "ConditionalDenoiser",
    "ConditionalNetworkDenoiser",
    "GuidedDenoiser",
    "drop_labels",
]

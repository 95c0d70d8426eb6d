"""LightningModules: one per method family, all sharing :class:`GenerativeModule`'s interface."""

import lightning  # noqa: F401  (imported first so its environment settings can be adjusted below)

from lit_gen._env import relax_cuda_check_without_gpu

relax_cuda_check_without_gpu()

from lit_gen.models.base import GenerativeModule, NetFactory, build_network  # noqa: E402
from lit_gen.models.dcd import DCDModule  # noqa: E402
from lit_gen.models.ddaebm import DDAEBMModule  # noqa: E402
from lit_gen.models.diffusion import DiffusionModule  # noqa: E402
from lit_gen.models.ebm import EBMModule  # noqa: E402
from lit_gen.models.energy import EnergyModule  # noqa: E402
from lit_gen.models.kernel_diffusion import KernelDiffusionModule  # noqa: E402

__all__ = [
    "DCDModule", "DDAEBMModule", "DiffusionModule", "EBMModule", "EnergyModule", "GenerativeModule",
    "KernelDiffusionModule",
    "NetFactory", "build_network",
]

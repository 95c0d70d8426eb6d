"""LightningModules: one per method family, all sharing :class:`GenerativeModule`'s interface."""

from lit_gen.models.base import GenerativeModule, NetFactory, build_network
from lit_gen.models.dcd import DCDModule
from lit_gen.models.ddaebm import DDAEBMModule
from lit_gen.models.diffusion import DiffusionModule
from lit_gen.models.ebm import EBMModule
from lit_gen.models.energy import EnergyModule
from lit_gen.models.flow_matching import FlowMatchingModule
from lit_gen.models.kernel_diffusion import KernelDiffusionModule

__all__ = [
    "DCDModule", "DDAEBMModule", "DiffusionModule", "EBMModule", "EnergyModule", "GenerativeModule",
    "FlowMatchingModule", "KernelDiffusionModule",
    "NetFactory", "build_network",
]

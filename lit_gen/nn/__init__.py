"""Pure-torch networks: time embeddings, MLPs, a DDPM U-Net and energy heads (no Lightning imports)."""

from lit_gen.nn._utils import ACTIVATIONS, get_activation
from lit_gen.nn.embeddings import SinusoidalTimeEmbedding
from lit_gen.nn.energy import ConvEnergyNet, UNetEnergy
from lit_gen.nn.mlp import EnergyMLP, TimeEnergyMLP, TimeMLP
from lit_gen.nn.unet import UNet

__all__ = [
    "ACTIVATIONS",
    "ConvEnergyNet",
    "EnergyMLP",
    "SinusoidalTimeEmbedding",
    "TimeEnergyMLP",
    "TimeMLP",
    "UNet",
    "UNetEnergy",
    "get_activation",
]

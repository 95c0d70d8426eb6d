"""Pure-torch networks: time embeddings, MLPs, a DDPM U-Net, energy heads and DDAEBM's latent-variable generator
and posterior networks (no Lightning imports)."""

from lit_gen.nn._utils import ACTIVATIONS, get_activation
from lit_gen.nn.embeddings import SinusoidalTimeEmbedding
from lit_gen.nn.energy import ConvEnergyNet, UNetEnergy
from lit_gen.nn.fourier import FourierTimeEnergyMLP
from lit_gen.nn.latent import ConvPosterior, GeneratorMLP, MappingMLP, PosteriorMLP, UNetGenerator
from lit_gen.nn.mlp import EnergyMLP, TimeEnergyMLP, TimeMLP
from lit_gen.nn.unet import UNet

__all__ = [
    "ACTIVATIONS",
    "ConvEnergyNet",
    "ConvPosterior",
    "EnergyMLP",
    "FourierTimeEnergyMLP",
    "GeneratorMLP",
    "MappingMLP",
    "PosteriorMLP",
    "SinusoidalTimeEmbedding",
    "TimeEnergyMLP",
    "TimeMLP",
    "UNet",
    "UNetEnergy",
    "UNetGenerator",
    "get_activation",
]

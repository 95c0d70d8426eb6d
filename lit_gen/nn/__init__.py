"""Pure-torch networks: time embeddings, MLPs, a DDPM U-Net, energy heads and DDAEBM's latent-variable generator
and posterior networks (no Lightning imports).

Class conditioning, the one calling convention: every network takes ``num_classes: int = 0`` in its constructor
(0: the unconditional network, with exactly its parameters and state-dict keys) and optional labels as the last
forward argument, ``y: Tensor | None = None``, a long tensor of shape (B,) (an int is broadcast)::

    net(x, t, y=None)            # TimeMLP, UNet: diffusion denoisers
    energy_net(x, y=None)        # EnergyMLP, ConvEnergyNet
    energy_net(x, t, y=None)     # TimeEnergyMLP, FourierTimeEnergyMLP, UNetEnergy
    generator(x, t, z, y=None)   # GeneratorMLP, UNetGenerator;  posterior(x_t, x_next, t, y=None)

With ``num_classes = K`` a learned ``nn.Embedding(K + 1, dim)`` is added to the time embedding (to the first
hidden layer of an energy without time); index ``K`` is the null class ("unconditional"), used when ``y`` is None
and by classifier-free guidance. Labels given to an unconditional network, and labels outside ``[0, K]``, raise a
ValueError. A user's own network works with conditional methods if its ``forward`` accepts ``y=None`` the same way.
See ``docs/algorithms.md#class-conditioning-and-guidance``.
"""

from lit_gen.nn._utils import ACTIVATIONS, get_activation
from lit_gen.nn.conditioning import ClassEmbedding, class_labels
from lit_gen.nn.embeddings import SinusoidalTimeEmbedding
from lit_gen.nn.energy import ConvEnergyNet, UNetEnergy
from lit_gen.nn.fourier import FourierTimeEnergyMLP
from lit_gen.nn.latent import ConvPosterior, GeneratorMLP, MappingMLP, PosteriorMLP, UNetGenerator
from lit_gen.nn.mlp import EnergyMLP, TimeEnergyMLP, TimeMLP
from lit_gen.nn.unet import UNet

__all__ = [
    "ACTIVATIONS",
    "ClassEmbedding",
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
    "class_labels",
    "get_activation",
]

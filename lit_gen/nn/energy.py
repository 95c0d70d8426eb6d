"""Energy networks for images: a small CNN E(x) and a U-Net energy E(x, t); both optionally class-conditional."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from lit_gen.nn._utils import check_data_shape, check_input, expand_time, get_activation
from lit_gen.nn.conditioning import (
    ClassEmbedding,
    check_class_logits,
    check_num_classes,
    class_labels,
    energy_from_logits,
)
from lit_gen.nn.unet import UNet


class ConvEnergyNet(nn.Module):
    """Small convolutional energy ``E(x) -> (B,)`` for image EBMs, ``p(x) ∝ exp(-E(x))``.

    In the style of Du & Mordatch (2019) and Lippe's UvA deep-learning tutorial on EBMs: a 3x3 stem conv,
    then one stride-2 3x3 conv per entry of ``channel_mult`` (width ``channels * mult``) each followed by the
    activation (Swish/SiLU by default, smooth so that Langevin gradients are), global average pooling, and
    a two-layer linear head. No normalisation layers, which would couple samples in a batch and interfere
    with MCMC. Works for any image size (stride-2 convs with padding 1 accept odd sizes).

    Args:
        data_shape: (C, H, W).
        channels: base width.
        channel_mult: width multiplier of each stride-2 stage.
        activation: one of "silu", "relu", "gelu", "leaky_relu", "softplus", "elu".
        spectral_norm: wrap every conv and linear layer in spectral normalisation (Miyato et al. 2018).
        num_classes: K > 0 conditions the energy on a class, ``E(x, y)``: a learned class embedding (K classes and
            the null class K) of width ``channels`` is added to the stem's output; 0 is the unconditional net.
        class_logits: with K > 0, read the K outputs of the head as class logits f(x) instead (JEM, Grathwohl
            et al. 2020): ``E(x, y) = −f(x)[y]``, ``E(x) = −logsumexp f(x)``; :meth:`logits` gives f(x).
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 4),
        activation: str = "silu",
        spectral_norm: bool = False,
        num_classes: int = 0,
        class_logits: bool = False,
    ) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        self.num_classes = check_num_classes(num_classes)
        self.class_logits = check_class_logits(class_logits, self.num_classes)
        if len(self.data_shape) != 3:
            raise ValueError(
                f"ConvEnergyNet needs image data_shape (C, H, W), got {self.data_shape}; "
                "use EnergyMLP for vector data"
            )
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        mults = tuple(channel_mult)
        if len(mults) == 0 or not all(isinstance(m, int) and m > 0 for m in mults):
            raise ValueError(
                f"channel_mult must be a non-empty sequence of positive ints, got {channel_mult!r}"
            )
        get_activation(activation)

        stem = nn.Conv2d(self.data_shape[0], channels, 3, padding=1)
        layers: list[nn.Module] = [stem, get_activation(activation)]
        ch = channels
        for m in mults:
            layers += [nn.Conv2d(ch, channels * m, 3, stride=2, padding=1), get_activation(activation)]
            ch = channels * m
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, ch), get_activation(activation)]
        layers.append(nn.Linear(ch, self.num_classes if self.class_logits else 1))
        if spectral_norm:
            layers = [_spectral_norm(m) if isinstance(m, nn.Conv2d | nn.Linear) else m for m in layers]
        self.net = nn.Sequential(*layers)
        if self.num_classes and not self.class_logits:
            self.class_embedding = ClassEmbedding(self.num_classes, channels)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits f(x), shape (B, K), of a network built with ``class_logits=True``."""
        if not self.class_logits:
            raise ValueError(
                f"{type(self).__name__}.logits needs a network built with num_classes and class_logits=True"
            )
        check_input(x, self.data_shape, type(self).__name__)
        return self.net(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        labels = class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)
        if self.class_logits:
            return energy_from_logits(self.net(x), labels)
        if labels is None:
            return self.net(x).squeeze(-1)
        h = self.net[0](x)
        h = h + self.class_embedding(labels).to(h.dtype)[:, :, None, None]
        for layer in itertools.islice(self.net, 1, None):
            h = layer(h)
        return h.squeeze(-1)


class UNetEnergy(nn.Module):
    """Time-conditioned energy ``E(x, t) = ½ ‖x − U(x, t)‖²`` summed over all data dims, U a :class:`UNet`.

    Salimans & Ho (2021), "Should EBMs model the energy or the score?": the score is
    ``−∇ₓE = −(I − ∂U/∂x)ᵀ (x − U(x, t))``, a conservative field by construction. Since the U-Net's
    output conv is zero-initialised, the untrained energy is ½‖x‖², a standard Gaussian.
    The keyword arguments are those of :class:`UNet` (listed explicitly so LightningCLI can see them);
    ``num_classes`` conditions U on a class, ``E(x, t, y) = ½ ‖x − U(x, t, y)‖²``.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        dropout: float = 0.0,
        num_heads: int = 1,
        groups: int = 32,
        num_classes: int = 0,
        zero_init_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        self.num_classes = check_num_classes(num_classes)
        self.unet = UNet(
            self.data_shape,
            channels=channels,
            channel_mult=channel_mult,
            num_res_blocks=num_res_blocks,
            attention_resolutions=attention_resolutions,
            dropout=dropout,
            num_heads=num_heads,
            groups=groups,
            num_classes=self.num_classes,
            zero_init_embedding=zero_init_embedding,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)  # errors name this class
        residual = x - self.unet(x, expand_time(t, x), y)
        return 0.5 * residual.flatten(1).pow(2).sum(dim=1)


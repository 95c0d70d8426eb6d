"""Multi-layer perceptrons for vector data: a time-conditioned denoiser and two energy heads.

Inputs of any shape (B, *data_shape) are flattened to (B, d), d = prod(data_shape). Each network takes an optional
``num_classes`` and class labels ``y`` (:mod:`lit_gen.nn.conditioning`).
"""

from __future__ import annotations

import itertools
import math
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
from lit_gen.nn.embeddings import SinusoidalTimeEmbedding


def _check_width(hidden: int, depth: int, time_dim: int | None = None) -> None:
    if not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive int, got {hidden!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    if time_dim is not None and (not isinstance(time_dim, int) or time_dim < 2):
        raise ValueError(f"time_dim must be an int >= 2, got {time_dim!r}")


class _TimeResidualBlock(nn.Module):
    """Pre-norm residual block h + W2 act(W1 act(LN(h)) + P t_emb): the time enters every block additively."""

    def __init__(self, hidden: int, activation: str) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.act1 = get_activation(activation)
        self.lin1 = nn.Linear(hidden, hidden)
        self.time_proj = nn.Linear(hidden, hidden)
        self.act2 = get_activation(activation)
        self.lin2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        y = self.lin1(self.act1(self.norm(h))) + self.time_proj(temb)
        return h + self.lin2(self.act2(y))


class _TimeTrunk(nn.Module):
    """Shared body of the time-conditioned MLPs: (x, t[, labels]) -> features (B, hidden).

    After :meth:`add_class_embedding` a class embedding (null class ``K`` included) is added to the time
    embedding before its activation.
    """

    def __init__(self, in_dim: int, hidden: int, depth: int, time_dim: int, activation: str) -> None:
        super().__init__()
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, hidden),
            get_activation(activation),
            nn.Linear(hidden, hidden),
        )
        self.time_act = get_activation(activation)
        self.input = nn.Linear(in_dim, hidden)
        self.blocks = nn.ModuleList([_TimeResidualBlock(hidden, activation) for _ in range(depth)])
        self.out_norm = nn.LayerNorm(hidden)
        self.out_act = get_activation(activation)
        self.num_classes = 0

    def add_class_embedding(self, num_classes: int) -> None:
        """Condition on ``num_classes`` classes. The owner calls it after building its other layers, so a
        conditional network draws the same initial parameters as the unconditional one, plus the embedding."""
        self.num_classes = check_num_classes(num_classes)
        if self.num_classes:
            self.class_embedding = ClassEmbedding(self.num_classes, self.input.out_features)

    def forward(self, x_flat: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_embedding(t).to(self.time_mlp[0].weight.dtype)
        temb = self.time_mlp(emb)
        if labels is not None:
            temb = temb + self.class_embedding(labels).to(temb.dtype)
        temb = self.time_act(temb)
        h = self.input(x_flat)
        for block in self.blocks:
            h = block(h, temb)
        return self.out_act(self.out_norm(h))


class TimeMLP(nn.Module):
    """Time-conditioned residual MLP ``net(x, t) -> x``-shaped output, for diffusion on vector data.

    The time t (B,) in schedule units goes through a sinusoidal embedding (Ho et al. 2020) and a 2-layer
    MLP; the result is *added* inside every residual block (after the first linear layer), as the DDPM
    U-Net does with its ResBlocks. Blocks are pre-LayerNorm residual MLPs (He et al. 2016; Ba et al. 2016):
    ``h <- h + W2 act(W1 act(LN(h)) + P temb)``. ``depth`` is the number of residual blocks.

    Args:
        data_shape: shape of one sample, e.g. (2,); non-vector shapes are flattened.
        hidden: width of the hidden layers.
        depth: number of residual blocks.
        time_dim: size of the sinusoidal time embedding.
        activation: one of "silu", "relu", "gelu", "leaky_relu", "softplus", "elu".
        num_classes: K > 0 adds a learned class embedding (K classes and the null class K) to the time
            embedding, and ``forward`` takes labels ``y``; 0 is the unconditional network.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden: int = 128,
        depth: int = 3,
        time_dim: int = 64,
        activation: str = "silu",
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        _check_width(hidden, depth, time_dim)
        get_activation(activation)  # fail early on a bad name
        self.num_classes = check_num_classes(num_classes)
        in_dim = math.prod(self.data_shape)
        self.trunk = _TimeTrunk(in_dim, hidden, depth, time_dim, activation)
        self.head = nn.Linear(hidden, in_dim)
        self.trunk.add_class_embedding(self.num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        labels = class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)
        h = self.trunk(x.flatten(1), expand_time(t, x), labels)
        return self.head(h).reshape(x.shape)


class TimeEnergyMLP(nn.Module):
    """Time-conditioned energy ``E(x, t) -> (B,)``: the :class:`TimeMLP` trunk with a scalar linear head.

    Same architecture and arguments as :class:`TimeMLP` (time added inside every residual block; with
    ``num_classes`` the class embedding added to the time embedding, ``E(x, t, y)``); used by time-conditioned
    EBMs such as diffusion-recovery or DDAEBM-style energies. ``p_t(x) ∝ exp(-E(x, t))``.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden: int = 128,
        depth: int = 3,
        time_dim: int = 64,
        activation: str = "silu",
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        _check_width(hidden, depth, time_dim)
        get_activation(activation)
        self.num_classes = check_num_classes(num_classes)
        self.trunk = _TimeTrunk(math.prod(self.data_shape), hidden, depth, time_dim, activation)
        self.head = nn.Linear(hidden, 1)
        self.trunk.add_class_embedding(self.num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        labels = class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)
        return self.head(self.trunk(x.flatten(1), expand_time(t, x), labels)).squeeze(-1)


class EnergyMLP(nn.Module):
    """Energy ``E(x) -> (B,)``, ``p(x) ∝ exp(-E(x))``; with ``num_classes``, ``E(x, y)``.

    A plain MLP ``d -> hidden (x depth) -> 1`` with a smooth activation by default, so that the input
    gradient used by Langevin/HMC samplers is itself smooth. No normalisation layers: LayerNorm would make
    the energy of one sample depend on feature statistics in a way that breaks the Lipschitz control of
    ``spectral_norm`` (Miyato et al. 2018), which, when enabled, wraps every linear layer.

    Args:
        data_shape: shape of one sample; flattened.
        hidden: width of the hidden layers.
        depth: number of hidden layers.
        activation: one of "silu", "relu", "gelu", "leaky_relu", "softplus", "elu".
        spectral_norm: wrap each ``nn.Linear`` in ``torch.nn.utils.parametrizations.spectral_norm``.
        num_classes: K > 0 conditions the energy on a class, ``E(x, y)``: a learned class embedding (K classes and
            the null class K, "unconditional") is added after the first linear layer; 0 is the unconditional net.
        class_logits: with K > 0, read the K outputs of the last layer as class logits f(x) instead (JEM,
            Grathwohl et al. 2020): ``E(x, y) = −f(x)[y]``, ``E(x) = −logsumexp_y f(x)[y]`` (null class or
            ``y=None``), and :meth:`logits` gives f(x) for classification.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden: int = 128,
        depth: int = 3,
        activation: str = "silu",
        spectral_norm: bool = False,
        num_classes: int = 0,
        class_logits: bool = False,
    ) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        _check_width(hidden, depth)
        get_activation(activation)
        self.num_classes = check_num_classes(num_classes)
        self.class_logits = check_class_logits(class_logits, self.num_classes)
        dims = [math.prod(self.data_shape)] + [hidden] * depth
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), get_activation(activation)]
        layers.append(nn.Linear(hidden, self.num_classes if self.class_logits else 1))
        if spectral_norm:
            layers = [_spectral_norm(m) if isinstance(m, nn.Linear) else m for m in layers]
        self.net = nn.Sequential(*layers)
        if self.num_classes and not self.class_logits:
            self.class_embedding = ClassEmbedding(self.num_classes, hidden)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits f(x), shape (B, K), of a network built with ``class_logits=True``."""
        if not self.class_logits:
            raise ValueError(
                f"{type(self).__name__}.logits needs a network built with num_classes and class_logits=True"
            )
        check_input(x, self.data_shape, type(self).__name__)
        return self.net(x.flatten(1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        labels = class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)
        if self.class_logits:
            return energy_from_logits(self.net(x.flatten(1)), labels)
        if labels is None:
            return self.net(x.flatten(1)).squeeze(-1)
        h = self.net[0](x.flatten(1))
        h = h + self.class_embedding(labels).to(h.dtype)
        for layer in itertools.islice(self.net, 1, None):
            h = layer(h)
        return h.squeeze(-1)

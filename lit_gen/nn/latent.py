"""DDAEBM's latent-variable networks: generator ``G_φ(x_{t+1}, t, z) → x̂_0``, posterior ``q_ψ(z | x_t, x_{t+1}, t)``.

Geng et al. (2024), "Improving Adversarial Energy-Based Model via Diffusion Process". The generator is a
latent-variable denoiser in the style of DDGAN (Xiao et al. 2022): given the noisier point x_{t+1}, the step
index t and a latent z ∼ N(0, I) it proposes a clean point x̂_0, and the fake x_t is drawn from the DDPM
posterior q(x_t | x_{t+1}, x̂_0). The posterior network infers z from a pair (x_t, x_{t+1}); it bounds the
generator's entropy and gives the reconstruction (ELBO) term of the generator step.

No BatchNorm anywhere: it makes samples depend on the sampling batch (seen in the authors' toy code).
Vector data use residual MLPs; images a U-Net generator whose latent enters through a mapping MLP
(Karras et al. 2019) added to the time embedding of every residual block, and a strided-conv posterior.
Every network takes ``(data_shape, latent_dim, ...)`` first, so the module builds generator and posterior with
one latent size. Each takes an optional ``num_classes``: a learned class embedding (the null class included,
:mod:`lit_gen.nn.conditioning`) added to the time embedding, and labels ``y`` as the last forward argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gen.nn._utils import check_data_shape, check_input, expand_time, get_activation
from lit_gen.nn.conditioning import ClassEmbedding, check_num_classes, class_labels
from lit_gen.nn.embeddings import SinusoidalTimeEmbedding
from lit_gen.nn.unet import UNet, _ResAttn

__all__ = ["ConvPosterior", "GeneratorMLP", "MappingMLP", "PosteriorMLP", "UNetGenerator"]


def _check_latent(latent_dim: int) -> int:
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    return latent_dim


def _check_z(z: Tensor, batch: int, latent_dim: int, owner: str) -> None:
    if not isinstance(z, Tensor) or z.shape != (batch, latent_dim):
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"{owner} expects a latent z of shape ({batch}, {latent_dim}), got {shape}")


class _ResBlock(nn.Module):
    """``h + W2 act(W1 act(LN(h)) + P c)``: pre-norm residual block conditioned additively on c."""

    def __init__(self, hidden: int, activation: str) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.lin1 = nn.Linear(hidden, hidden)
        self.cond = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, hidden)
        self.act = get_activation(activation)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        return h + self.lin2(self.act(self.lin1(self.act(self.norm(h))) + self.cond(c)))


class _TimeResMLP(nn.Module):
    """Residual MLP ``(features, t) -> (B, out_dim)`` with a sinusoidal time embedding in every block."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, depth: int, time_dim: int, activation: str) -> None:
        super().__init__()
        for name, value, low in (("hidden", hidden, 1), ("depth", depth, 1), ("time_dim", time_dim, 2)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        get_activation(activation)
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, hidden), get_activation(activation), nn.Linear(hidden, hidden)
        )
        self.input = nn.Linear(in_dim, hidden)
        self.blocks = nn.ModuleList([_ResBlock(hidden, activation) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(hidden), get_activation(activation), nn.Linear(hidden, out_dim))
        self.num_classes = 0

    def add_class_embedding(self, num_classes: int) -> None:
        """Condition on ``num_classes`` classes (called last by the owner, so the other parameters are drawn as in
        the unconditional network): the class embedding is added to the time embedding."""
        self.num_classes = check_num_classes(num_classes)
        if self.num_classes:
            self.class_embedding = ClassEmbedding(self.num_classes, self.input.out_features)

    def forward(self, h: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        c = self.time_mlp(self.time_embedding(t).to(self.input.weight.dtype))
        if labels is not None:
            c = c + self.class_embedding(labels).to(c.dtype)
        h = self.input(h)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)


def _gaussian_head(raw: Tensor, latent_dim: int, min_logvar: float) -> tuple[Tensor, Tensor]:
    mean, raw_logvar = raw.split(latent_dim, dim=1)
    # A smooth floor on log σ²: at t = 0 the fake is a deterministic function of z, and the entropy term
    # ½ log σ² + ½ (z − μ)²/σ² would otherwise reward σ → 0 without bound.
    logvar = min_logvar + F.softplus(raw_logvar - min_logvar)
    return mean, logvar


class GeneratorMLP(nn.Module):
    """Vector generator ``G(x_{t+1}, t, z) → x̂_0``: residual MLP on ``[x_{t+1}, z]`` with time in every block.

    Args:
        data_shape: shape of one data point (flattened internally).
        latent_dim: size of z (toy: 2).
        hidden, depth, time_dim, activation: width, residual blocks, time-embedding size, activation.
        num_classes: K > 0 conditions on a class, ``G(x_{t+1}, t, z, y)``; 0 is the unconditional network.
    """

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 2, hidden: int = 256, depth: int = 3,
                 time_dim: int = 64, activation: str = "silu", num_classes: int = 0) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        self.latent_dim = _check_latent(latent_dim)
        self.num_classes = check_num_classes(num_classes)
        dim = math.prod(self.data_shape)
        self.net = _TimeResMLP(dim + latent_dim, dim, hidden, depth, time_dim, activation)
        self.net.add_class_embedding(self.num_classes)

    def forward(self, x: Tensor, t: Tensor | float, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        _check_z(z, x.shape[0], self.latent_dim, type(self).__name__)
        labels = class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)
        h = torch.cat([x.flatten(1), z.to(x.dtype)], dim=1)
        return self.net(h, expand_time(t, x), labels).reshape(x.shape)


class PosteriorMLP(nn.Module):
    """Gaussian posterior ``q(z | x_t, x_{t+1}, t) = N(μ, diag exp(logvar))`` for vector data.

    ``forward`` returns ``(μ, logvar)``, each (B, latent_dim); ``logvar`` has a smooth floor ``min_logvar``.
    ``num_classes`` > 0 conditions it on a class, ``q(z | x_t, x_{t+1}, t, y)``.
    """

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 2, hidden: int = 256, depth: int = 3,
                 time_dim: int = 64, activation: str = "silu", min_logvar: float = -9.0,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.data_shape = check_data_shape(data_shape)
        self.latent_dim = _check_latent(latent_dim)
        self.min_logvar = float(min_logvar)
        self.num_classes = check_num_classes(num_classes)
        dim = math.prod(self.data_shape)
        self.net = _TimeResMLP(2 * dim, 2 * latent_dim, hidden, depth, time_dim, activation)
        self.net.add_class_embedding(self.num_classes)

    def forward(self, x_t: Tensor, x_next: Tensor, t: Tensor | float,
                y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_input(x_t, self.data_shape, type(self).__name__)
        check_input(x_next, self.data_shape, type(self).__name__)
        labels = class_labels(y, self.num_classes, x_t.shape[0], x_t.device, type(self).__name__)
        raw = self.net(torch.cat([x_t.flatten(1), x_next.flatten(1)], dim=1), expand_time(t, x_t), labels)
        return _gaussian_head(raw, self.latent_dim, self.min_logvar)


class MappingMLP(nn.Module):
    """StyleGAN-style mapping network ``z → w`` (Karras et al. 2019): normalise z, then ``depth`` linear+SiLU."""

    def __init__(self, latent_dim: int, out_dim: int, depth: int = 3) -> None:
        super().__init__()
        _check_latent(latent_dim)
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"mapping depth must be a positive int, got {depth!r}")
        dims = [latent_dim] + [out_dim] * depth
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), nn.SiLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        # pixel norm: z / rms(z), so the scale of the latent cannot drift
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return self.net(z)


class UNetGenerator(UNet):
    """Image generator ``G(x_{t+1}, t, z) → x̂_0``: a :class:`lit_gen.nn.UNet` whose conditioning vector is
    ``time_mlp(emb(t)) + mapping(z)``, so the latent reaches every residual block (as DDGAN's generator does
    through adaptive group norm). ``tanh_output`` keeps x̂_0 in [-1, 1], the image range.

    The U-Net arguments are those of :class:`UNet`; ``mapping_depth`` is the number of mapping layers;
    ``num_classes`` adds the U-Net's class embedding to the conditioning vector, ``G(x_{t+1}, t, z, y)``.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        latent_dim: int = 100,
        mapping_depth: int = 3,
        channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        dropout: float = 0.0,
        num_heads: int = 1,
        groups: int = 32,
        tanh_output: bool = True,
        num_classes: int = 0,
        zero_init_embedding: bool = False,
    ) -> None:
        super().__init__(data_shape, channels=channels, channel_mult=channel_mult, num_res_blocks=num_res_blocks,
                         attention_resolutions=attention_resolutions, dropout=dropout, num_heads=num_heads,
                         groups=groups, zero_init_embedding=zero_init_embedding)
        self.latent_dim = _check_latent(latent_dim)
        self.mapping = MappingMLP(latent_dim, 4 * channels, mapping_depth)
        self.tanh_output = bool(tanh_output)
        self.num_classes = check_num_classes(num_classes)
        if self.num_classes:  # last, so the other parameters are drawn as in the unconditional network
            self.class_embedding = ClassEmbedding(self.num_classes, 4 * channels)

    def forward(  # type: ignore[override]
        self, x: Tensor, t: Tensor | float, z: Tensor, y: Tensor | None = None
    ) -> Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        _check_z(z, x.shape[0], self.latent_dim, type(self).__name__)
        cond = self.conditioning(x, t, y) + self.mapping(z.to(self.time_mlp[0].weight.dtype))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            h = block(h, cond) if isinstance(block, _ResAttn) else block(h)
            skips.append(h)
        h = self.mid2(self.mid1(h, cond), cond)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), cond) if isinstance(block, _ResAttn) else block(h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return torch.tanh(out) if self.tanh_output else out


class ConvPosterior(nn.Module):
    """Gaussian posterior ``q(z | x_t, x_{t+1}, t)`` for images: the pair stacked on channels, a stride-2 conv
    per entry of ``channel_mult`` with the time embedding added after each, global average pooling and a
    linear head giving ``(μ, logvar)``. GroupNorm only (per sample), never BatchNorm. ``num_classes`` > 0 adds a
    class embedding of width ``time_dim`` to the time embedding, ``q(z | x_t, x_{t+1}, t, y)``.
    """

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 100, channels: int = 32,
                 channel_mult: Sequence[int] = (1, 2, 2), time_dim: int = 64, min_logvar: float = -9.0,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes)
        self.data_shape = check_data_shape(data_shape)
        if len(self.data_shape) != 3:
            raise ValueError(f"ConvPosterior needs image data_shape (C, H, W), got {self.data_shape}; "
                             "use PosteriorMLP for vector data")
        self.latent_dim = _check_latent(latent_dim)
        if not isinstance(channels, int) or channels < 1 or not channel_mult:
            raise ValueError(f"need channels >= 1 and a non-empty channel_mult, got {channels!r}, {channel_mult!r}")
        self.min_logvar = float(min_logvar)
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        self.stem = nn.Conv2d(2 * self.data_shape[0], channels, 3, padding=1)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.time_proj = nn.ModuleList()
        ch = channels
        for m in channel_mult:
            self.convs.append(nn.Conv2d(ch, channels * m, 3, stride=2, padding=1))
            ch = channels * m
            self.norms.append(nn.GroupNorm(math.gcd(ch, 32), ch))
            self.time_proj.append(nn.Linear(time_dim, ch))
        self.head = nn.Linear(ch, 2 * latent_dim)
        if self.num_classes:  # last, so the other parameters are drawn as in the unconditional network
            self.class_embedding = ClassEmbedding(self.num_classes, time_dim)

    def forward(self, x_t: Tensor, x_next: Tensor, t: Tensor | float,
                y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_input(x_t, self.data_shape, type(self).__name__)
        check_input(x_next, self.data_shape, type(self).__name__)
        labels = class_labels(y, self.num_classes, x_t.shape[0], x_t.device, type(self).__name__)
        emb = self.time_embedding(expand_time(t, x_t)).to(self.stem.weight.dtype)
        if labels is not None:
            emb = emb + self.class_embedding(labels).to(emb.dtype)
        h = F.silu(self.stem(torch.cat([x_t, x_next], dim=1)))
        for conv, norm, proj in zip(self.convs, self.norms, self.time_proj, strict=True):
            h = F.silu(norm(conv(h)) + proj(emb)[:, :, None, None])
        return _gaussian_head(self.head(h.mean(dim=(2, 3))), self.latent_dim, self.min_logvar)

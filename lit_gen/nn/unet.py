"""DDPM-style U-Net denoiser ``net(x, t) -> x``-shaped output (Ho et al. 2020; Ronneberger et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lit_gen.nn._utils import check_data_shape, check_input, expand_time, group_norm
from lit_gen.nn.conditioning import ClassEmbedding, check_num_classes, class_labels
from lit_gen.nn.embeddings import SinusoidalTimeEmbedding


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice with the embedding as a scale and shift of the second norm, plus a skip.

    ``h = conv1(silu(norm1(x)))``, ``(s, b) = proj(silu(emb))``, ``out = skip(x) + conv2(silu(norm2(h) (1 + s) + b))``:
    the scale-shift norm of Dhariwal & Nichol (2021). The embedding enters *after* ``norm2``: a per-channel shift
    added before a GroupNorm is removed by it whenever a group holds a single channel (narrow networks), which would
    leave the block blind to the time and the class.
    """

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_proj = nn.Linear(temb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.time_proj(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class _SelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions, with a residual connection (Vaswani et al. 2017)."""

    def __init__(self, ch: int, num_heads: int, groups: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = group_norm(ch, groups)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        # (B, heads, HW, c_head) layout for scaled_dot_product_attention.
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class _ResAttn(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, temb_dim: int, dropout: float, groups: int, attn: bool, num_heads: int
    ) -> None:
        super().__init__()
        self.res = _ResBlock(in_ch, out_ch, temb_dim, dropout, groups)
        self.attn = _SelfAttention(out_ch, num_heads, groups) if attn else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, temb))


class _Downsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Upsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _check_positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class UNet(nn.Module):
    """DDPM U-Net (Ho et al. 2020, after PixelCNN++ / Ronneberger et al. 2015): ``net(x, t)`` shaped like x.

    ``len(channel_mult)`` resolution levels; level i has width ``channels * channel_mult[i]`` and ``num_res_blocks``
    residual blocks (GroupNorm, SiLU, 3x3 conv, GroupNorm scaled and shifted by a linear projection of the time
    embedding (Dhariwal & Nichol 2021), SiLU, dropout, 3x3 conv). Between levels a stride-2 conv halves H and W; the
    decoder mirrors the encoder with ``num_res_blocks + 1`` blocks per level fed by concatenated skips, and
    nearest-neighbour upsampling followed by a 3x3 conv. Self-attention follows every block of a level whose height
    is listed in ``attention_resolutions``, and sits in the middle (res-attn-res). The time t (B,) in schedule units
    is embedded sinusoidally to ``channels`` features, then by a 2-layer MLP to ``4 * channels``. The output conv is
    zero-initialised, so the untrained network outputs zeros (common practice since DDPM).
    With ``num_classes = K > 0`` a learned class embedding of width ``4 * channels`` (K classes and the null class
    K) is added to the time embedding, as in the class-conditional U-Net of Dhariwal & Nichol (2021), and
    ``forward`` takes labels ``y`` (``y=None``: the null class). ``zero_init_embedding=True`` zero-initialises every
    block's scale-shift projection, so each block starts as the unconditional ``norm2(h)`` and learns its dependence
    on t and y from zero (the adaLN-Zero initialisation of Peebles & Xie 2023); see
    docs/algorithms.md#the-u-net-residual-block for when it matters.

    Args:
        data_shape: (C, H, W). H and W must be divisible by ``2 ** (len(channel_mult) - 1)``.
        channels: base width.
        channel_mult: width multiplier of each level.
        num_res_blocks: residual blocks per encoder level.
        attention_resolutions: heights at which self-attention is used (absent heights are ignored).
        dropout: dropout probability inside the residual blocks.
        num_heads: attention heads; must divide the width of every level that has attention.
        groups: GroupNorm groups; each norm uses gcd(width, groups) so narrow networks work too.
        num_classes: number of classes to condition on; 0 is the unconditional network.
        zero_init_embedding: start every block's embedding projection at zero (scale 1, shift 0).
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
        if not isinstance(zero_init_embedding, bool):
            raise ValueError(f"zero_init_embedding must be true or false, got {zero_init_embedding!r}")
        if len(self.data_shape) != 3:
            raise ValueError(
                f"UNet needs image data_shape (C, H, W), got {self.data_shape}; use TimeMLP for vector data"
            )
        in_ch, height, width = self.data_shape
        _check_positive_int(channels, "channels")
        _check_positive_int(num_res_blocks, "num_res_blocks")
        _check_positive_int(num_heads, "num_heads")
        _check_positive_int(groups, "groups")
        mults = tuple(channel_mult)
        if len(mults) == 0:
            raise ValueError("channel_mult must list at least one level, e.g. (1, 2, 2)")
        for m in mults:
            _check_positive_int(m, "every entry of channel_mult")
        attn_res = {int(r) for r in attention_resolutions}
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        factor = 2 ** (len(mults) - 1)
        if height % factor or width % factor:
            raise ValueError(
                f"UNet with {len(mults)} levels (channel_mult={mults}) halves H and W "
                f"{len(mults) - 1} times, "
                f"so both must be divisible by {factor}; got {height}x{width}. Use fewer levels in "
                f"channel_mult or pad/resize the images."
            )
        widths = [channels * m for m in mults]
        for level, w in enumerate(widths):
            needs_attn = (height >> level) in attn_res or level == len(widths) - 1  # the middle uses the last
            if needs_attn and w % num_heads:
                raise ValueError(
                    f"num_heads={num_heads} must divide the width {w} of every level with attention "
                    f"(level {level}); change num_heads or channels"
                )

        temb_dim = 4 * channels
        emb_dim = max(channels, 2)
        self.time_embedding = SinusoidalTimeEmbedding(emb_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(emb_dim, temb_dim),
            nn.SiLU(),
            nn.Linear(temb_dim, temb_dim),
        )
        self.conv_in = nn.Conv2d(in_ch, channels, 3, padding=1)

        self.down = nn.ModuleList()
        skip_ch = [channels]
        ch, res = channels, height
        for level, w in enumerate(widths):
            for _ in range(num_res_blocks):
                self.down.append(_ResAttn(ch, w, temb_dim, dropout, groups, res in attn_res, num_heads))
                ch = w
                skip_ch.append(ch)
            if level != len(widths) - 1:
                self.down.append(_Downsample(ch))
                skip_ch.append(ch)
                res //= 2

        self.mid1 = _ResAttn(ch, ch, temb_dim, dropout, groups, True, num_heads)
        self.mid2 = _ResBlock(ch, ch, temb_dim, dropout, groups)

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            w = widths[level]
            for _ in range(num_res_blocks + 1):
                self.up.append(
                    _ResAttn(ch + skip_ch.pop(), w, temb_dim, dropout, groups, res in attn_res, num_heads)
                )
                ch = w
            if level != 0:
                self.up.append(_Upsample(ch))
                res *= 2

        self.norm_out = group_norm(ch, groups)
        self.conv_out = nn.Conv2d(ch, in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        if zero_init_embedding:  # after every draw, so the other parameters match the default initialisation
            for block in self.modules():
                if isinstance(block, _ResBlock):
                    nn.init.zeros_(block.time_proj.weight)
                    nn.init.zeros_(block.time_proj.bias)
        if self.num_classes:  # last, so the other parameters are drawn as in the unconditional network
            self.class_embedding = ClassEmbedding(self.num_classes, temb_dim)

    def conditioning(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None) -> torch.Tensor:
        """The vector every residual block receives: ``time_mlp(emb(t))``, plus the class embedding of ``y``."""
        temb = self.time_mlp(self.time_embedding(expand_time(t, x)).to(self.time_mlp[0].weight.dtype))
        labels = class_labels(y, self.num_classes, x.shape[0], x.device, type(self).__name__)
        if labels is not None:
            temb = temb + self.class_embedding(labels).to(temb.dtype)
        return temb

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.data_shape, type(self).__name__)
        temb = self.conditioning(x, t, y)
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            h = block(h, temb) if isinstance(block, _ResAttn) else block(h)
            skips.append(h)
        h = self.mid2(self.mid1(h, temb), temb)
        for block in self.up:
            if isinstance(block, _ResAttn):
                h = block(torch.cat([h, skips.pop()], dim=1), temb)
            else:
                h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))

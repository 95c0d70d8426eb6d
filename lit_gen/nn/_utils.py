"""Small helpers shared by the networks: activations by name, shape checks, time batching."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
}


def get_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (one of ``ACTIVATIONS``; torch defaults)."""
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name.lower()]()


def check_data_shape(data_shape: Sequence[int], name: str = "data_shape") -> tuple[int, ...]:
    """Validate a data shape (a non-empty sequence of positive ints) and return it as a tuple."""
    if isinstance(data_shape, int | str) or not isinstance(data_shape, Sequence | torch.Size):
        raise TypeError(f"{name} must be a sequence of ints such as (2,) or (1, 28, 28), got {data_shape!r}")
    shape = tuple(data_shape)
    if len(shape) == 0 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {data_shape!r}")
    return shape


def check_input(x: torch.Tensor, data_shape: tuple[int, ...], owner: str) -> None:
    """Raise a ValueError if ``x`` is not a batch of shape (B, *data_shape)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor input, got {type(x).__name__}")
    if tuple(x.shape[1:]) != data_shape or x.dim() != len(data_shape) + 1:
        raise ValueError(
            f"{owner} was built for inputs of shape (B, {', '.join(map(str, data_shape))}) "
            f"but got {tuple(x.shape)}; build the network with the matching data_shape"
        )


def expand_time(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Return time as a float tensor of shape (B,) on ``x``'s device.

    Accepts a Python number, a 0-d tensor or a (1,) tensor (broadcast over the batch), or a (B,) tensor.
    """
    batch = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    if not torch.is_floating_point(t):
        # Integer steps; half-precision x would round t (bf16 spacing is 4 near t = 1000), so use float32+.
        t = t.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    if t.dim() == 0 or (t.dim() == 1 and t.shape[0] == 1):
        return t.reshape(1).expand(batch)
    if t.dim() != 1 or t.shape[0] != batch:
        raise ValueError(f"time t must be a scalar or have shape ({batch},) to match x, got {tuple(t.shape)}")
    return t


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm whose group count divides ``channels``: gcd(channels, groups) groups."""
    return nn.GroupNorm(math.gcd(channels, groups), channels)

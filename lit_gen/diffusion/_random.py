"""Random draws that honour a ``torch.Generator`` living on a different device than the output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def randn(
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> Tensor:
    """``N(0, I)`` draws on ``device``; a generator on another device (e.g. a CPU generator for a GPU run)
    draws there and the result is moved, so a fixed CPU seed gives the same numbers on every device."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if generator is not None and generator.device != device:
        return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype).to(device)
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def randint(
    high: int,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> Tensor:
    """Uniform integers in ``{0, ..., high − 1}`` on ``device``; generator rule as in :func:`randn`."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if generator is not None and generator.device != device:
        return torch.randint(0, high, tuple(shape), generator=generator, device=generator.device).to(device)
    return torch.randint(0, high, tuple(shape), generator=generator, device=device)

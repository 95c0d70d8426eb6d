"""Pieces shared by the samplers: the output record, argument checks, the start noise and timestep grids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion._random import randn
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["SampleOutput", "Spacing", "SPACINGS", "check_num_steps", "prepare", "timesteps", "full_t"]

Spacing = Literal["trailing", "leading", "linspace"]
SPACINGS: tuple[str, ...] = ("trailing", "leading", "linspace")


@dataclass
class SampleOutput:
    """Samples ``x`` (shape as requested) and the number of denoiser (network) evaluations ``nfe`` spent."""

    x: Tensor
    nfe: int


def check_num_steps(num_steps: int, schedule: NoiseSchedule | None = None, name: str = "num_steps") -> int:
    """``num_steps`` as an int ≥ 1 (and ≤ T when a schedule is given, for samplers that walk its steps)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
        raise TypeError(f"{name} must be an integer, got {num_steps!r}")
    if num_steps <= 0:
        raise ValueError(f"{name} must be a positive integer, got {num_steps}")
    if schedule is not None and num_steps > schedule.num_timesteps:
        raise ValueError(
            f"{name}={num_steps} exceeds the schedule's num_timesteps T={schedule.num_timesteps}; "
            f"use at most {schedule.num_timesteps} steps"
        )
    return num_steps


def _schedule_device(schedule: NoiseSchedule) -> torch.device:
    buf = next(iter(schedule.buffers()), None)
    return buf.device if buf is not None else torch.device("cpu")


def prepare(
    schedule: NoiseSchedule,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
    x_T: Tensor | None,
) -> Tensor:
    """Check the common arguments and return the starting point ``x_T`` (``N(0, I)`` unless given)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s <= 0 for s in shape):
        raise ValueError(f"shape must be (batch, *data_shape) with positive sizes, got {shape}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    sched_device = _schedule_device(schedule)
    if x_T is not None:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {tuple(x_T.shape)} but shape={shape} was requested")
        device = x_T.device if device is None else torch.device(device)
    device = sched_device if device is None else torch.device(device)
    if device.type != sched_device.type or (
        device.index is not None and sched_device.index is not None and device.index != sched_device.index
    ):
        raise ValueError(
            f"the schedule lives on {sched_device} but sampling was asked on {device}; "
            f"move it first with schedule.to({str(device)!r})"
        )
    if x_T is not None:
        return x_T.to(device=device, dtype=dtype)
    return randn(shape, generator, device, dtype)


def timesteps(num_timesteps: int, num_steps: int, spacing: str = "trailing") -> list[int]:
    """Decreasing integer times ``t_0 > t_1 > ... > t_{n−1}`` visited by a strided sampler.

    - ``trailing``: ``round(arange(T, 0, −T/n)) − 1`` — starts at ``T − 1`` where the noise is (nearly) pure
      (Lin et al., 2024, "Common diffusion noise schedules and sample steps are flawed", Table 2).
    - ``leading``: ``arange(n)·(T // n)`` reversed — the DDIM-paper/diffusers habit; it starts at
      ``(n−1)·(T//n) < T − 1``, i.e. from a noise level the data were never fully diffused to.
    - ``linspace``: ``round(linspace(T − 1, 0, n))``.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {list(SPACINGS)}, got {spacing!r}")
    T, n = num_timesteps, num_steps
    if spacing == "trailing":
        ts = torch.round(torch.arange(T, 0, -T / n, dtype=torch.float64)[:n]) - 1
    elif spacing == "leading":
        ts = torch.arange(n, dtype=torch.float64).flip(0) * (T // n)
    else:
        ts = torch.round(torch.linspace(T - 1, 0, n, dtype=torch.float64))
    out = [int(v) for v in ts.tolist()]
    decreasing = all(a > b for a, b in zip(out, out[1:], strict=False))
    if len(out) != n or not decreasing or out[-1] < 0 or out[0] > T - 1:
        raise RuntimeError(f"internal error: bad {spacing} timesteps {out[:5]}... for T={T}, n={n}")
    return out


def full_t(value: float, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A (B,) tensor of one diffusion time, as the denoiser expects it (at least float32: a bfloat16 t
    cannot even tell 999 from 1000)."""
    return torch.full((batch,), float(value), device=device, dtype=torch.promote_types(dtype, torch.float32))

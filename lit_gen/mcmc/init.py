"""Chain initialisation for MCMC in EBM training: init distributions and chain-init strategies.

Init distributions (``sample(n, shape, generator, device, dtype)``):
    ``UniformInit``   uniform on a box, per feature (default for EBMs: the data's bounding box padded by 10%)
    ``GaussianInit``  ``N(mean, std²)``

Chain inits (``initial(data, generator) -> states`` before sampling, ``update(samples)`` after):
    ``NoiseInit``     short-run MCMC from noise (Nijkamp et al. 2019)
    ``DataInit``      CD-k: chains start at the data batch (Hinton 2002)
    ``ReplayBuffer``  persistent chains (PCD, Tieleman 2008) with random restarts (Du & Mordatch 2019)

All randomness comes from the optional ``generator``; draws happen on the generator's device and are moved to
the data's device, so a CPU generator can seed chains that live on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lit_gen.utils.config import RecordsInit

__all__ = [
    "ChainInit",
    "DataInit",
    "GaussianInit",
    "InitDistribution",
    "NoiseInit",
    "ReplayBuffer",
    "UniformInit",
]

Number = float | int


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return device if generator is None else generator.device


def _as_tensor(name: str, value: Number | Sequence[float] | Tensor) -> Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64) if not isinstance(value, Tensor) else value.detach()
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a number, a sequence of numbers or a tensor, got {value!r}") from err
    if not t.is_floating_point():
        t = t.double()
    return t


def _check_shape(shape: Sequence[int] | torch.Size) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as err:
        raise TypeError(
            f"shape must be a sequence of ints (the per-sample data shape), got {shape!r}"
        ) from err
    if any(s <= 0 for s in shape):
        raise ValueError(f"shape must have positive sizes, got {shape}")
    return shape


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n (number of samples) must be a positive int, got {n!r}")
    return n


class InitDistribution(RecordsInit):
    """A distribution to start chains from: ``sample(n, shape, generator, device, dtype) -> (n, *shape)``."""

    def sample(
        self,
        n: int,
        shape: Sequence[int] | torch.Size,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """``n`` draws of shape ``(n, *shape)``."""
        raise NotImplementedError


class UniformInit(InitDistribution):
    """Uniform on the box ``[low, high]`` — per feature when ``low``/``high`` are tensors broadcastable to the
    data shape, or the same interval everywhere when they are floats.

    ``x = low + (high − low) · u``, ``u ~ U(0, 1)``.
    """

    def __init__(
        self, low: Number | Sequence[float] | Tensor = -1.0, high: Number | Sequence[float] | Tensor = 1.0
    ):
        low_t, high_t = _as_tensor("low", low), _as_tensor("high", high)
        try:
            torch.broadcast_shapes(low_t.shape, high_t.shape)
        except RuntimeError as err:
            raise ValueError(
                f"UniformInit low {tuple(low_t.shape)} and high {tuple(high_t.shape)} shapes do not broadcast"
            ) from err
        if not bool(torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ValueError("UniformInit bounds must be finite")
        if not bool((high_t > low_t).all()):
            raise ValueError(
                "UniformInit needs high > low in every feature; got a box with zero or negative width"
            )
        self.low, self.high = low_t, high_t

    @classmethod
    def from_bounds(
        cls, low: Number | Sequence[float] | Tensor, high: Number | Sequence[float] | Tensor, pad: float = 0.1
    ) -> UniformInit:
        """Box ``[low − pad·w, high + pad·w]``, ``w = high − low`` (default: 10% of the width each side)."""
        if not math.isfinite(pad) or pad < 0:
            raise ValueError(f"pad must be a finite fraction >= 0 of the box width, got {pad}")
        low_t, high_t = _as_tensor("low", low), _as_tensor("high", high)
        width = high_t - low_t
        return cls(low_t - pad * width, high_t + pad * width)

    @classmethod
    def from_data(cls, data: Tensor, pad: float = 0.1) -> UniformInit:
        """Per-feature bounding box of ``data`` (shape ``(N, *shape)``) padded by ``pad`` of its width."""
        if not isinstance(data, Tensor) or data.dim() < 2 or data.shape[0] < 2:
            raise ValueError("from_data needs a tensor of at least two samples, shape (N, *shape)")
        return cls.from_bounds(data.amin(0), data.amax(0), pad)

    def sample(
        self,
        n: int,
        shape: Sequence[int] | torch.Size,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """``n`` draws of shape ``shape`` on ``device`` (default: the bounds' device) with ``dtype``."""
        n, shape = _check_n(n), _check_shape(shape)
        try:
            if torch.broadcast_shapes(self.low.shape, self.high.shape, shape) != shape:
                raise RuntimeError
        except RuntimeError as err:
            raise ValueError(
                f"UniformInit bounds of shape {tuple(self.low.shape)} do not broadcast to the data "
                f"shape {shape}"
            ) from err
        device = torch.device(device) if device is not None else self.low.device
        dtype = dtype or torch.get_default_dtype()
        u = torch.rand((n, *shape), generator=generator, device=_draw_device(generator, device), dtype=dtype)
        u = u.to(device)
        low, high = self.low.to(device=device, dtype=dtype), self.high.to(device=device, dtype=dtype)
        return low + (high - low) * u

    def __repr__(self) -> str:
        return f"UniformInit(low={self.low.tolist()}, high={self.high.tolist()})"


class GaussianInit(InitDistribution):
    """Normal ``N(mean, std²)`` elementwise (``mean``/``std``: floats or tensors broadcastable to the data
    shape)."""

    def __init__(
        self, mean: Number | Sequence[float] | Tensor = 0.0, std: Number | Sequence[float] | Tensor = 1.0
    ):
        self.mean, self.std = _as_tensor("mean", mean), _as_tensor("std", std)
        if not bool(
            (self.std > 0).all() and torch.isfinite(self.std).all() and torch.isfinite(self.mean).all()
        ):
            raise ValueError("GaussianInit needs finite mean and std > 0")

    def sample(
        self,
        n: int,
        shape: Sequence[int] | torch.Size,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """``n`` draws of shape ``shape`` on ``device`` with ``dtype``."""
        n, shape = _check_n(n), _check_shape(shape)
        try:
            if torch.broadcast_shapes(self.mean.shape, self.std.shape, shape) != shape:
                raise RuntimeError
        except RuntimeError as err:
            raise ValueError(f"GaussianInit mean/std do not broadcast to the data shape {shape}") from err
        device = torch.device(device) if device is not None else self.mean.device
        dtype = dtype or torch.get_default_dtype()
        z = torch.randn((n, *shape), generator=generator, device=_draw_device(generator, device), dtype=dtype)
        z = z.to(device)
        return self.mean.to(device=device, dtype=dtype) + self.std.to(device=device, dtype=dtype) * z

    def __repr__(self) -> str:
        return f"GaussianInit(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _check_data(data: Tensor) -> None:
    if not isinstance(data, Tensor):
        raise TypeError(f"data must be a tensor batch (B, *shape), got {type(data).__name__}")
    if data.dim() < 1 or data.shape[0] == 0 or not data.is_floating_point():
        raise ValueError(
            f"data must be a non-empty floating-point batch (B, *shape), got {data.dtype} {tuple(data.shape)}"
        )


class ChainInit(RecordsInit):
    """Where chains start: ``initial(data, generator)`` before sampling, ``update(samples)`` after.

    ``data`` is the current training batch; it gives the number of chains, their shape, device and dtype.
    """

    def initial(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Starting states of ``data.shape[0]`` chains, shaped, placed and typed like ``data``."""
        raise NotImplementedError

    def update(self, samples: Tensor) -> None:
        """Receive the chains' final states (no-op for stateless inits)."""

    def set_init(self, init_dist: InitDistribution | None) -> None:
        """Set the distribution fresh chains are drawn from (no-op where none is used)."""

    def state_dict(self) -> dict[str, Any]:
        """State to save in a checkpoint (empty for stateless inits)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {type(state).__name__}")


def _require_init(init_dist: InitDistribution | None, owner: str) -> InitDistribution:
    if init_dist is None:
        raise RuntimeError(
            f"{owner} has no init distribution: pass init_dist=UniformInit(low, high) (or GaussianInit) "
            "or call set_init(dist) before initial()"
        )
    return init_dist


def _check_dist(init_dist: object) -> None:
    if init_dist is not None and not callable(getattr(init_dist, "sample", None)):
        raise TypeError(
            "init_dist must provide sample(n, shape, generator, device, dtype), got "
            f"{type(init_dist).__name__}"
        )


class NoiseInit(ChainInit):
    """Short-run MCMC (Nijkamp et al. 2019): every chain starts afresh from ``init_dist``."""

    def __init__(self, init_dist: InitDistribution | None = None) -> None:
        _check_dist(init_dist)
        self.init_dist = init_dist

    def set_init(self, init_dist: InitDistribution | None) -> None:
        _check_dist(init_dist)
        self.init_dist = init_dist

    def initial(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Fresh draws from the init distribution (short-run MCMC from noise)."""
        _check_data(data)
        dist = _require_init(self.init_dist, "NoiseInit")
        return dist.sample(data.shape[0], data.shape[1:], generator, data.device, data.dtype)


class DataInit(ChainInit):
    """Contrastive divergence CD-k (Hinton 2002): chains start at the data batch, plus optional noise.

    ``x₀ = data + noise_std · ξ``.
    """

    def __init__(self, noise_std: float = 0.0) -> None:
        if not math.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")
        self.noise_std = float(noise_std)

    def initial(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A copy of the data batch, plus ``noise_std`` Gaussian noise when set (CD-k)."""
        _check_data(data)
        x = data.detach().clone()
        if self.noise_std > 0:
            z = torch.randn(
                x.shape, generator=generator, device=_draw_device(generator, x.device), dtype=x.dtype
            )
            x = x + self.noise_std * z.to(x.device)
        return x


class ReplayBuffer(ChainInit):
    """Persistent chains with random restarts (PCD, Tieleman 2008; replay buffer of Du & Mordatch 2019).

    The buffer holds ``capacity`` chains. ``initial(data)`` draws ``n = len(data)`` distinct slots uniformly
    at random (the buffer is filled from ``init_dist`` on first use) and replaces each drawn chain, with
    probability ``restart_prob``, by a fresh draw from ``init_dist`` — a real restart. ``update(samples)``
    writes the final states back into the slots they came from.

    The chains are a plain tensor attribute, not a registered buffer: under DDP each rank keeps its own chains
    (a registered buffer would be broadcast from rank 0). ``state_dict()``/``load_state_dict()`` carry them
    through checkpoints.

    Args:
        init_dist: distribution of fresh chains; may be set later with ``set_init``.
        capacity: number of stored chains (must be at least the batch size).
        restart_prob: per-draw probability of restarting a chain from ``init_dist``.
    """

    def __init__(
        self, init_dist: InitDistribution | None = None, capacity: int = 10000, restart_prob: float = 0.05
    ) -> None:
        _check_dist(init_dist)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        if not 0.0 <= restart_prob <= 1.0:
            raise ValueError(f"restart_prob must be a probability in [0, 1], got {restart_prob}")
        self.init_dist = init_dist
        self.capacity = capacity
        self.restart_prob = float(restart_prob)
        self.chains: Tensor | None = None
        self.last_indices: Tensor | None = None
        self.last_restarted: Tensor | None = None

    @property
    def filled(self) -> bool:
        """Whether the buffer has been filled (it fills from ``init_dist`` on the first ``initial``)."""
        return self.chains is not None

    def set_init(self, init_dist: InitDistribution | None) -> None:
        _check_dist(init_dist)
        self.init_dist = init_dist

    def initial(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Stored chains drawn at random, each restarted from the init distribution with ``restart_prob``."""
        _check_data(data)
        n, shape = data.shape[0], tuple(data.shape[1:])
        if n > self.capacity:
            raise ValueError(
                f"batch of {n} chains exceeds the replay buffer capacity {self.capacity}; raise capacity"
            )
        if self.chains is None:
            dist = _require_init(self.init_dist, "ReplayBuffer")
            self.chains = dist.sample(self.capacity, shape, generator, data.device, data.dtype)
        elif tuple(self.chains.shape[1:]) != shape:
            raise ValueError(
                f"data shape {shape} does not match the replay buffer's chain shape "
                f"{tuple(self.chains.shape[1:])}"
            )
        if self.chains.device != data.device or self.chains.dtype != data.dtype:
            # e.g. a checkpoint restored on CPU and training resumed on a GPU.
            self.chains = self.chains.to(device=data.device, dtype=data.dtype)
        draw_device = _draw_device(generator, data.device)
        idx = torch.randperm(self.capacity, generator=generator, device=draw_device)[:n]
        restart = torch.rand(n, generator=generator, device=draw_device) < self.restart_prob
        idx, restart = idx.to(data.device), restart.to(data.device)
        x = self.chains[idx].clone()
        num_restart = int(restart.sum())
        if num_restart > 0:
            dist = _require_init(self.init_dist, "ReplayBuffer")
            x[restart] = dist.sample(num_restart, shape, generator, data.device, data.dtype)
        self.last_indices, self.last_restarted = idx, restart
        return x

    def update(self, samples: Tensor) -> None:
        if self.last_indices is None or self.chains is None:
            raise RuntimeError(
                "ReplayBuffer.update() called before initial(): draw chains with initial() first"
            )
        if not isinstance(samples, Tensor) or samples.shape != (
            len(self.last_indices),
            *self.chains.shape[1:],
        ):
            got = tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
            raise ValueError(
                f"update() expects the {len(self.last_indices)} chains drawn by initial(), shape "
                f"{(len(self.last_indices), *self.chains.shape[1:])}, got {got}"
            )
        self.chains[self.last_indices] = samples.detach().to(
            device=self.chains.device, dtype=self.chains.dtype
        )
        self.last_indices = None

    def state_dict(self) -> dict[str, Any]:
        """Chains, pending slot indices and settings — plain tensors and numbers (``torch.load`` safe)."""
        return {
            "chains": None if self.chains is None else self.chains.detach().clone(),
            "last_indices": None if self.last_indices is None else self.last_indices.clone(),
            "filled": self.filled,
            "capacity": self.capacity,
            "restart_prob": self.restart_prob,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the chains and settings saved by :meth:`state_dict`."""
        super().load_state_dict(state)
        missing = {"chains", "last_indices", "capacity"} - set(state)
        if missing:
            raise KeyError(f"ReplayBuffer state is missing {sorted(missing)}; pass a dict from state_dict()")
        chains = state["chains"]
        if chains is not None and (not isinstance(chains, Tensor) or chains.shape[0] != state["capacity"]):
            raise ValueError("ReplayBuffer state: chains must be a tensor with `capacity` rows")
        self.capacity = int(state["capacity"])
        self.restart_prob = float(state.get("restart_prob", self.restart_prob))
        self.chains = None if chains is None else chains.detach().clone()
        idx = state["last_indices"]
        self.last_indices = None if idx is None or self.chains is None else idx.to(self.chains.device)

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(init_dist={self.init_dist!r}, capacity={self.capacity}, "
            f"restart_prob={self.restart_prob}, filled={self.filled})"
        )

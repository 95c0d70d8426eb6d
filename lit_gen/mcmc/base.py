"""Shared interface of the MCMC samplers: the result record, the base class and the gradient helper.

Every sampler targets ``p(x) ∝ exp(−E(x))`` for any callable ``energy(x) -> (B,)`` — an ``nn.Module``, a plain
function or another library's energy object. Gradients are taken with ``torch.autograd.grad`` with respect to
the states only, so no ``.grad`` ever accumulates in the energy's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lit_gen.utils.config import RecordsInit

EnergyFn = Callable[[Tensor], Tensor]

__all__ = ["EnergyFn", "MCMCResult", "MCMCSampler", "check_positive", "energy_and_grad"]


@dataclass
class MCMCResult:
    """Final states of a run and its statistics.

    Attributes:
        x: final states, detached, same shape as the initial states.
        stats: ``"acceptance_rate"`` (1.0 for unadjusted Langevin), ``"mean_energy"`` (mean over chains of the
            energy at the last evaluation), ``"grad_norm"`` (mean per-chain ``‖∇E‖`` at the last step) and
            ``"steps"`` (number of steps run).
        accept_prob: per step, the mean over chains of the Metropolis–Hastings acceptance probability
            ``min(1, α)``, shape ``(num_steps,)``, float64, on the states' device; ``None`` for samplers without an
            accept test (Langevin). Less noisy than the accepted fraction: step-size adaptation feeds on it.
    """

    x: Tensor
    stats: dict[str, float] = field(default_factory=dict)
    accept_prob: Tensor | None = None


def _check_energy_output(e: object, x: Tensor) -> Tensor:
    if not isinstance(e, Tensor):
        raise TypeError(f"energy must return a torch.Tensor of shape (B,), got {type(e).__name__}")
    if e.shape != (x.shape[0],):
        raise ValueError(
            f"energy must return shape (B,) = ({x.shape[0]},) for states of shape {tuple(x.shape)}, got "
            f"{tuple(e.shape)}; reduce the output to one energy per sample (e.g. `net(x).squeeze(-1)`)"
        )
    if not e.requires_grad:
        raise ValueError(
            "energy output does not depend on x through autograd: the energy detached its input, ran under "
            "torch.no_grad(), or returned a constant; samplers need ∇ₓE"
        )
    return e


def _grad(energy: EnergyFn, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(E(x), ∇ₓE(x), check)`` for ``x`` a leaf that already requires grad; grad mode must be enabled.

    ``check`` is a 0-d float64 tensor that is non-finite iff some energy or gradient entry is: it reuses the sum
    that backward needs, plus one float64 sum of the gradient (a float64 sum of float32 values cannot
    overflow). Two kernels per step instead of an elementwise ``isfinite`` over both tensors.
    """
    e = _check_energy_output(energy(x), x)
    total = e.sum()
    # materialize_grads: an energy that ignores x has a zero gradient, not a missing one.
    (g,) = torch.autograd.grad(total, x, materialize_grads=True)
    return e.detach(), g, total.detach().double() + g.sum(dtype=torch.float64)


def energy_and_grad(energy: EnergyFn, x: Tensor) -> tuple[Tensor, Tensor]:
    """Energy and its gradient with respect to the states, ``(E(x), ∇ₓE(x))``.

    Works whatever the caller's grad mode (``torch.no_grad``, ``torch.inference_mode``) and leaves the
    energy's parameter ``.grad`` untouched.

    Args:
        energy: callable ``x -> (B,)``.
        x: states ``(B, *shape)``.

    Returns:
        ``E`` of shape ``(B,)`` (detached) and ``∇ₓE`` shaped like ``x``.
    """
    with torch.inference_mode(False), torch.enable_grad():
        xr = x.detach().clone().requires_grad_(True)
        e, g, _ = _grad(energy, xr)
        return e, g


def _finite(e: Tensor, g: Tensor) -> Tensor:
    # Stays on the device: checking per step with .item() would synchronise a GPU every step.
    return torch.isfinite(e).all() & torch.isfinite(g).all()


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` even on another device."""
    if generator is None:
        return torch.randn_like(x)
    if generator.device.type == x.device.type:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)


def _log_uniform(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``log u`` for ``u ~ U(0, 1)``, shape ``(n,)``, drawn as ``−Exp(1)``: one RNG kernel, no separate log."""
    draw_device = device if generator is None else generator.device
    v = torch.empty(n, device=draw_device, dtype=torch.float64).exponential_(generator=generator)
    return (-v).to(device)


def _per_chain_sq_norm(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1).pow(2).sum(1)


def check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


class MCMCSampler(RecordsInit):
    """Base class: validates inputs, prepares the states, and leaves the chain update to ``_run``.

    ``run`` works whether or not the caller is under ``torch.no_grad()`` or ``torch.inference_mode()``: it
    enables grad internally and clones the initial states (so inference tensors become normal tensors and the
    caller's tensor is never modified).
    """

    name: str = "mcmc"

    def run(
        self,
        energy: EnergyFn,
        x: Tensor,
        num_steps: int,
        *,
        generator: torch.Generator | None = None,
    ) -> MCMCResult:
        """Run ``num_steps`` steps of the chain from ``x`` on ``p ∝ exp(−energy)``.

        Args:
            energy: callable ``x -> (B,)``.
            x: initial states ``(B, *shape)``, floating point.
            num_steps: number of steps (> 0).
            generator: random source; with a fixed seed results are reproducible on CPU.

        Returns:
            ``MCMCResult`` with detached final states and statistics.

        Raises:
            ValueError: ``num_steps <= 0``, empty states, or an energy of the wrong shape.
            FloatingPointError: the energy or its gradient became non-finite; the message names the step.
        """
        if not callable(energy):
            raise TypeError(f"energy must be callable x -> (B,), got {type(energy).__name__}")
        if isinstance(num_steps, bool) or not isinstance(num_steps, int):
            raise TypeError(f"num_steps must be an int, got {type(num_steps).__name__}")
        if num_steps <= 0:
            raise ValueError(f"num_steps must be a positive number of MCMC steps, got {num_steps}")
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of initial states (B, *shape), got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; convert with x.float()")
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"x must have shape (B, *shape) with B >= 1, got {tuple(x.shape)}")
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            out = self._run(energy, x0, num_steps, generator)
        # A subclass returns (states, stats), or (states, stats, per-step acceptance probabilities).
        accept_prob = out[2].detach() if len(out) > 2 and out[2] is not None else None
        return MCMCResult(x=out[0].detach(), stats=out[1], accept_prob=accept_prob)

    def _run(
        self, energy: EnergyFn, x: Tensor, num_steps: int, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, float]] | tuple[Tensor, dict[str, float], Tensor | None]:
        raise NotImplementedError

    def _raise_if_nonfinite(self, checks: list[Tensor], num_steps: int) -> None:
        """Raise ``FloatingPointError`` naming the first step whose energy or gradient was non-finite.

        ``checks[k]`` is step k's check value from ``_grad`` (non-finite iff that step saw a non-finite energy or
        gradient) or a boolean "all finite" flag.
        """
        stacked = torch.stack(checks)
        ok = stacked if stacked.dtype == torch.bool else torch.isfinite(stacked)
        if bool(ok.all()):
            return
        step = int((~ok).nonzero()[0, 0])
        self._nonfinite_error(f"step {step} (0-based) of {num_steps}")

    def _check_initial(self, check: Tensor) -> None:
        if not bool(torch.isfinite(check)):
            self._nonfinite_error("the initial states (before step 0)")

    def _nonfinite_error(self, where: str) -> None:
        raise FloatingPointError(
            f"{type(self).__name__}: the energy or its gradient became non-finite (NaN/inf) at {where}. "
            "Lower step_size, set a gradient or sample clamp, or check the energy for overflow at the states "
            "the chain reached."
        )

    @staticmethod
    def _stats(accept_rate: Tensor | float, e: Tensor, g: Tensor, num_steps: int) -> dict[str, float]:
        # One transfer for all statistics instead of one synchronisation each.
        acc = torch.as_tensor(accept_rate, dtype=torch.float64, device=e.device)
        vals = torch.stack([acc, e.double().mean(), _per_chain_sq_norm(g.double()).sqrt().mean()]).tolist()
        return {
            "acceptance_rate": vals[0],
            "mean_energy": vals[1],
            "grad_norm": vals[2],
            "steps": float(num_steps),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"

"""Metropolis-adjusted Langevin algorithm (MALA; Roberts & Tweedie 1996).

Proposal (one Langevin step):   x' = x − η ∇E(x) + sqrt(2η) ξ,   ξ ~ N(0, I)
so ``q(x' | x) = N(x'; x − η∇E(x), 2η I)``, ``log q(x' | x) = −‖x' − x + η∇E(x)‖² / (4η) + const``.

Acceptance (per chain):   α(x, x') = min(1, exp(−E(x') + E(x) + log q(x | x') − log q(x' | x)))

The chain satisfies detailed balance with respect to ``p ∝ exp(−E)``, so it has no step-size bias.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_gen.mcmc.base import (
    EnergyFn,
    MCMCSampler,
    _grad,
    _log_uniform,
    _per_chain_sq_norm,
    _randn_like,
    check_positive,
)

__all__ = ["MALA"]


def _bcast(mask: Tensor, like: Tensor) -> Tensor:
    return mask.reshape(mask.shape[0], *([1] * (like.dim() - 1)))


class MALA(MCMCSampler):
    """Langevin proposal with a per-chain Metropolis–Hastings correction.

    Args:
        step_size: η; the proposal variance is ``2η``. Aim for an acceptance rate around 0.5–0.6.

    ``stats["acceptance_rate"]`` is the fraction of accepted proposals over all chains and steps.
    """

    name = "mala"

    def __init__(self, step_size: float = 0.01) -> None:
        self.step_size = check_positive("step_size", step_size)

    def log_proposal(self, x_to: Tensor, x_from: Tensor, grad_from: Tensor) -> Tensor:
        """``log q(x_to | x_from)`` up to a constant (the same in both directions), shape ``(B,)``."""
        return -_per_chain_sq_norm(x_to - x_from + self.step_size * grad_from) / (4.0 * self.step_size)

    def log_accept_ratio(
        self, x: Tensor, x_prop: Tensor, e: Tensor, e_prop: Tensor, g: Tensor, g_prop: Tensor
    ) -> Tensor:
        """``log[p(x') q(x | x') / (p(x) q(x' | x))]``; the acceptance probability is ``min(1, exp(·))``."""
        return (e - e_prop) + self.log_proposal(x, x_prop, g_prop) - self.log_proposal(x_prop, x, g)

    def _run(
        self, energy: EnergyFn, x: Tensor, num_steps: int, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, float], Tensor]:
        eta, sigma = self.step_size, math.sqrt(2.0 * self.step_size)
        e, g, check = _grad(energy, x.requires_grad_(True))
        x = x.detach()
        self._check_initial(check)
        accepted = torch.zeros((), dtype=torch.float64, device=x.device)
        flags, probs = [], []
        for _ in range(num_steps):
            with torch.no_grad():
                x_prop = x - eta * g + sigma * _randn_like(x, generator)
            e_prop, g_prop, check = _grad(energy, x_prop.requires_grad_(True))
            x_prop = x_prop.detach()
            flags.append(check)
            with torch.no_grad():
                log_alpha = self.log_accept_ratio(x, x_prop, e, e_prop, g, g_prop)
                # log u < log α accepts with probability min(1, α); a NaN ratio compares False (reject).
                accept = _log_uniform(x.shape[0], generator, x.device) < log_alpha
                accepted += accept.sum()
                probs.append(log_alpha.double().clamp(max=0.0).exp().mean())
                x = torch.where(_bcast(accept, x), x_prop, x)
                g = torch.where(_bcast(accept, g), g_prop, g)
                e = torch.where(accept, e_prop, e)
        self._raise_if_nonfinite(flags, num_steps)
        stats = self._stats(accepted / (num_steps * x.shape[0]), e, g, num_steps)
        return x, stats, torch.stack(probs)

"""Hamiltonian Monte Carlo with identity mass (Duane et al. 1987; Neal 2011, "MCMC using Hamiltonian
dynamics").

Hamiltonian ``H(x, p) = E(x) + ½‖p‖²``, momentum ``p ~ N(0, I)`` drawn afresh each iteration. Leapfrog
with step ε, L steps:

    p ← p − ½ε ∇E(x);   repeat L times: { x ← x + ε p;  p ← p − ε ∇E(x) (½ε on the last) }

Accept per chain with probability ``min(1, exp(H(x, p) − H(x', p')))``. Leapfrog is volume-preserving and
reversible, so the chain leaves ``p ∝ exp(−E)`` invariant whatever ε (ε only changes the acceptance rate).
"""

from __future__ import annotations

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
from lit_gen.mcmc.mala import _bcast

__all__ = ["HMC"]


class HMC(MCMCSampler):
    """HMC: ``num_leapfrog`` leapfrog steps of size ``step_size`` then a per-chain Metropolis–Hastings test.

    Args:
        step_size: ε, the leapfrog step.
        num_leapfrog: L, leapfrog steps per iteration (each costs one gradient evaluation).

    One ``run`` step is one HMC iteration (L gradient evaluations). ``stats["acceptance_rate"]`` is the
    fraction of accepted trajectories over all chains and iterations.
    """

    name = "hmc"

    def __init__(self, step_size: float = 0.1, num_leapfrog: int = 10) -> None:
        self.step_size = check_positive("step_size", step_size)
        if isinstance(num_leapfrog, bool) or not isinstance(num_leapfrog, int):
            raise TypeError(f"num_leapfrog must be an int, got {type(num_leapfrog).__name__}")
        if num_leapfrog < 1:
            raise ValueError(f"num_leapfrog must be >= 1, got {num_leapfrog}")
        self.num_leapfrog = num_leapfrog

    def leapfrog(
        self, energy: EnergyFn, x: Tensor, p: Tensor, g: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Integrate Hamilton's equations from ``(x, p)`` with ``g = ∇E(x)``.

        Returns:
            ``(x', p', E(x'), ∇E(x'), finite)`` where ``finite`` is a 0-d bool tensor: every energy and
            gradient evaluated along the trajectory was finite.
        """
        eps = self.step_size
        check = torch.zeros((), dtype=torch.float64, device=x.device)
        p = p - 0.5 * eps * g
        for step in range(self.num_leapfrog):
            with torch.no_grad():
                x = x + eps * p
            e, g, step_check = _grad(energy, x.requires_grad_(True))
            x = x.detach()
            check = check + step_check
            p = p - (0.5 * eps if step == self.num_leapfrog - 1 else eps) * g
        return x, p, e, g, torch.isfinite(check)

    def _run(
        self, energy: EnergyFn, x: Tensor, num_steps: int, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, float], Tensor]:
        e, g, check = _grad(energy, x.requires_grad_(True))
        x = x.detach()
        self._check_initial(check)
        accepted = torch.zeros((), dtype=torch.float64, device=x.device)
        flags, probs = [], []
        for _ in range(num_steps):
            p0 = _randn_like(x, generator)
            x_new, p_new, e_new, g_new, ok = self.leapfrog(energy, x, p0, g)
            flags.append(ok)
            with torch.no_grad():
                log_alpha = (e + 0.5 * _per_chain_sq_norm(p0)) - (e_new + 0.5 * _per_chain_sq_norm(p_new))
                accept = _log_uniform(x.shape[0], generator, x.device) < log_alpha
                accepted += accept.sum()
                probs.append(log_alpha.double().clamp(max=0.0).exp().mean())
                x = torch.where(_bcast(accept, x), x_new, x)
                g = torch.where(_bcast(accept, g), g_new, g)
                e = torch.where(accept, e_new, e)
        self._raise_if_nonfinite(flags, num_steps)
        stats = self._stats(accepted / (num_steps * x.shape[0]), e, g, num_steps)
        return x, stats, torch.stack(probs)

"""The two losses of DDAEBM (Geng et al. 2024, "Improving adversarial energy-based model via diffusion
process"), written with an energy E (p ∝ exp(−E); ``docs/algorithms.md#ddaebm``).

The authors' code uses a negative energy f = −E; the conversion happens here, once. Per denoising step t,
the EBM models the conditional ``p_θ(x_t | x_{t+1}) ∝ exp(−E_θ(x_t, t)) N(x_{t+1}; a_{t+1} x_t, β_{t+1} I)`` and
the generator ``p_φ(x_t | x_{t+1})`` draws ``x̃_t ∼ q(x_t | x_{t+1}, G_φ(x_{t+1}, t, z))``.

Energy step (θ)::

    L_E = mean E(x_t, t) − mean E(sg(x̃_t), t)
          + (γ/2) mean ‖∇_{x_t}[−E(x_t, t) + log N(x_{t+1}; a_{t+1} x_t, β_{t+1} I)]‖²

(the second line is R1 — Mescheder et al. 2018 — on the conditional log-density at the real x_t).

Generator step (φ, ψ; θ frozen): the symmetric Jeffrey divergence KL(p_φ‖p_θ) + KL(q_data‖p_φ)::

    L_G = mean[E(x̃_t, t) − log N(x_{t+1}; a_{t+1} x̃_t, β_{t+1} I)]                (KL(p_φ‖p_θ) up to −H(p_φ))
          + λ_H mean[½ Σ logvar_ψ + ½ Σ (z − μ_ψ)² / exp(logvar_ψ)] at (x̃_t, x_{t+1}) (bound on −H(p_φ))
          + mean KL(q_ψ(z | x_t, x_{t+1}) ‖ N(0, I))
          − mean log q(x_t | x_{t+1}, G_φ(x_{t+1}, t, z_q)),  z_q ∼ q_ψ, variance floored  (negative ELBO)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lit_gen.diffusion.samplers.ddaebm import LatentGenerator
from lit_gen.diffusion.schedules import DDAEBMSchedule

TimeEnergy = Callable[[Tensor, Tensor], Tensor]
Posterior = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]

__all__ = ["diag_gaussian_nll", "energy_step_loss", "generator_step_loss", "kl_to_standard_normal"]


def diag_gaussian_nll(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """``½ Σ logvar + ½ Σ (z − μ)² / exp(logvar)``: −log N(z; μ, diag exp(logvar)) without the 2π constant."""
    return 0.5 * (logvar + (z - mean) ** 2 * torch.exp(-logvar)).sum(dim=1)


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(μ, diag exp(logvar)) ‖ N(0, I)) = ½ Σ (μ² + exp(logvar) − 1 − logvar)``, shape (B,)."""
    return 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)


def energy_step_loss(
    energy: TimeEnergy,
    schedule: DDAEBMSchedule,
    x_t: Tensor,
    x_next: Tensor,
    x_fake: Tensor,
    t: Tensor,
    r1_gamma: float = 0.02,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``L_E`` above. ``x_fake`` is detached here; returns the loss and its parts (detached) for logging."""
    x_t = x_t.detach().requires_grad_(r1_gamma > 0)
    e_real = energy(x_t, t).float()
    e_fake = energy(x_fake.detach(), t).float()
    loss = e_real.mean() - e_fake.mean()
    parts = {"energy_real": e_real.mean().detach(), "energy_fake": e_fake.mean().detach()}
    if r1_gamma > 0:
        log_density = -e_real + schedule.transition_log_prob(x_next, x_t, t)
        (grad,) = torch.autograd.grad(log_density.sum(), x_t, create_graph=True)
        r1 = grad.float().flatten(1).pow(2).sum(dim=1).mean()
        loss = loss + 0.5 * r1_gamma * r1
        parts["r1"] = r1.detach()
    return loss, parts


def generator_step_loss(
    energy: TimeEnergy,
    generator: LatentGenerator,
    posterior: Posterior,
    schedule: DDAEBMSchedule,
    x_t: Tensor,
    x_next: Tensor,
    x_fake: Tensor,
    z: Tensor,
    t: Tensor,
    entropy_weight: float = 0.1,
    recon_var_floor: float = 1e-2,
    generator_rng: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``L_G`` above for the fake ``x_fake`` drawn (with gradient) from ``G(x_next, t, z)``.

    The caller freezes the energy's parameters; gradients reach the generator and the posterior only.
    """
    x_t = x_t.detach()
    kl_gen = (energy(x_fake, t).float() - schedule.transition_log_prob(x_next, x_fake, t)).mean()
    mean_f, logvar_f = posterior(x_fake, x_next, t)
    entropy = diag_gaussian_nll(z.float(), mean_f.float(), logvar_f.float()).mean()
    mean_q, logvar_q = posterior(x_t, x_next, t)
    eps = torch.randn(mean_q.shape, generator=generator_rng, device=mean_q.device, dtype=mean_q.dtype)
    z_q = mean_q + torch.exp(0.5 * logvar_q) * eps
    kl_prior = kl_to_standard_normal(mean_q.float(), logvar_q.float()).mean()
    x0_rec = generator(x_next, t, z_q)
    recon = -schedule.posterior_log_prob(x_t, x0_rec, x_next, t, var_floor=recon_var_floor).mean()
    loss = kl_gen + entropy_weight * entropy + kl_prior + recon
    parts = {"kl_gen": kl_gen.detach(), "entropy_nll": entropy.detach(), "kl_prior": kl_prior.detach(),
             "recon": recon.detach()}
    return loss, parts

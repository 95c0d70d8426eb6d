"""Pure-torch pieces of Diffusion Contrastive Divergence (Luo et al. 2023, "Training energy-based models with
diffusion contrastive divergences"; derived form, ``docs/algorithms.md#diffusion-contrastive-divergence``).

Derived from the paper's definitions (its body was not available). For a θ-free Gaussian kernel
``Q(x̃ | x) = N(x̃; a x, s² I)``

    DCD_Q(θ) = KL(p_d ‖ p_θ) − KL(Q p_d ‖ Q p_θ) ≥ 0          (data-processing inequality)

The log-partition functions of ``p_θ`` and ``Q p_θ`` are the same number and cancel, which leaves the exact
gradient

    ∇θ DCD = E_{p_d}[∇θ E(x)] − E_{x∼p_d, x̃∼Q(·|x), x'∼p_θ(·|x̃)}[∇θ E(x')],

with the *recovery posterior* ``p_θ(x' | x̃) ∝ exp(−U(x'))``, ``U(x') = E(x') + ‖x̃ − a x'‖² / (2s²)``.
VE kernel: ``a = 1``; VP kernel: ``a = sqrt(1 − β)``, ``s = sqrt(β)``.

The kernel, the recovery energy ``U`` and the noise ladder of the time-dependent variant are the shared noise
kernel of :mod:`lit_gen.diffusion.kernels` (re-exported here under DCD's names: ``DiffusionKernel`` is
:class:`~lit_gen.diffusion.kernels.GaussianKernel`). This module holds the DCD surrogate loss, the rule that
scales a sampler's step to the kernel, and the closed forms for a quadratic energy ``E(x) = ½ xᵀAx``
(Gaussian recovery posterior) that the tests compare the Monte Carlo gradient with.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from lit_gen.diffusion.kernels import (
    DiffusionKernel,
    EnergyFn,
    KernelKind,
    kernel_ladder,
    ladder_marginals,
    recovery_energy,
)
from lit_gen.losses.contrastive_divergence import contrastive_divergence_loss
from lit_gen.mcmc import HMC, Langevin, MCMCSampler, ReplicaExchange
from lit_gen.mcmc.base import check_positive as _positive

__all__ = [
    "DiffusionKernel",
    "EnergyFn",
    "KernelKind",
    "dcd_loss",
    "kernel_ladder",
    "ladder_marginals",
    "quadratic_dcd_gradient",
    "quadratic_recovery_second_moment",
    "recovery_energy",
    "scaled_sampler",
]


def scaled_sampler(sampler: MCMCSampler, kernel: DiffusionKernel, step_scale: float | None) -> MCMCSampler:
    """A copy of ``sampler`` whose step is matched to the recovery posterior of ``kernel``.

    Langevin / MALA: ``η = c (s/a)²`` (the ``η = c s²`` of ``docs/algorithms.md#diffusion-contrastive-divergence``,
    measured in the posterior's own width ``s/a``; the two agree for VE and to O(β) for VP). HMC:
    ``ε = sqrt(2c) s/a`` (one leapfrog step of size ε is a Langevin step of size ε²/2). ``step_scale=None``
    returns ``sampler`` unchanged. A Langevin sampler keeps exact noise (``noise_scale=None``) or no noise
    (``noise_scale=0``, gradient descent); a tempered one is refused because its temperature would silently
    change with the step.

    A :class:`~lit_gen.mcmc.ReplicaExchange` is copied with its base sampler scaled (in its scaled coordinates
    every replica then moves with ``η T_k``) and made non-persistent: each batch has its own posteriors
    ``p(x' | x̃)``, so hot replicas of the previous batch would be states of other targets.
    """
    if isinstance(sampler, ReplicaExchange):
        return sampler.non_persistent_copy(scaled_sampler(sampler.sampler, kernel, step_scale))
    if step_scale is None:
        return sampler
    c = _positive("step_scale", step_scale)
    if not hasattr(sampler, "step_size"):
        raise TypeError(
            f"{type(sampler).__name__} has no step_size to scale; set step_scale to null to use it as configured"
        )
    if isinstance(sampler, Langevin) and sampler.noise_scale not in (None, 0.0):
        raise ValueError(
            f"Langevin with an explicit noise_scale={sampler.noise_scale} (tempered) cannot have its step scaled "
            "by step_scale; use noise_scale null (exact) or 0 (gradient descent), or set step_scale to null"
        )
    width = kernel.posterior_scale
    out = copy.copy(sampler)  # a Langevin copy drops its compiled update (Langevin.__copy__)
    out.step_size = math.sqrt(2.0 * c) * width if isinstance(sampler, HMC) else c * width**2
    return out


def dcd_loss(energy_data: Tensor, energy_recovered: Tensor, alpha: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Surrogate ``mean E(x) − mean E(sg(x')) + α (mean E(x)² + mean E(x')²)``.

    ``energy_recovered`` must be the energy of *detached* recovery samples; the gradient of the first two terms
    is then the DCD gradient above. Same form as CD (:func:`contrastive_divergence_loss`), whose parts are
    returned under the key ``"cd"`` renamed ``"dcd"``.
    """
    loss, parts = contrastive_divergence_loss(energy_data, energy_recovered, alpha)
    return loss, {"dcd": parts["cd"], "reg": parts["reg"]}


# ----------------------------------------------------------------------- quadratic energy: closed forms
def quadratic_recovery_second_moment(
    A: Tensor,
    kernel: DiffusionKernel,
    data_second_moment: Tensor,
    steps: int | None = None,
    step_size: float | None = None,
    noise: bool = True,
) -> Tensor:
    """``E[x' x'ᵀ]`` of the recovery samples for ``E(x) = ½ xᵀAx`` (A symmetric), x ∼ p_d, x̃ ∼ Q(·|x).

    ``S_x̃ = E[x̃x̃ᵀ] = a² S_d + s² I``. Exact posterior (``steps=None``): precision ``P = A + (a²/s²) I``,
    ``x' | x̃ ∼ N(M x̃, P⁻¹)``, ``M = (a/s²) P⁻¹``, so ``E[x'x'ᵀ] = P⁻¹ + M S_x̃ Mᵀ``. ``steps = K`` Langevin steps of
    size η from ``x̃/a`` (``x ← x − η∇U + sqrt(2η) ξ``, ``∇U = P x − (a/s²) x̃``): with ``B = I − ηP``,
    ``x_K = M_K x̃ + n``, ``M_K = Bᴷ/a + η(a/s²) Σ_{j<K} Bʲ`` and ``Cov n = 2η Σ_{j<K} B²ʲ`` (0 when ``noise`` is
    False: gradient descent). Computed in float64.
    """
    A = A.detach().double()
    d = A.shape[0]
    if A.shape != (d, d) or data_second_moment.shape != (d, d):
        raise ValueError(
            f"A and data_second_moment must both be (d, d) matrices, got {tuple(A.shape)} and "
            f"{tuple(data_second_moment.shape)}"
        )
    eye = torch.eye(d, dtype=torch.float64, device=A.device)
    a, s2 = kernel.a, kernel.s**2
    s_tilde = a**2 * data_second_moment.detach().double() + s2 * eye
    precision = A + (a**2 / s2) * eye
    if steps is None:
        cov = torch.linalg.inv(precision)
        m = (a / s2) * cov
        return cov + m @ s_tilde @ m.T
    if step_size is None:
        raise ValueError("give step_size together with steps (the Langevin step η)")
    eta = _positive("step_size", step_size)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int or None (exact posterior), got {steps!r}")
    b = eye - eta * precision
    power, geo, noise_cov = eye.clone(), torch.zeros_like(eye), torch.zeros_like(eye)
    for _ in range(steps):
        geo = geo + power
        noise_cov = noise_cov + power @ power.T
        power = b @ power
    m_k = power / a + eta * (a / s2) * geo
    out = m_k @ s_tilde @ m_k.T
    return out + 2.0 * eta * noise_cov if noise else out


def quadratic_dcd_gradient(
    A: Tensor,
    kernel: DiffusionKernel,
    data_second_moment: Tensor,
    steps: int | None = None,
    step_size: float | None = None,
    noise: bool = True,
) -> Tensor:
    """Expected gradient with respect to A of the surrogate ``mean E(x) − mean E(sg(x'))`` for ``E = ½ xᵀAx``.

    ``∇_A E(x) = ½ x xᵀ``, so the gradient is ``½ (S_d − E[x'x'ᵀ])`` with ``E[x'x'ᵀ]`` from
    :func:`quadratic_recovery_second_moment` (exact posterior: the exact DCD gradient). Zero at ``A = S_d⁻¹``
    for centred Gaussian data, for the exact posterior.
    """
    second = quadratic_recovery_second_moment(A, kernel, data_second_moment, steps, step_size, noise)
    return 0.5 * (data_second_moment.detach().double() - second)

"""The Gaussian noise kernel ``q(x' | x) = N(x'; a x, s² I)``: transition, posterior and noise ladder.

One kernel serves every model of the package (see ``docs/algorithms.md#gaussian-noise-kernel``):

- the forward step of a variance-preserving diffusion, ``a = sqrt(1 − β)``, ``s² = β`` (Ho et al., 2020,
  "Denoising diffusion probabilistic models", eq. 2), and its marginal ``q(x_t | x_0)`` with ``a = sqrt(ᾱ_t)``,
  ``s² = 1 − ᾱ_t``; a variance-exploding step has ``a = 1`` (Song et al., 2021);
- DCD's θ-free kernel ``Q(x̃ | x)`` (Luo et al., 2023, "Training energy-based models with diffusion contrastive
  divergences") and its noise ladder;
- DDAEBM's per-step transition ``N(x_{t+1}; a_{t+1} x_t, β_{t+1} I)`` (Geng et al., 2024, "Improving
  adversarial energy-based model via diffusion process");
- denoising ``y = x + σ n`` under an energy prior (``a = 1``, ``s = σ``).

Two posteriors of the kernel appear:

- a Gaussian prior ``x ∼ N(m x_0, v I)`` gives the Gaussian posterior of :func:`posterior_coefficients`
  (the DDPM posterior ``q(x_{t−1} | x_t, x_0)`` is the case ``m = sqrt(ᾱ_{t−1})``, ``v = 1 − ᾱ_{t−1}``);
- an energy prior ``p(x) ∝ exp(−E(x))`` gives ``p(x | x') ∝ exp(−U(x))`` with the energy of
  :func:`recovery_energy`, ``U(x) = E(x) + ‖x' − a x‖² / (2s²)``.

Everything here is plain torch (no Lightning): scalar kernels are :class:`GaussianKernel`, per-sample kernels
(a tensor ``a`` or ``s²`` of shape broadcastable to the data) go through the free functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lit_gen.mcmc.base import check_positive as _positive

EnergyFn = Callable[[Tensor], Tensor]
KernelKind = Literal["ve", "vp"]

__all__ = [
    "DiffusionKernel",
    "GaussianKernel",
    "KernelKind",
    "gaussian_log_prob",
    "kernel_ladder",
    "ladder_marginals",
    "posterior_coefficients",
    "recovery_energy",
    "transition_log_prob",
]


# ------------------------------------------------------------------------------------------ the transition
@dataclass(frozen=True)
class GaussianKernel:
    """Gaussian noise kernel ``q(x' | x) = N(x'; a x, s² I)`` with scalar ``a > 0`` and ``s > 0``.

    Build with :meth:`ve` (``a = 1``) or :meth:`vp` (``a = sqrt(1 − β)``, ``s = sqrt(β)``).
    """

    a: float
    s: float

    def __post_init__(self) -> None:
        _positive("kernel scale a", self.a)
        _positive("kernel noise s", self.s)

    @classmethod
    def ve(cls, s: float) -> GaussianKernel:
        """Variance-exploding kernel ``x' = x + s ξ``."""
        return cls(1.0, _positive("s", s))

    @classmethod
    def vp(cls, beta: float) -> GaussianKernel:
        """Variance-preserving kernel ``x' = sqrt(1 − β) x + sqrt(β) ξ``, ``0 < β < 1``."""
        beta = _positive("beta", beta)
        if beta >= 1.0:
            raise ValueError(f"the VP kernel needs 0 < beta < 1, got {beta}")
        return cls(math.sqrt(1.0 - beta), math.sqrt(beta))

    @classmethod
    def from_noise(cls, kind: KernelKind, s: float) -> GaussianKernel:
        """``kind="ve"``: noise std ``s``; ``kind="vp"``: ``β = s²``."""
        if kind == "ve":
            return cls.ve(s)
        if kind == "vp":
            return cls.vp(_positive("s", s) ** 2)
        raise ValueError(f"kernel must be 've' or 'vp', got {kind!r}")

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``x' = a x + s ξ``, ``ξ ∼ N(0, I)`` drawn from ``generator`` (on the generator's device)."""
        device = x.device if generator is None else generator.device
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device)
        return self.a * x + self.s * noise.to(x.device)

    def log_prob(self, x_next: Tensor, x: Tensor) -> Tensor:
        """``log q(x' | x)`` summed over the data dimensions, shape (B,)."""
        var = torch.tensor(self.s**2, dtype=x.dtype, device=x.device)
        return transition_log_prob(x_next, x, self.a, var)

    def posterior_init(self, x_next: Tensor) -> Tensor:
        """``x' / a``: the maximiser of the likelihood ``q(x' | x)`` in x, where posterior chains start."""
        return x_next / self.a

    @property
    def posterior_scale(self) -> float:
        """``s / a``: the posterior's width in x when the prior is flat on that scale."""
        return self.s / self.a


DiffusionKernel = GaussianKernel
"""The name DCD's code uses for :class:`GaussianKernel`."""


def gaussian_log_prob(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """``log N(x; mean, var I)`` summed over all but the batch dimension, shape (B,).

    ``mean`` and ``var`` broadcast against ``x``; ``var`` may be per sample, shape (B, 1, ..., 1).
    """
    elem = -0.5 * ((x - mean) ** 2 / var + var.log() + math.log(2 * math.pi))
    return elem.expand_as(x).flatten(1).sum(dim=1)


def transition_log_prob(x_next: Tensor, x: Tensor, a: Tensor | float, var: Tensor) -> Tensor:
    """``log q(x' | x) = log N(x'; a x, s² I)`` with ``var = s²``, summed over the data dimensions."""
    return gaussian_log_prob(x_next, a * x, var)


# ------------------------------------------------------------------------------------------ the posteriors
def posterior_coefficients(
    prior_scale: Tensor,
    prior_var: Tensor,
    a: Tensor,
    var: Tensor,
    marginal_var: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gaussian posterior of the kernel under the prior ``x ∼ N(m x_0, v I)``.

    With ``m = prior_scale``, ``v = prior_var``, the kernel ``x' | x ∼ N(a x, s² I)`` (``s² = var``) and the
    marginal variance ``v' = a² v + s²`` of ``x' | x_0`` (Bishop, 2006, "Pattern recognition and machine
    learning", eq. 2.116; Ho et al., 2020, eq. 6–7, for the DDPM case)::

        x | x', x_0  ∼  N(c_0 x_0 + c' x', ṽ I),   c_0 = m s² / v',   c' = a v / v',   ṽ = v s² / v'.

    ``marginal_var`` may be given when it is known more accurately than ``a² v + s²`` (for a diffusion,
    ``1 − ᾱ_t`` from the schedule's table). Returns ``(c_0, c', ṽ)``, elementwise in the arguments.
    """
    if marginal_var is None:
        marginal_var = a * a * prior_var + var
    coef_x0 = prior_scale * var / marginal_var
    coef_x = a * prior_var / marginal_var
    post_var = prior_var / marginal_var * var
    return coef_x0, coef_x, post_var


def recovery_energy(energy: EnergyFn, x_next: Tensor, kernel: GaussianKernel) -> EnergyFn:
    """``U(x) = E(x) + ‖x' − a x‖² / (2s²)``: minus the log posterior ``p(x | x') ∝ exp(−E(x)) q(x' | x)``.

    Per sample, for the batch of noisy points ``x_next`` (DCD's recovery posterior, Luo et al., 2023; with
    ``a = 1``, ``s = σ`` the posterior of denoising ``y = x + σ n``). The returned callable expects states of
    ``x_next``'s shape, one chain per noisy point.
    """
    target = x_next.detach()
    a, inv_two_s2 = kernel.a, 1.0 / (2.0 * kernel.s**2)

    def u(z: Tensor) -> Tensor:
        if z.shape != target.shape:
            raise ValueError(
                f"recovery chains must have the noisy batch's shape {tuple(target.shape)}, got {tuple(z.shape)}"
            )
        return energy(z) + inv_two_s2 * (target - a * z).flatten(1).pow(2).sum(1)

    return u


# --------------------------------------------------------------------------------------------- the ladder
def kernel_ladder(kind: KernelKind, num_levels: int, noise_min: float, noise_max: float) -> list[GaussianKernel]:
    """Kernels ``Q_1 … Q_L`` of the ladder ``x_0 (data) → x_1 → … → x_L``; ``Q_{t+1}`` takes level t to t+1.

    VE: the marginal noise std ``σ_t`` of ``x_t = x_0 + σ_t ε`` is geometric from ``noise_min`` (t = 1) to
    ``noise_max`` (t = L), so ``s_{t+1} = sqrt(σ_{t+1}² − σ_t²)``. VP: ``β_t`` geometric from ``noise_min²`` to
    ``noise_max²`` (each ``β < 1``). ``num_levels = 1`` is the single kernel of noise ``noise_min``.
    """
    if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
        raise ValueError(f"num_levels must be a positive int, got {num_levels!r}")
    lo, hi = _positive("noise_min", noise_min), _positive("noise_max", noise_max)
    if num_levels > 1 and not lo < hi:
        raise ValueError(f"a ladder needs noise_min < noise_max, got {lo} and {hi}")
    if num_levels == 1:
        levels = [lo]
    else:
        ratio = (hi / lo) ** (1.0 / (num_levels - 1))
        levels = [lo * ratio**k for k in range(num_levels)]
    if kind == "ve":
        prev, out = 0.0, []
        for sigma in levels:
            out.append(GaussianKernel.ve(math.sqrt(sigma**2 - prev**2)))
            prev = sigma
        return out
    if kind == "vp":
        return [GaussianKernel.vp(sigma**2) for sigma in levels]
    raise ValueError(f"kernel must be 've' or 'vp', got {kind!r}")


def ladder_marginals(kernels: list[GaussianKernel]) -> tuple[list[float], list[float]]:
    """``(m_t, σ_t)`` for t = 0..L with ``x_t = m_t x_0 + σ_t ε`` (``m_0 = 1``, ``σ_0 = 0``).

    Composing kernels: ``m_{t+1} = a_{t+1} m_t`` and ``σ_{t+1}² = a_{t+1}² σ_t² + s_{t+1}²``.
    """
    means, stds = [1.0], [0.0]
    for k in kernels:
        means.append(means[-1] * k.a)
        stds.append(math.sqrt((k.a * stds[-1]) ** 2 + k.s**2))
    return means, stds

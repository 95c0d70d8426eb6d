"""Denoising with any energy model: ``y = x + σ n`` → the posterior ``p(x | y) ∝ exp(−E(x) − ‖y − x‖² / (2σ²))``.

Used by DCD (Luo et al. 2023) to show that the learned energy is a useful prior, and valid for any energy
``E(x) -> (B,)`` with ``p(x) ∝ exp(−E(x))`` (an ``EBMModule``'s, a ``DCDModule``'s, a plain function).

Methods:
- ``"map"``: gradient descent on ``D(x) = E(x) + ‖y − x‖²/(2σ²)`` from ``x = y`` (the posterior mode).
- ``"sample"``: the last state of a Langevin (or any lit_gen.mcmc) chain on ``D`` started at y.
- ``"mean"``: the average of the chain's states after burn-in (half the steps): a Monte Carlo posterior mean,
  the minimum-MSE estimate when the energy is right, hence the one that maximises PSNR in expectation.
- ``"tweedie"``: one gradient, ``x̂ = y − σ² ∇E_σ(y)``, for an energy ``E_σ`` of the *noisy* marginal
  ``p_σ = p * N(0, σ² I)`` (an energy trained at noise σ, e.g. one level of DCD's noise ladder): Tweedie's formula
  (Robbins 1956; Efron 2011) makes this the exact posterior mean ``E[x | y]`` when ``E_σ`` is right, with no
  prior energy of the clean data needed. ``steps``, ``step_scale`` and ``sampler`` are not used.
The step of the other methods is ``step_scale · σ²``: the quadratic term has curvature ``1/σ²``, so this is a
fixed fraction of the largest stable gradient step whatever σ is.

``D`` is the posterior energy of the shared Gaussian noise kernel with ``a = 1``, ``s = σ``
(:func:`lit_gen.diffusion.kernels.recovery_energy`, ``docs/algorithms.md#gaussian-noise-kernel``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion.kernels import EnergyFn, GaussianKernel, recovery_energy
from lit_gen.mcmc import Langevin, MCMCSampler

__all__ = ["denoise", "denoising_energy"]


def denoising_energy(energy: EnergyFn, y: Tensor, sigma: float) -> EnergyFn:
    """``D(x) = E(x) + ‖y − x‖² / (2σ²)``, per sample, for the noisy batch ``y``: the recovery energy of the
    kernel ``y ∼ N(x, σ² I)``, i.e. minus the log posterior ``p(x | y)`` up to a constant."""
    return recovery_energy(energy, y, GaussianKernel.ve(sigma))


def denoise(
    energy: EnergyFn,
    y: Tensor,
    sigma: float,
    *,
    method: Literal["map", "sample", "mean", "tweedie"] = "map",
    steps: int = 100,
    step_scale: float = 0.1,
    sampler: MCMCSampler | None = None,
    clamp: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Denoise ``y = x + σ n`` under the energy prior ``p(x) ∝ exp(−E(x))``.

    Args:
        energy: callable ``x -> (B,)``: the clean-data energy ``E`` (``"map"``, ``"sample"``, ``"mean"``) or the
            noisy marginal's ``E_σ`` (``"tweedie"``).
        y: noisy batch ``(B, *shape)``.
        sigma: the noise std σ (> 0) the observations were corrupted with.
        method: ``"map"`` (gradient descent), ``"sample"`` (one posterior sample), ``"mean"`` (average of the
            chain after burn-in) or ``"tweedie"`` (``y − σ² ∇E_σ(y)``).
        steps: gradient or MCMC steps.
        step_scale: step ``η = step_scale · σ²`` for the default samplers.
        sampler: MCMC sampler for ``"sample"``/``"mean"`` (default: exact Langevin with step η); ignored by
            ``"map"``.
        clamp: ``(low, high)`` box the result is clamped to (e.g. ``(-1, 1)`` for images), or None.
        generator: random source of the chains.

    Returns:
        The denoised batch, detached, shaped like ``y``.
    """
    if not isinstance(y, Tensor) or not y.is_floating_point() or y.dim() < 2:
        raise TypeError("y must be a floating-point tensor of noisy points with shape (B, *shape)")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be the positive noise std of the observations, got {sigma!r}")
    if method not in ("map", "sample", "mean", "tweedie"):
        raise ValueError(f"method must be 'map', 'sample', 'mean' or 'tweedie', got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not (isinstance(step_scale, (int, float)) and 0 < step_scale < 2):
        raise ValueError(f"step_scale must be in (0, 2) (gradient descent on the σ² term diverges at 2), got "
                         f"{step_scale!r}")
    if clamp is not None and not float(clamp[0]) < float(clamp[1]):
        raise ValueError(f"clamp must be (low, high) with low < high, got {clamp!r}")
    sigma = float(sigma)
    eta = float(step_scale) * sigma**2
    with torch.inference_mode(False):
        y = y.detach().clone()
        d = denoising_energy(energy, y, sigma)
        if method == "tweedie":
            with torch.enable_grad():
                z = y.requires_grad_(True)
                (grad,) = torch.autograd.grad(energy(z).sum(), z)
            out = y.detach() - sigma**2 * grad
            if not torch.isfinite(out).all():
                raise FloatingPointError("tweedie denoising: the energy's gradient at the noisy images is not finite; "
                                         "check the energy for overflow there")
        elif method == "map":
            out = Langevin(step_size=eta, noise_scale=0.0).run(d, y, steps).x
        else:
            chain = sampler if sampler is not None else Langevin(step_size=eta)
            if method == "sample":
                out = chain.run(d, y, steps, generator=generator).x
            else:
                burn = steps // 2
                x = chain.run(d, y, burn, generator=generator).x if burn > 0 else y
                total = torch.zeros_like(y)
                for _ in range(steps - burn):
                    x = chain.run(d, x, 1, generator=generator).x
                    total += x
                out = total / (steps - burn)
        if clamp is not None:
            out = out.clamp(float(clamp[0]), float(clamp[1]))
        return out.detach()

"""Exact log-likelihood of a diffusion model through its probability-flow ODE.

Song et al. (2021), "Score-based generative modeling through stochastic differential equations", §4.3 and
App. D.2: the probability-flow ODE is a continuous normalising flow, so the instantaneous change of variables
(Chen et al., 2018, "Neural ordinary differential equations", Thm. 1) gives ``log p_0`` by integrating the
divergence of its drift from data to noise.

We work in the variance-exploding variable of Karras et al. (2022), ``y = x / sqrt(ᾱ)`` with
``σ = sqrt((1 − ᾱ)/ᾱ)`` (``schedule.edm_sigma``), and in log-time ``u = log σ``, where the ODE and the
log-density read::

    dy/du = G(y, u) = y − D(y / sqrt(1 + σ²), t(σ))
    d/du log p_u(y(u)) = −div_y G = −(d − tr ∂D/∂y)

so ``log p_{σ_min}(x) = log N(y_T; 0, (1 + σ_max²) I) + ∫_{log σ_min}^{log σ_max} (d − tr ∂D/∂y) du`` with
``y(log σ_min) = x``. The prior ``N(0, (1 + σ²) I)`` is the law of ``y = x_T / sqrt(ᾱ)`` for ``x_T ~ N(0, I)``,
the distribution every sampler starts from. The divergence is exact (``d`` autograd passes) for ``d ≤ 16`` and
Hutchinson's estimator ``vᵀ (∂D/∂y) v`` with one Rademacher ``v`` per sample, fixed along the path, above
(FFJORD, Grathwohl et al., 2019) — unbiased for ``log p``.

The integrator is classical 4th-order Runge–Kutta on a uniform grid in ``u`` (``nfe = 4 · num_steps``). The
reported density is that of the model at its smallest noise level ``σ_min = edm_sigma(0)`` (the data convolved
with ``N(0, σ_min²)``), the standard convention (Song et al., 2021, integrate from ``t = ε``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import full_t
from lit_gen.diffusion.samplers.heun import EDM_SIGMA_MAX
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["EXACT_DIVERGENCE_MAX_DIM", "LikelihoodOutput", "bits_per_dim", "dequantize", "divergence_fn",
           "pf_ode_log_prob"]

EXACT_DIVERGENCE_MAX_DIM = 16
Divergence = Literal["auto", "exact", "hutchinson"]


@dataclass
class LikelihoodOutput:
    """``log_prob`` (B,) in nats, the latent ``y_T`` reached at ``σ_max`` and the denoiser evaluations ``nfe``."""

    log_prob: Tensor
    latent: Tensor
    nfe: int


def divergence_fn(
    mode: str, dim: int, generator: torch.Generator | None = None
) -> Callable[[Tensor, Tensor], Tensor]:
    """A function ``(out, y) -> tr ∂out/∂y`` (B,) for ``out = D(y)``; ``y`` must require grad.

    ``exact``: ``dim`` backward passes; ``hutchinson``: ``εᵀ ∂out/∂y ε`` with one Rademacher ``ε`` per sample,
    drawn on first use from ``generator`` and kept for every later call (Hutchinson 1989; Grathwohl et al. 2019);
    ``auto``: exact up to 16 dimensions. Shared by the diffusion and the flow likelihoods."""
    if mode == "auto":
        mode = "exact" if dim <= EXACT_DIVERGENCE_MAX_DIM else "hutchinson"
    if mode == "exact":

        def exact(out: Tensor, y: Tensor) -> Tensor:
            flat_out = out.flatten(1)
            trace = torch.zeros(out.shape[0], dtype=out.dtype, device=out.device)
            for i in range(dim):
                (g,) = torch.autograd.grad(flat_out[:, i].sum(), y, retain_graph=True)
                trace = trace + g.flatten(1)[:, i]
            return trace

        return exact
    if mode == "hutchinson":
        probe: dict[str, Tensor] = {}

        def hutchinson(out: Tensor, y: Tensor) -> Tensor:
            if "v" not in probe:  # one Rademacher probe per sample, fixed along the whole path
                bits = torch.randint(0, 2, y.shape, generator=generator, device="cpu").to(y.device, y.dtype)
                probe["v"] = 2.0 * bits - 1.0
            v = probe["v"]
            (g,) = torch.autograd.grad((out * v).sum(), y)
            return (g * v).flatten(1).sum(1)

        return hutchinson
    raise ValueError(f"divergence must be 'auto', 'exact' or 'hutchinson', got {mode!r}")


def pf_ode_log_prob(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x: Tensor,
    num_steps: int = 32,
    *,
    divergence: Divergence = "auto",
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    generator: torch.Generator | None = None,
) -> LikelihoodOutput:
    """``log p(x)`` (nats, per sample) of the diffusion model whose denoiser is ``D(x_t, t) ≈ E[x_0 | x_t]``.

    Args:
        denoiser: the model's x̂0-predictor (e.g. :class:`~lit_gen.diffusion.NetworkDenoiser`).
        schedule: the schedule the denoiser was built for.
        x: data batch ``(B, *data_shape)``.
        num_steps: RK4 steps on the uniform ``log σ`` grid (``nfe = 4 · num_steps``).
        divergence: ``exact`` (``d`` backward passes), ``hutchinson`` (one Rademacher probe) or ``auto``
            (exact for ``d ≤ 16``).
        sigma_min: lower end (default ``edm_sigma(0)``, the model's smallest noise level).
        sigma_max: upper end (default ``min(edm_sigma(T−1), 80)``, as the Heun sampler).
        generator: random source of the Hutchinson probes.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if x.dim() < 2:
        raise ValueError(f"x must be a batch of shape (B, *data_shape), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values; the likelihood of such points is undefined")
    ends = torch.tensor([0.0, schedule.num_timesteps - 1.0], dtype=torch.float64, device=schedule.log_alpha_bars.device)
    lo_s, hi_s = schedule.edm_sigma(ends).tolist()
    s_min = lo_s if sigma_min is None else float(sigma_min)
    s_max = min(hi_s, EDM_SIGMA_MAX) if sigma_max is None else float(sigma_max)
    if not lo_s * (1 - 1e-4) <= s_min < s_max <= hi_s * (1 + 1e-4):
        raise ValueError(
            f"need edm_sigma(0) <= sigma_min < sigma_max <= edm_sigma(T-1), i.e. within [{lo_s:.4g}, {hi_s:.4g}]; "
            f"got sigma_min={s_min:.4g}, sigma_max={s_max:.4g}"
        )
    batch, dim = x.shape[0], x[0].numel()
    dtype = x.dtype
    div = divergence_fn(divergence, dim, generator)
    u0, u1 = math.log(s_min), math.log(s_max)
    h = (u1 - u0) / num_steps

    def drift(y: Tensor, u: float) -> tuple[Tensor, Tensor]:
        sigma = math.exp(u)
        t = schedule.t_from_edm_sigma(torch.tensor([sigma], dtype=torch.float64, device=y.device)).item()
        with torch.enable_grad():
            y_in = y.detach().requires_grad_(True)
            out = denoiser(y_in / math.sqrt(1.0 + sigma**2), full_t(t, batch, y.device, dtype)).to(dtype)
            trace = div(out, y_in)
        return (y - out).detach(), (dim - trace).detach()

    # Lightning evaluates under inference mode; the divergence needs autograd, so leave it (and clone x out).
    with torch.inference_mode(False):
        return _integrate(drift, x.detach().clone(), num_steps, u0, h, s_max, dim)


def _integrate(
    drift: Callable[[Tensor, float], tuple[Tensor, Tensor]],
    x: Tensor,
    num_steps: int,
    u0: float,
    h: float,
    s_max: float,
    dim: int,
) -> LikelihoodOutput:
    """Classical RK4 on the augmented state ``(y, ∫ div)`` from ``u0`` in ``num_steps`` steps of ``h``."""
    y, dtype = x, x.dtype
    delta = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(num_steps):
        u = u0 + i * h
        k1, l1 = drift(y, u)
        k2, l2 = drift(y + 0.5 * h * k1, u + 0.5 * h)
        k3, l3 = drift(y + 0.5 * h * k2, u + 0.5 * h)
        k4, l4 = drift(y + h * k3, u + h)
        y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        delta = delta + h / 6.0 * (l1 + 2 * l2 + 2 * l3 + l4).to(torch.float64)
    var = 1.0 + s_max**2
    flat = y.flatten(1).to(torch.float64)
    prior = -0.5 * flat.square().sum(1) / var - 0.5 * dim * math.log(2 * math.pi * var)
    log_prob = prior + delta
    if not torch.isfinite(log_prob).all():
        raise FloatingPointError(
            "the probability-flow ODE produced a non-finite log-likelihood; the denoiser returned NaN/inf or the "
            "integration diverged — check the model, or raise num_steps"
        )
    return LikelihoodOutput(log_prob=log_prob.to(dtype), latent=y, nfe=4 * num_steps)


def dequantize(x: Tensor, num_levels: int = 256, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantisation of data in [−1, 1] stored on ``num_levels`` levels (``x = 2k/(L−1) − 1``).

    Returns ``x' = 2(k + u)/L − 1`` with ``u ~ U[0, 1)`` (Theis et al., 2016, "A note on the evaluation of
    generative models"; Ho et al., 2019, Flow++): a continuous density on ``x'`` lower-bounds the discrete
    likelihood, ``log P(k) ≥ E_u log p(x') + D log(2/L)`` (see :func:`bits_per_dim`).
    """
    if num_levels < 2:
        raise ValueError(f"num_levels must be >= 2, got {num_levels}")
    if bool((x < -1.0 - 1e-4).any()) or bool((x > 1.0 + 1e-4).any()):
        raise ValueError("dequantize expects data scaled to [-1, 1] (images: (k/255 − 0.5)/0.5)")
    k = torch.round((x + 1.0) * 0.5 * (num_levels - 1))
    u = torch.rand(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    return 2.0 * (k + u) / num_levels - 1.0


def bits_per_dim(log_prob: Tensor, dim: int, num_levels: int = 256) -> Tensor:
    """Bits per dimension of the discrete data: ``−(log p(x') + D log(2/L)) / (D log 2)`` for dequantised
    ``x'`` (:func:`dequantize`), the change of variables from ``[0, L)^D`` to ``[−1, 1)^D`` included."""
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    return -(log_prob + dim * math.log(2.0 / num_levels)) / (dim * math.log(2.0))

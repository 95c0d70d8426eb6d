"""Exact log-likelihood of a flow ``dx/dt = v(x, t)`` by the instantaneous change of variables (Chen et al., 2018,
"Neural ordinary differential equations", Thm. 1), as for the diffusion PF-ODE (:mod:`lit_gen.diffusion.likelihood`).

Along a trajectory ``d/dt log p_t(x_t) = −div v(x_t, t)``, so with the source density ``p_0`` at ``t = 0``::

    log p_1(x) = log p_0(x(0)) − ∫_0^1 div v(x(t), t) dt,   x(1) = x

obtained by integrating the augmented state ``(x, ℓ)``, ``dℓ/dt = div v``, from ``t = 1`` back to ``t = 0`` with a
solver of :mod:`lit_gen.diffusion.ode` (``ℓ(0) = −∫_0^1 div v dt``). The divergence is exact (``d`` autograd
passes) up to ``d = 16`` dimensions and Hutchinson's estimator ``εᵀ (∂v/∂x) ε`` with one Rademacher probe per
sample, fixed along the path, above (FFJORD, Grathwohl et al., 2019): unbiased for ``log p``.
See ``docs/algorithms.md#flow-matching``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion.likelihood import EXACT_DIVERGENCE_MAX_DIM, divergence_fn
from lit_gen.diffusion.ode import Method, odeint

__all__ = [
    "EXACT_DIVERGENCE_MAX_DIM", "FlowLogProbOutput", "divergence_fn", "flow_log_prob", "standard_normal_log_prob",
]

Divergence = Literal["auto", "exact", "hutchinson"]


@dataclass
class FlowLogProbOutput:
    """``log_prob`` (B,) in nats, the source point ``latent`` reached at ``t = 0`` and the evaluations ``nfe``."""

    log_prob: Tensor
    latent: Tensor
    nfe: int


def standard_normal_log_prob(x: Tensor) -> Tensor:
    """``log N(x; 0, I)`` per sample (B,), in float64."""
    flat = x.flatten(1).double()
    return -0.5 * flat.square().sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


def flow_log_prob(
    velocity: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    source_log_prob: Callable[[Tensor], Tensor] = standard_normal_log_prob,
    method: Method = "rk4",
    num_steps: int = 32,
    *,
    divergence: Divergence = "auto",
    generator: torch.Generator | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> FlowLogProbOutput:
    """``log p_1(x)`` (nats, per sample) of the flow of ``velocity(x, t)`` (``t`` of shape (B,) in [0, 1]) from a
    source of log-density ``source_log_prob``.

    Args:
        method, num_steps: ODE solver of :mod:`lit_gen.diffusion.ode` and its steps (``dopri5``: ``rtol``,
            ``atol`` instead of steps).
        divergence: ``exact``, ``hutchinson`` or ``auto`` (exact up to 16 dimensions).
        generator: random source of the Hutchinson probes.
    """
    if x.dim() < 2:
        raise ValueError(f"x must be a batch of shape (B, *data_shape), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values; the likelihood of such points is undefined")
    batch, dim, dtype = x.shape[0], x[0].numel(), x.dtype
    div = divergence_fn(divergence, dim, generator)

    def augmented(t: float, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            x_in = state[0].detach().requires_grad_(True)
            out = velocity(x_in, torch.full((batch,), t, device=x.device, dtype=torch.promote_types(dtype,
                                                                                                 torch.float32)))
            out = out.to(dtype)
            trace = div(out, x_in)
        return out.detach(), trace.detach().to(torch.float64)

    # Lightning evaluates under inference mode; the divergence needs autograd, so leave it (and clone x out).
    with torch.inference_mode(False):
        start = (x.detach().clone(), torch.zeros(batch, dtype=torch.float64, device=x.device))
        sol = odeint(augmented, start, 1.0, 0.0, method, num_steps, rtol=rtol, atol=atol)
        latent, delta = sol.x
        log_prob = source_log_prob(latent).to(torch.float64) + delta
    if not torch.isfinite(log_prob).all():
        raise FloatingPointError(
            "the flow's change of variables produced a non-finite log-likelihood: the velocity returned NaN/inf, "
            "the integration diverged (raise num_steps), or the source has no density at the latent points"
        )
    return FlowLogProbOutput(log_prob=log_prob.to(dtype), latent=latent, nfe=sol.nfe)

"""The conditional flow matching loss (Lipman et al., 2023, "Flow Matching for Generative Modeling"; Tong et al.,
2024, "Improving and generalizing flow-based generative models with minibatch optimal transport"); see
``docs/algorithms.md#flow-matching``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lit_gen.flows.paths import ProbabilityPath

__all__ = ["VelocityField", "cfm_loss", "sample_time"]

VelocityField = Callable[[Tensor, Tensor], Tensor]
"""``v(x_t, t) -> dx/dt`` shaped like ``x_t``, with ``t`` of shape (B,) in [0, 1]."""


def sample_time(batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                generator: torch.Generator | None = None) -> Tensor:
    """``t ~ U[0, 1)`` of shape (batch,), drawn on the generator's device and moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(batch, generator=generator, device=gen_device, dtype=dtype).to(device)


def cfm_loss(
    velocity: VelocityField,
    path: ProbabilityPath,
    x0: Tensor,
    x1: Tensor,
    t: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``E_{t, (x0, x1), ε} ‖v_θ(x_t, t) − u_t(x_t | x0, x1)‖²``, averaged over the batch and the data dimensions.

    The pairs ``(x0, x1)`` come from a coupling (:mod:`lit_gen.flows.couplings`), ``x_t`` and the target ``u_t``
    from ``path``; ``t ~ U[0, 1)`` unless given. Its minimiser over all fields is the marginal velocity
    ``u*(x, t) = E[u_t | x_t = x]``, whose flow carries the source distribution to the data (Lipman et al.,
    Thms. 1–2); the minimum is ``E_t E ‖u_t − u*(x_t, t)‖² / d``, the expected conditional variance of the target.
    The regression is done in float32 at least (the network may run under bf16 autocast).
    """
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if t is None:
        t = sample_time(x0.shape[0], x0.device, x0.dtype, generator)
    x_t, target = path.sample(x0, x1, t, generator)
    pred = velocity(x_t, t)
    if pred.shape != x_t.shape:
        raise ValueError(f"the velocity network returned shape {tuple(pred.shape)}, expected {tuple(x_t.shape)}")
    dtype = torch.promote_types(target.dtype, torch.float32)
    return (pred.to(dtype) - target.to(dtype)).square().mean()

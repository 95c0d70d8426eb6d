"""Denoising score-matching loss of diffusion models, with optional min-SNR-γ weighting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from lit_gen.diffusion._random import randint, randn
from lit_gen.diffusion.parametrization import Prediction, check_prediction, training_target
from lit_gen.diffusion.schedules import NoiseSchedule
from lit_gen.utils.config import RecordsInit

__all__ = ["DSMLoss", "DiffusionLoss", "Weighting", "dsm_loss", "min_snr_weight"]

Weighting = Literal["none", "min_snr"]


def min_snr_weight(snr: Tensor, prediction: Prediction, gamma: float = 5.0) -> Tensor:
    """Min-SNR-γ loss weight (Hang et al., 2023, "Efficient diffusion training via min-SNR weighting").

    The x_0-space weight ``min(SNR, γ)`` is rewritten for the regression target actually used, since
    ``‖ε̂ − ε‖² = SNR ‖x̂_0 − x_0‖²`` and ``‖v̂ − v‖² = (SNR + 1) ‖x̂_0 − x_0‖²``::

        eps: min(SNR, γ) / SNR      x0: min(SNR, γ)      v: min(SNR, γ) / (SNR + 1)
    """
    check_prediction(prediction)
    if gamma <= 0:
        raise ValueError(f"min-SNR gamma must be positive, got {gamma}")
    clipped = snr.clamp(max=gamma)
    if prediction == "eps":
        return clipped / snr
    if prediction == "x0":
        return clipped
    return clipped / (snr + 1.0)


def dsm_loss(
    net: Callable[[Tensor, Tensor], Tensor],
    schedule: NoiseSchedule,
    x0: Tensor,
    prediction: Prediction = "eps",
    weighting: Weighting = "none",
    gamma: float = 5.0,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    target_fn: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """Denoising diffusion loss (Ho et al., 2020, "Denoising diffusion probabilistic models", eq. 14)::

        L = mean_b  w(t_b) · mean_dims (target_b − net(x_t_b, t_b))²,   x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε

    with ``t ~ U{0, ..., T−1}`` (as floats) and ``ε ~ N(0, I)`` unless given, the target set by
    ``prediction`` (see :mod:`lit_gen.diffusion.parametrization`) and ``w = 1`` or min-SNR-γ.
    ``target_fn(x0, noise, alpha_bar)``, if given, replaces the per-sample target (computed without gradient),
    e.g. the OISM posterior average of :func:`lit_gen.diffusion.oism.oism_loss`.
    """
    check_prediction(prediction)
    if weighting not in ("none", "min_snr"):
        raise ValueError(f"weighting must be 'none' or 'min_snr', got {weighting!r}")
    if x0.dim() < 2:
        raise ValueError(f"x0 must be a batch of shape (B, *data_shape), got shape {tuple(x0.shape)}")
    batch = x0.shape[0]
    if t is None:
        t = randint(schedule.num_timesteps, (batch,), generator, x0.device).to(x0.dtype)
    elif t.shape != (batch,):
        raise ValueError(f"t must have shape (B,) = ({batch},), got {tuple(t.shape)}")
    if noise is None:
        noise = randn(x0.shape, generator, x0.device, x0.dtype)
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    # One schedule lookup for the whole loss (each lookup validates t, a host sync on GPU).
    log_alpha_bar = schedule.log_alpha_bar(t)
    alpha_bar = log_alpha_bar.exp()
    one_minus = -torch.expm1(log_alpha_bar)
    shape = (-1, *([1] * (x0.dim() - 1)))
    x_t = alpha_bar.sqrt().to(x0.dtype).reshape(shape) * x0 + one_minus.sqrt().to(x0.dtype).reshape(shape) * noise
    if target_fn is None:
        target = training_target(prediction, x0, noise, alpha_bar)
    else:
        with torch.no_grad():
            target = target_fn(x0, noise, alpha_bar)
    pred = net(x_t, t)
    if pred.shape != x0.shape:
        raise ValueError(
            f"the network returned shape {tuple(pred.shape)} but must return the shape of its input "
            f"{tuple(x0.shape)} (a {prediction!r} prediction)"
        )
    per_sample = (pred - target).square().flatten(1).mean(1)
    if weighting == "min_snr":
        per_sample = per_sample * min_snr_weight(alpha_bar / one_minus, prediction, gamma).to(per_sample.dtype)
    return per_sample.mean()


class DiffusionLoss(RecordsInit):
    """Interface of a diffusion training objective, called as ``loss(net, schedule, x0, prediction) -> Tensor``.

    ``net(x_t, t)`` predicts ``prediction`` (``eps``, ``x0`` or ``v``) for the batch ``x0`` noised by ``schedule``;
    the result is the scalar loss. A user's own objective subclasses it and is chosen in YAML by ``class_path``
    (``model.init_args.loss``), in the manner of the loss classes of Karras et al. (2022)'s EDM code.
    """

    def __call__(
        self, net: Callable[[Tensor, Tensor], Tensor], schedule: NoiseSchedule, x0: Tensor, prediction: Prediction
    ) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class DSMLoss(DiffusionLoss):
    """:func:`dsm_loss` with its weighting: ``none`` or min-SNR-γ (``gamma``)."""

    def __init__(self, weighting: Weighting = "none", gamma: float = 5.0) -> None:
        if weighting not in ("none", "min_snr"):
            raise ValueError(f"weighting must be 'none' or 'min_snr', got {weighting!r}")
        self.weighting = weighting
        self.gamma = float(gamma)

    def __call__(
        self, net: Callable[[Tensor, Tensor], Tensor], schedule: NoiseSchedule, x0: Tensor, prediction: Prediction
    ) -> Tensor:
        return dsm_loss(net, schedule, x0, prediction=prediction, weighting=self.weighting, gamma=self.gamma)

"""Operator-informed score matching (OISM): the DSM target averaged over the posterior on a reference batch.

Shen & Oates (2024), "Operator-informed score matching for Markov diffusion models" (arXiv:2406.09084),
seed 002. The variance-preserving forward process is an Ornstein–Uhlenbeck process with a closed-form
transition kernel, so the score of the forward process applied to an empirical measure ``{x0_j}`` is

    s_t(x) = Σ_j w_j(x) (sqrt(ᾱ_t) x0_j − x) / (1 − ᾱ_t),
    w_j(x) = softmax_j(−‖x − sqrt(ᾱ_t) x0_j‖² / (2 (1 − ᾱ_t))).

With a reference set of ``R`` points containing the sample's own ``x0`` this replaces the single-sample DSM
targets (``ε``, ``x0`` or ``v``) by their posterior averages: ``x̂0 = Σ_j w_j x0_j``,
``ε̂ = (x_t − sqrt(ᾱ) x̂0)/sqrt(1 − ᾱ)``, ``v̂ = sqrt(ᾱ) ε̂ − sqrt(1 − ᾱ) x̂0``. ``R = 1`` is DSM exactly; as
``R → ∞`` the target tends to ``E[target | x_t]``, the minimiser of the DSM loss, with lower variance.
The same estimator is known as the "stable target field" (Xu et al., 2023). **Derived**: the paper's
full text was not available; the formula above follows from its definitions (``docs/algorithms.md#oism``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lit_gen.diffusion.losses import DiffusionLoss, Weighting, dsm_loss
from lit_gen.diffusion.parametrization import Prediction, check_prediction
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["OISMLoss", "oism_loss", "oism_posterior_mean", "oism_target"]


def oism_posterior_mean(
    x0: Tensor, noise: Tensor, alpha_bar: Tensor, reference_size: int, reference: Tensor | None = None
) -> Tensor:
    """``x̂0_b = Σ_j w_bj x0_j`` over the reference set of sample ``b`` at ``x_t = sqrt(ᾱ) x0_b + sqrt(1 − ᾱ) ε_b``.

    The reference set of sample ``b`` is its own ``x0_b`` plus ``R − 1`` other points: the next ``R − 1``
    batch entries (cyclically) when ``reference`` is None, else the first ``R − 1`` rows of ``reference``.
    The logits are written relative to the own point, ``‖x_t − a x0_j‖² − ‖x_t − a x0_b‖² =
    2 a σ ε_b·Δ_bj + a² ‖Δ_bj‖²`` with ``Δ_bj = x0_b − x0_j``, so the own term is exactly 0 (no cancellation
    at small noise, where ``σ² = 1 − ᾱ`` is tiny).
    """
    if isinstance(reference_size, bool) or not isinstance(reference_size, int) or reference_size < 1:
        raise ValueError(f"reference_size must be an integer >= 1, got {reference_size!r}")
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    batch = x0.shape[0]
    if reference_size == 1:
        return x0
    flat, eps = x0.flatten(1), noise.flatten(1)
    work = torch.promote_types(flat.dtype, torch.float32)
    ab = alpha_bar.to(work).reshape(-1, 1)
    a, s = ab.sqrt(), (1.0 - ab).clamp(min=1e-20).sqrt()
    if reference is None:
        if reference_size > batch:
            raise ValueError(
                f"reference_size={reference_size} exceeds the batch size {batch}; with the batch as reference set "
                "use at most the batch size, or pass extra reference points"
            )
        others = flat
        k = torch.arange(batch, device=flat.device)
        offset = (k[None, :] - k[:, None]) % batch  # offset[b, j] = (j − b) mod B
        mask = offset < reference_size  # own point (offset 0) and the next R − 1
    else:
        others = reference.flatten(1)[: reference_size - 1].to(flat.dtype)
        if others.shape[0] < reference_size - 1 or others.shape[1] != flat.shape[1]:
            raise ValueError(
                f"reference must hold at least reference_size − 1 = {reference_size - 1} points of the data's "
                f"shape {tuple(x0.shape[1:])}, got shape {tuple(reference.shape)}"
            )
        mask = None
    f, e, o = flat.to(work), eps.to(work), others.to(work)
    sq = torch.cdist(f, o).square()  # ‖Δ_bj‖²
    cross = (e * f).sum(1, keepdim=True) - e @ o.T  # ε_b · Δ_bj
    logits = -(2.0 * a * s * cross + ab * sq) / (2.0 * s.square())
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
        logits = logits.masked_fill(torch.eye(batch, dtype=torch.bool, device=flat.device), 0.0)
        weights = torch.softmax(logits, dim=1)
        mean = weights @ f
    else:
        weights = torch.softmax(torch.cat([logits.new_zeros(batch, 1), logits], dim=1), dim=1)
        mean = weights[:, :1] * f + weights[:, 1:] @ o
    return mean.to(x0.dtype).reshape(x0.shape)


def oism_target(
    prediction: Prediction,
    x0: Tensor,
    noise: Tensor,
    alpha_bar: Tensor,
    reference_size: int,
    reference: Tensor | None = None,
) -> Tensor:
    """The OISM regression target for ``prediction`` (``eps``, ``x0`` or ``v``); see the module docstring.

    ``ε̂ = ε + sqrt(ᾱ) (x0 − x̂0) / sqrt(1 − ᾱ)`` is the same as ``(x_t − sqrt(ᾱ) x̂0)/sqrt(1 − ᾱ)``, written so
    that ``R = 1`` (``x̂0 = x0``) returns the DSM target bit for bit.
    """
    check_prediction(prediction)
    x0_hat = oism_posterior_mean(x0, noise, alpha_bar, reference_size, reference)
    if prediction == "x0":
        return x0_hat
    shape = (-1, *([1] * (x0.dim() - 1)))
    ab = alpha_bar.to(x0.dtype).reshape(shape)
    a, s = ab.sqrt(), (1.0 - ab).sqrt()
    eps_hat = noise + a * (x0 - x0_hat) / s
    if prediction == "eps":
        return eps_hat
    return a * eps_hat - s * x0_hat


def oism_loss(
    net: Callable[[Tensor, Tensor], Tensor],
    schedule: NoiseSchedule,
    x0: Tensor,
    prediction: Prediction = "eps",
    weighting: Weighting = "none",
    gamma: float = 5.0,
    reference_size: int = 64,
    reference: Tensor | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``L = mean_b w(t_b) · mean_dims (oism_target_b − net(x_t_b, t_b))²``: :func:`~lit_gen.diffusion.dsm_loss`
    with the target replaced by its posterior average over ``reference_size`` points (:func:`oism_target`)."""
    check_prediction(prediction)

    def target_fn(x: Tensor, eps: Tensor, alpha_bar: Tensor) -> Tensor:
        return oism_target(prediction, x, eps, alpha_bar, reference_size, reference)

    return dsm_loss(net, schedule, x0, prediction, weighting, gamma, t=t, noise=noise, generator=generator,
                    target_fn=target_fn)


class OISMLoss(DiffusionLoss):
    """:func:`oism_loss` as a :class:`~lit_gen.diffusion.losses.DiffusionLoss`: the posterior-averaged target
    over ``reference_size`` points of the batch (capped at the batch size; ``1`` is plain DSM)."""

    def __init__(self, reference_size: int = 64, weighting: Weighting = "none", gamma: float = 5.0) -> None:
        if isinstance(reference_size, bool) or not isinstance(reference_size, int) or reference_size < 1:
            raise ValueError(f"need reference_size >= 1, got {reference_size!r}")
        if weighting not in ("none", "min_snr"):
            raise ValueError(f"weighting must be 'none' or 'min_snr', got {weighting!r}")
        self.reference_size = reference_size
        self.weighting = weighting
        self.gamma = float(gamma)

    def __call__(
        self, net: Callable[[Tensor, Tensor], Tensor], schedule: NoiseSchedule, x0: Tensor, prediction: Prediction
    ) -> Tensor:
        return oism_loss(net, schedule, x0, prediction=prediction, weighting=self.weighting, gamma=self.gamma,
                         reference_size=min(self.reference_size, x0.shape[0]))

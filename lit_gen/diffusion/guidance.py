"""Classifier-free guidance as a denoiser, so that every sampler guides unchanged (Ho & Salimans 2022).

Ho, J., Salimans, T. (2022), "Classifier-free diffusion guidance": one network learns both the conditional
denoiser ``D(x_t, t, y) ≈ E[x_0 | x_t, y]`` and, through label dropout (:func:`drop_labels`, the null class ``K``),
the unconditional one ``D(x_t, t, ∅) ≈ E[x_0 | x_t]``. At sampling the two are combined with a guidance scale w::

    x̂_0 = D(x_t, t, ∅) + w (D(x_t, t, y) − D(x_t, t, ∅))

w = 0 is the unconditional model, w = 1 the conditional one, w > 1 guides. Ho & Salimans combine the ε
predictions, ``ε̃ = (1 + s) ε̂(x_t, y) − s ε̂(x_t)`` (their guidance strength ``s = w − 1``). For a fixed ``(x_t, t)``
the maps between x̂_0, ε̂ and v are affine, ``x̂_0 = (x_t − b ε̂)/a`` and ``x̂_0 = a x_t − b v`` with
``a = sqrt(ᾱ_t)``, ``b = sqrt(1 − ᾱ_t)``, and an affine map preserves combinations whose weights sum to one
(here ``1 − w`` and ``w``): ``(x_t − b[(1 − w) ε̂_∅ + w ε̂_y])/a = (1 − w) x̂_0,∅ + w x̂_0,y``. So guiding in x̂_0
space is the same as guiding in ε (or v) space, and as guiding the score, since by Tweedie
``∇ log p_t = (a x̂_0 − x_t)/b²`` is affine too: the guided score is ``∇ log p_t(x_t) + w ∇ log p_t(y | x_t)``.
Combining x̂_0 lets :class:`GuidedDenoiser` be a plain :class:`~lit_gen.diffusion.Denoiser`, which DDPM, DDIM,
Heun, Euler–Maruyama, DPM-Solver++ and the PF-ODE samplers call as they call any denoiser.

Guidance interval (Kynkäänniemi et al. 2024, "Applying guidance in a limited interval improves sample and
distribution quality in diffusion models"): apply w only where the EDM noise level ``σ(t) = sqrt((1 − ᾱ)/ᾱ)``
lies in ``[σ_lo, σ_hi]``; elsewhere use w = 1 (the conditional denoiser). See
``docs/algorithms.md#class-conditioning-and-guidance``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lit_gen.diffusion.denoiser import NetworkDenoiser
from lit_gen.diffusion.parametrization import Prediction, to_x0
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["ConditionalDenoiser", "ConditionalNetworkDenoiser", "GuidedDenoiser", "drop_labels"]


@runtime_checkable
class ConditionalDenoiser(Protocol):
    """``D(x_t, t, y) -> x̂_0``: ``E[x_0 | x_t, y]`` for labels ``y`` (B,); ``y=None`` (or the null class K) is
    the unconditional ``E[x_0 | x_t]``."""

    def __call__(self, x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor: ...


def _check_num_classes(num_classes: object, name: str = "num_classes") -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"{name} must be a positive int (the number of classes), got {num_classes!r}")
    return int(num_classes)


def _check_class_range(y: Tensor, num_classes: int, what: str) -> None:
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        raise ValueError(
            f"{what}: class label {int(y[bad][0])} is out of range for num_classes={num_classes}; "
            f"labels must lie in [0, {num_classes})"
        )


def drop_labels(y: Tensor, p: float, num_classes: int, generator: torch.Generator | None = None) -> Tensor:
    """Label dropout for classifier-free guidance: each label becomes the null class ``K = num_classes`` with
    probability ``p`` (Ho & Salimans 2022 train with p = 0.1–0.2), so one network learns ``D(x_t, t, y)`` and
    ``D(x_t, t, ∅)``.

    Args:
        y: labels in ``[0, K)``, an integer tensor of shape (B,).
        p: drop probability in [0, 1]. ``p = 0`` returns ``y`` itself and draws no random numbers.
        num_classes: K.
        generator: random source (it may live on another device than ``y``).

    Returns:
        A long tensor (B,) on ``y``'s device, with values in ``[0, K]``.
    """
    num_classes = _check_num_classes(num_classes)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"the label drop probability p must be a number in [0, 1], got {p!r}")
    if not isinstance(y, Tensor) or y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"labels y must be an integer tensor of shape (B,), got {y!r}")
    _check_class_range(y, num_classes, "drop_labels")
    if float(p) == 0.0:
        return y
    device = y.device if generator is None else generator.device
    u = torch.rand(y.shape[0], generator=generator, device=device).to(y.device)
    return torch.where(u < float(p), torch.full_like(y, num_classes), y).long()


class ConditionalNetworkDenoiser(NetworkDenoiser):
    """:class:`~lit_gen.diffusion.NetworkDenoiser` for a class-conditional network ``net(x_t, t, y=None)``:
    ``D(x_t, t, y)`` reads ``net(x_t, t, y=y)`` as x̂_0 through the schedule (``eps``/``x0``/``v``).

    With ``y=None`` it calls ``net(x_t, t)``, exactly what :class:`NetworkDenoiser` does, so it also wraps an
    unconditional network (or a user's network without ``y``) for unconditional use. ``num_classes`` is read
    from the network's ``num_classes`` attribute when it has one (0 when it is unconditional, None when unknown).
    """

    def __init__(
        self,
        net: Callable[..., Tensor],
        schedule: NoiseSchedule,
        prediction: Prediction = "eps",
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(net, schedule, prediction, clip)
        k = getattr(net, "num_classes", None)
        self.num_classes: int | None = int(k) if isinstance(k, numbers.Integral) else None

    def forward(self, x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            return super().forward(x_t, t)
        pred = self.net(x_t, t, y=y)
        if pred.shape != x_t.shape:
            raise ValueError(f"the network returned shape {tuple(pred.shape)}, expected {tuple(x_t.shape)}")
        x0 = to_x0(pred, x_t, self.schedule.alpha_bar(t), self.prediction)
        if self.clip is not None:
            x0 = x0.clamp(*self.clip)
        return x0


class GuidedDenoiser(nn.Module):
    """Classifier-free guidance as a :class:`~lit_gen.diffusion.Denoiser` ``(x_t, t) -> x̂_0``::

        x̂_0 = D(x_t, t, ∅) + w (D(x_t, t, y) − D(x_t, t, ∅))

    Evaluations are skipped where they carry no weight: w = 0 calls only ``D(x_t, t, None)`` and w = 1 only
    ``D(x_t, t, y)``, so at w = 0 the result is bit for bit the unconditional denoiser's (and a sampler's output
    the unguided sampler's with the same generator). Otherwise, when the null class is known (``num_classes``),
    both evaluations are one call on a batch of 2B (labels ``[y, K]``); else two calls.

    Args:
        denoiser: a :class:`ConditionalDenoiser` ``D(x_t, t, y)``, e.g. :class:`ConditionalNetworkDenoiser`, or an
            exact conditional posterior mean. Use :meth:`from_network` for a network.
        y: the labels to sample, in ``[0, K)``: a tensor (B,) matching the sampler's batch, or an int for all.
        guidance_scale: w >= 0 (0 unconditional, 1 conditional, > 1 guided).
        num_classes: K, the null class of the batched call; None makes two calls instead (and skips the range check).
        schedule: needed for ``interval`` (to read σ(t)).
        interval: ``(σ_lo, σ_hi)`` in EDM noise levels (``schedule.edm_sigma``): w applies where
            ``σ_lo <= σ(t) <= σ_hi`` and w = 1 elsewhere (Kynkäänniemi et al. 2024). None: everywhere.
        clip: optional ``(low, high)`` box for the guided x̂_0 (applied after the combination, as clipping the x̂_0
            implied by the guided ε would be).
        batched: evaluate both branches in one call of size 2B (needs ``num_classes``).
    """

    def __init__(
        self,
        denoiser: ConditionalDenoiser | Callable[..., Tensor],
        y: Tensor | int,
        guidance_scale: float = 1.0,
        *,
        num_classes: int | None = None,
        schedule: NoiseSchedule | None = None,
        interval: tuple[float, float] | None = None,
        clip: tuple[float, float] | None = None,
        batched: bool = True,
    ) -> None:
        super().__init__()
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as D(x_t, t, y), got {type(denoiser).__name__}")
        w = guidance_scale
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ValueError(
                f"guidance_scale must be a finite number >= 0 (0: unconditional, 1: conditional), got {w!r}"
            )
        self.guidance_scale = float(w)
        self.num_classes = None if num_classes is None else _check_num_classes(num_classes)
        labels = torch.as_tensor(y)
        if isinstance(y, bool) or labels.is_floating_point() or labels.dtype == torch.bool or labels.dim() > 1:
            raise ValueError(f"y must be an int or an integer tensor of shape (B,), got {y!r}")
        labels = labels.long()
        if self.num_classes is not None:
            _check_class_range(labels, self.num_classes, "GuidedDenoiser")
        self.y = labels
        if interval is not None:
            if schedule is None:
                raise ValueError("a guidance interval is given in noise levels σ(t), so it needs the schedule")
            lo, hi = (float(v) for v in interval)
            if not (0.0 <= lo < hi) or math.isnan(hi):
                raise ValueError(
                    f"interval must be (σ_lo, σ_hi) with 0 <= σ_lo < σ_hi (EDM noise levels), got {interval!r}"
                )
            interval = (lo, hi)
        if clip is not None and not (len(clip) == 2 and float(clip[0]) < float(clip[1])):
            raise ValueError(f"clip must be a (low, high) pair with low < high, got {clip!r}")
        self.denoiser = denoiser
        self.schedule = schedule
        self.interval = interval
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))
        self.batched = bool(batched)

    @classmethod
    def from_network(
        cls,
        net: Callable[..., Tensor],
        schedule: NoiseSchedule,
        y: Tensor | int,
        guidance_scale: float = 1.0,
        *,
        prediction: Prediction = "eps",
        clip: tuple[float, float] | None = None,
        interval: tuple[float, float] | None = None,
        batched: bool = True,
    ) -> GuidedDenoiser:
        """Guidance for a network ``net(x_t, t, y=None)`` predicting ``prediction``, wrapped as
        :class:`~lit_gen.diffusion.NetworkDenoiser` wraps an unconditional one; ``num_classes`` from the network."""
        inner = ConditionalNetworkDenoiser(net, schedule, prediction)
        if inner.num_classes == 0 and guidance_scale != 0:
            raise ValueError(
                f"{type(net).__name__} was built without num_classes, so it cannot be conditioned on y "
                f"(guidance_scale={guidance_scale}); set num_classes in the network config, or sample with "
                "guidance_scale=0 (unconditional)"
            )
        return cls(inner, y, guidance_scale, num_classes=inner.num_classes or None, schedule=schedule,
                   interval=interval, clip=clip, batched=batched)

    def _labels(self, x_t: Tensor) -> Tensor:
        y = self.y.to(x_t.device)
        batch = x_t.shape[0]
        if y.dim() == 0:
            return y.expand(batch)
        if y.shape != (batch,):
            raise ValueError(
                f"GuidedDenoiser holds {y.shape[0]} labels but the sampler's batch has {batch} samples; "
                "give one label per sample or a single int"
            )
        return y

    def _scale(self, t: Tensor, x_t: Tensor) -> float | Tensor:
        """w, or a per-sample (B, 1, ...) tensor where the interval holds for some samples only."""
        if self.interval is None or self.guidance_scale == 1.0:
            return self.guidance_scale
        assert self.schedule is not None
        sigma = self.schedule.edm_sigma(torch.as_tensor(t, device=x_t.device))
        inside = (sigma >= self.interval[0]) & (sigma <= self.interval[1])
        if bool(inside.all()):
            return self.guidance_scale
        if not bool(inside.any()):
            return 1.0
        w = torch.where(inside, self.guidance_scale, 1.0).to(x_t.dtype)
        return w.reshape(-1, *([1] * (x_t.dim() - 1)))

    def _both(self, x_t: Tensor, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(D(x_t, t, y), D(x_t, t, ∅))``, in one call of size 2B when the null class is known."""
        batch = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device)
        if self.batched and self.num_classes is not None:
            t2 = torch.cat([t, t]) if t.dim() == 1 and t.shape[0] == batch else t
            y2 = torch.cat([y, torch.full_like(y, self.num_classes)])
            out = self.denoiser(torch.cat([x_t, x_t]), t2, y2)
            return out[:batch], out[batch:]
        return self.denoiser(x_t, t, y), self.denoiser(x_t, t, None)

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        w = self._scale(t, x_t)
        if isinstance(w, float) and w == 0.0:
            x0 = self.denoiser(x_t, t, None)
        elif isinstance(w, float) and w == 1.0:
            x0 = self.denoiser(x_t, t, self._labels(x_t))
        else:
            cond, uncond = self._both(x_t, t, self._labels(x_t))
            x0 = uncond + w * (cond - uncond)
        if self.clip is not None:
            x0 = x0.clamp(*self.clip)
        return x0

    def extra_repr(self) -> str:
        return f"guidance_scale={self.guidance_scale}, interval={self.interval}, num_classes={self.num_classes}"

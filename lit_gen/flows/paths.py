"""Conditional probability paths of flow matching: how a pair ``(x0, x1)`` is bridged over ``t ∈ [0, 1]``.

Convention: ``x0`` is a source point (noise, or a point of another data set) at ``t = 0`` and ``x1`` a data point
at ``t = 1``. Every path here is affine in the pair and a Gaussian perturbation::

    x_t = a_t x0 + b_t x1 + s_t ε,   ε ~ N(0, I)
    u_t = ȧ_t x0 + ḃ_t x1 + ṡ_t ε = ȧ_t x0 + ḃ_t x1 + (ṡ_t / s_t)(x_t − a_t x0 − b_t x1)

and ``u_t`` is the conditional velocity the network regresses on (the conditional flow matching target of
Lipman et al., 2023, "Flow Matching for Generative Modeling", Thm. 3; Tong et al., 2024, "Improving and
generalizing flow-based generative models with minibatch optimal transport"). The paths:

- :class:`LinearPath` — ``a = 1 − (1 − σ_min) t``, ``b = t``, ``s = σ``: rectified flow (Liu et al., 2023,
  "Flow straight and fast", ``σ_min = σ = 0``), Lipman et al.'s OT path (``σ_min > 0``) and Tong et al.'s I-CFM /
  OT-CFM (constant noise ``σ``);
- :class:`VPCosinePath` — ``a = cos(πt/2)`` on the source, ``b = sin(πt/2)`` on the data, ``s = 0``: a
  variance-preserving path, ``a² + b² = 1``;
- :class:`BrownianBridgePath` — ``a = 1 − t``, ``b = t``, ``s = σ sqrt(t(1 − t))``: the Schrödinger-bridge CFM of
  Tong et al. (with the entropic coupling of regularisation ``2σ²``), whose target is
  ``u = (1 − 2t)/(2t(1 − t)) (x_t − μ_t) + x1 − x0``.

Equations in ``docs/algorithms.md#flow-matching``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_gen.utils.config import RecordsInit

__all__ = ["PATHS", "AffinePath", "BrownianBridgePath", "LinearPath", "ProbabilityPath", "VPCosinePath", "build_path"]

Coefficients = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def _per_sample(coef: Tensor, like: Tensor) -> Tensor:
    return coef.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def _check_pair(x0: Tensor, x1: Tensor, t: Tensor) -> None:
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if x0.dim() < 2:
        raise ValueError(f"x0 and x1 must be batches of shape (B, *data_shape), got {tuple(x0.shape)}")
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must have shape (B,) = ({x0.shape[0]},), got {tuple(t.shape)}")


class ProbabilityPath(RecordsInit):
    """Interface: ``sample_xt(x0, x1, t, generator) -> x_t`` and ``target_velocity(x0, x1, t, x_t) -> u_t``."""

    def sample_xt(self, x0: Tensor, x1: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def target_velocity(self, x0: Tensor, x1: Tensor, t: Tensor, x_t: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor]:
        """``(x_t, u_t)`` for one draw of the path's noise."""
        x_t = self.sample_xt(x0, x1, t, generator)
        return x_t, self.target_velocity(x0, x1, t, x_t)


class AffinePath(ProbabilityPath):
    """``x_t = a_t x0 + b_t x1 + s_t ε``; subclasses give :meth:`coefficients` ``(a, b, s, ȧ, ḃ, ṡ/s)`` per time."""

    def coefficients(self, t: Tensor) -> Coefficients:
        raise NotImplementedError

    def mean(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """``μ_t = a_t x0 + b_t x1``."""
        a, b, *_ = self.coefficients(t)
        return _per_sample(a, x0) * x0 + _per_sample(b, x1) * x1

    def sample_xt(self, x0: Tensor, x1: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_pair(x0, x1, t)
        a, b, s, *_ = self.coefficients(t)
        x_t = _per_sample(a, x0) * x0 + _per_sample(b, x1) * x1
        if bool((s != 0).any()):
            gen_device = generator.device if generator is not None else x0.device
            eps = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=x0.dtype).to(x0.device)
            x_t = x_t + _per_sample(s, x0) * eps
        return x_t

    def target_velocity(self, x0: Tensor, x1: Tensor, t: Tensor, x_t: Tensor) -> Tensor:
        _check_pair(x0, x1, t)
        a, b, _, da, db, ds_over_s = self.coefficients(t)
        u = _per_sample(da, x0) * x0 + _per_sample(db, x1) * x1
        if bool((ds_over_s != 0).any()):
            mu = _per_sample(a, x0) * x0 + _per_sample(b, x1) * x1
            u = u + _per_sample(ds_over_s, x_t) * (x_t - mu)
        return u


def _check_sigma(name: str, value: float, upper: float | None = None) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (upper is not None and value >= upper):
        bound = f" and below {upper}" if upper is not None else ""
        raise ValueError(f"{name} must be a finite number >= 0{bound}, got {value}")
    return value


class LinearPath(AffinePath):
    """``x_t = (1 − (1 − σ_min) t) x0 + t x1 + σ ε``, ``u_t = x1 − (1 − σ_min) x0``.

    Args:
        sigma_min: width of Lipman et al.'s OT path at ``t = 1`` (0: the straight line of rectified flow).
        sigma: constant Gaussian noise around the line (Tong et al.'s I-CFM / OT-CFM; 0: none).
    """

    def __init__(self, sigma_min: float = 0.0, sigma: float = 0.0) -> None:
        self.sigma_min = _check_sigma("sigma_min", sigma_min, upper=1.0)
        self.sigma = _check_sigma("sigma", sigma)

    def coefficients(self, t: Tensor) -> Coefficients:
        k = 1.0 - self.sigma_min
        one, zero = torch.ones_like(t), torch.zeros_like(t)
        return 1.0 - k * t, t, self.sigma * one, -k * one, one, zero

    def __repr__(self) -> str:
        return f"LinearPath(sigma_min={self.sigma_min}, sigma={self.sigma})"


class VPCosinePath(AffinePath):
    """``x_t = cos(πt/2) x0 + sin(πt/2) x1``, ``u_t = (π/2)(cos(πt/2) x1 − sin(πt/2) x0)``."""

    def coefficients(self, t: Tensor) -> Coefficients:
        half_pi = 0.5 * math.pi
        c, s = torch.cos(half_pi * t), torch.sin(half_pi * t)
        zero = torch.zeros_like(t)
        return c, s, zero, -half_pi * s, half_pi * c, zero

    def __repr__(self) -> str:
        return "VPCosinePath()"


class BrownianBridgePath(AffinePath):
    """``x_t = (1 − t) x0 + t x1 + σ sqrt(t(1 − t)) ε``, ``u_t = (1 − 2t)/(2t(1 − t)) (x_t − μ_t) + x1 − x0``.

    Args:
        sigma: the bridge's noise scale σ (Tong et al. pair it with Sinkhorn at ``reg = 2σ²``).
        t_clamp: ``t(1 − t)`` in the target's denominator is floored at ``t_clamp`` (the ratio diverges at the
            ends, where the path is pinned).
    """

    def __init__(self, sigma: float = 0.1, t_clamp: float = 1e-5) -> None:
        self.sigma = _check_sigma("sigma", sigma)
        if self.sigma == 0:
            raise ValueError("a Brownian bridge needs sigma > 0; use LinearPath for the noiseless straight path")
        self.t_clamp = _check_sigma("t_clamp", t_clamp, upper=0.25)

    def coefficients(self, t: Tensor) -> Coefficients:
        var = t * (1.0 - t)
        one = torch.ones_like(t)
        ratio = (1.0 - 2.0 * t) / (2.0 * var.clamp(min=self.t_clamp))
        return 1.0 - t, t, self.sigma * var.clamp(min=0.0).sqrt(), -one, one, ratio

    def __repr__(self) -> str:
        return f"BrownianBridgePath(sigma={self.sigma})"


#: shorthand names of :func:`build_path`
PATHS: tuple[str, ...] = ("linear", "vp_cosine", "brownian_bridge")


def build_path(spec: ProbabilityPath | str, sigma: float = 0.0, sigma_min: float = 0.0) -> ProbabilityPath:
    """``spec`` itself if it is a path, else the named one: ``linear`` (``LinearPath(sigma_min, sigma)``),
    ``vp_cosine`` or ``brownian_bridge`` (``BrownianBridgePath(sigma)``)."""
    if isinstance(spec, ProbabilityPath):
        return spec
    if spec == "linear":
        return LinearPath(sigma_min=sigma_min, sigma=sigma)
    if spec == "vp_cosine":
        if sigma or sigma_min:
            raise ValueError("the vp_cosine path has no sigma/sigma_min; set them to 0 or choose path='linear'")
        return VPCosinePath()
    if spec == "brownian_bridge":
        if sigma_min:
            raise ValueError("the brownian_bridge path has no sigma_min; set it to 0 (its noise is sigma)")
        return BrownianBridgePath(sigma=sigma)
    raise ValueError(
        f"unknown probability path {spec!r}; choose one of {list(PATHS)} or give a lit_gen.flows.ProbabilityPath "
        "(class_path in YAML)"
    )

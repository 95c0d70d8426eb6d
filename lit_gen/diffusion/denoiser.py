"""Denoisers: callables ``D(x_t, t) ≈ E[x_0 | x_t]``, the one interface every sampler talks to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lit_gen.diffusion.parametrization import Prediction, check_prediction, to_x0
from lit_gen.diffusion.schedules import NoiseSchedule, _broadcast_to_data

__all__ = ["Denoiser", "NetworkDenoiser", "GaussianDenoiser"]


@runtime_checkable
class Denoiser(Protocol):
    """``D(x_t, t) -> x̂_0``: an estimate of the posterior mean ``E[x_0 | x_t]`` at diffusion times ``t``."""

    def __call__(self, x_t: Tensor, t: Tensor) -> Tensor: ...


class NetworkDenoiser(nn.Module):
    """Reads a network's ``eps``/``x0``/``v`` prediction as an x̂_0 estimate through the schedule.

    Args:
        net: ``net(x_t, t) -> tensor shaped like x_t``.
        schedule: the schedule the network was trained with.
        prediction: what ``net`` predicts.
        clip: optional ``(low, high)`` box to clamp x̂_0 into (e.g. ``(-1, 1)`` for images; Ho et al., 2020).
    """

    def __init__(
        self,
        net: Callable[[Tensor, Tensor], Tensor],
        schedule: NoiseSchedule,
        prediction: Prediction = "eps",
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        check_prediction(prediction)
        if clip is not None and not (len(clip) == 2 and float(clip[0]) < float(clip[1])):
            raise ValueError(f"clip must be a (low, high) pair with low < high, got {clip!r}")
        self.net = net
        self.schedule = schedule
        self.prediction = prediction
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        pred = self.net(x_t, t)
        if pred.shape != x_t.shape:
            raise ValueError(f"the network returned shape {tuple(pred.shape)}, expected {tuple(x_t.shape)}")
        x0 = to_x0(pred, x_t, self.schedule.alpha_bar(t), self.prediction)
        if self.clip is not None:
            x0 = x0.clamp(*self.clip)
        return x0


class GaussianDenoiser(nn.Module):
    """Exact posterior mean for data ``x_0 ~ N(μ, Σ)`` under a variance-preserving schedule.

    With ``x_t = sqrt(ᾱ) x_0 + sqrt(1 − ᾱ) ε`` the pair is jointly Gaussian, so by Gaussian conditioning::

        E[x_0 | x_t] = μ + sqrt(ᾱ) Σ (ᾱ Σ + (1 − ᾱ) I)^{-1} (x_t − sqrt(ᾱ) μ)

    evaluated through the eigendecomposition ``Σ = U Λ Uᵀ``, where the matrix is diagonal:
    ``sqrt(ᾱ) λ_i / (ᾱ λ_i + 1 − ᾱ)``. Data of any shape are flattened to ``d = prod(data_shape)`` dimensions.
    Used as the oracle denoiser in tests and tutorials: any sampler fed with it should reproduce N(μ, Σ).
    """

    mean: Tensor
    eigvecs: Tensor
    eigvals: Tensor

    def __init__(self, mean: Tensor, cov: Tensor, schedule: NoiseSchedule) -> None:
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float64).flatten()
        cov = torch.as_tensor(cov, dtype=torch.float64)
        d = mean.numel()
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}) to match the mean, got {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.T, atol=1e-10):
            raise ValueError("cov must be symmetric")
        eigvals, eigvecs = torch.linalg.eigh(cov)
        if bool((eigvals < -1e-10 * eigvals.abs().max().clamp(min=1.0)).any()):
            raise ValueError(f"cov must be positive semi-definite; smallest eigenvalue {eigvals.min():.3g}")
        self.schedule = schedule
        self.register_buffer("mean", mean)
        self.register_buffer("eigvecs", eigvecs)
        self.register_buffer("eigvals", eigvals.clamp(min=0.0))

    @property
    def cov(self) -> Tensor:
        """The data covariance Σ = U Λ Uᵀ."""
        return (self.eigvecs * self.eigvals) @ self.eigvecs.T

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        flat = x_t.reshape(x_t.shape[0], -1)
        if flat.shape[1] != self.mean.numel():
            raise ValueError(
                f"x_t has {flat.shape[1]} dimensions per sample but the Gaussian has {self.mean.numel()}"
            )
        la = self.schedule.log_alpha_bar(t).to(torch.float64)
        alpha_bar = _broadcast_to_data(la.exp(), flat)
        one_minus = _broadcast_to_data(-torch.expm1(la), flat)
        a = alpha_bar.sqrt()
        residual = (flat.to(torch.float64) - a * self.mean) @ self.eigvecs
        gain = a * self.eigvals / (alpha_bar * self.eigvals + one_minus)
        x0 = self.mean + (gain * residual) @ self.eigvecs.T
        return x0.to(x_t.dtype).reshape(x_t.shape)

"""Denoisers: callables ``D(x_t, t) ≈ E[x_0 | x_t]``, the one interface every sampler talks to."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lit_gen.diffusion.parametrization import Prediction, check_prediction, to_x0
from lit_gen.diffusion.schedules import NoiseSchedule, _broadcast_to_data

__all__ = ["Denoiser", "NetworkDenoiser", "GaussianDenoiser"]

# ε-prediction amplifies network errors by sqrt((1 − ᾱ)/ᾱ) when read as x̂0; above this at t = T−1 we warn.
_EPS_AMPLIFICATION_WARN = 1e3


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

    Warns when ``prediction="eps"`` meets a schedule with a (near) zero terminal SNR (cosine, sigmoid): there
    ``x̂_0 = (x_t − sqrt(1 − ᾱ) ε̂)/sqrt(ᾱ)`` multiplies the network's error by ``edm_sigma(T−1)`` (2e4 for
    cosine), and samplers that start at ``t = T−1`` (DDIM, DDPM) can diverge — measured on 8gaussians after 1500
    training steps: DDIM-50 SW1 396 with ε, 0.10 with v. Lin et al. (2024) prescribe v-prediction there.
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
        if prediction == "eps" and clip is None:
            last = torch.tensor([schedule.num_timesteps - 1.0], dtype=torch.float64)
            amplification = schedule.edm_sigma(last.to(schedule.log_alpha_bars.device)).item()
            if amplification > _EPS_AMPLIFICATION_WARN:
                warnings.warn(
                    f"prediction='eps' with {type(schedule).__name__}, whose ᾱ at t=T-1 is "
                    f"{1.0 / (1.0 + amplification**2):.2g}: reading ε̂ as x̂0 there multiplies the network's error by "
                    f"{amplification:.3g}, so DDIM/DDPM (which start at t=T-1) can diverge. Train with "
                    "prediction='v' (Lin et al. 2024), or sample with heun (sigma_max <= 80) or euler_maruyama.",
                    UserWarning,
                    stacklevel=2,
                )

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

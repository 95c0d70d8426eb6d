"""Known target distributions and statistical helpers for the MCMC tests.

Tolerances: chains are independent, so once they have mixed the effective sample size of any statistic over the
final states is the number of chains n; an estimate is accepted within K standard errors, SE = sd / sqrt(n).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

K = 4.0  # standard errors allowed; two-sided P(|z| > 4) ≈ 6e-5 per check


def quad_2d(d: Tensor, p: Tensor) -> Tensor:
    """``dᵀ P d`` per row of ``d`` (n, 2), written out elementwise: a (n, 2) @ (2, 2) BLAS call is slower than
    the arithmetic and, with several BLAS threads on a busy machine, far slower."""
    d0, d1 = d[:, 0], d[:, 1]
    return p[0, 0] * d0 * d0 + 2 * p[0, 1] * d0 * d1 + p[1, 1] * d1 * d1


class GaussianEnergy:
    """``E(x) = ½ (x − μ)ᵀ A (x − μ)``: target ``N(μ, A⁻¹)``. A plain callable object, not an nn.Module."""

    def __init__(self, mean: Tensor, precision: Tensor) -> None:
        self.mean, self.precision = mean, precision

    def __call__(self, x: Tensor) -> Tensor:
        return 0.5 * quad_2d(x - self.mean, self.precision)

    @property
    def cov(self) -> Tensor:
        return torch.linalg.inv(self.precision)


def gaussian_2d() -> GaussianEnergy:
    """Full-covariance 2D Gaussian, precision eigenvalues ≈ 0.6 and 2.9."""
    cov = torch.tensor([[1.2, -0.5], [-0.5, 0.5]], dtype=torch.float64)
    return GaussianEnergy(torch.tensor([0.7, -0.4], dtype=torch.float64), torch.linalg.inv(cov))


class MixtureEnergy:
    """Two-component 2D Gaussian mixture with full covariances, ``E = −log Σ_k w_k N(x; μ_k, Σ_k)``."""

    def __init__(self) -> None:
        f64 = torch.float64
        self.w = torch.tensor([0.35, 0.65], dtype=f64)
        self.mu = torch.tensor([[-1.1, 0.4], [1.2, -0.4]], dtype=f64)
        self.cov = torch.tensor([[[0.5, 0.2], [0.2, 0.4]], [[0.4, -0.1], [-0.1, 0.6]]], dtype=f64)
        self.prec = torch.linalg.inv(self.cov)
        self.log_norm = torch.log(self.w) - 0.5 * torch.logdet(self.cov) - math.log(2 * math.pi)

    def __call__(self, x: Tensor) -> Tensor:
        # logaddexp of the two components: elementwise, no reduction kernels (cheap on a busy CPU).
        a, b = (self.log_norm[k] - 0.5 * quad_2d(x - self.mu[k], self.prec[k]) for k in range(2))
        return -torch.logaddexp(a, b)

    def mean(self) -> Tensor:
        return (self.w[:, None] * self.mu).sum(0)

    def covariance(self) -> Tensor:
        m = self.mean()
        second = (self.w[:, None, None] * (self.cov + self.mu[:, :, None] * self.mu[:, None, :])).sum(0)
        return second - torch.outer(m, m)

    def split(self) -> tuple[Tensor, Tensor]:
        """Direction v and offset c of the half-plane ``vᵀx > c`` between the modes."""
        v = self.mu[1] - self.mu[0]
        return v, v @ (self.mu[0] + self.mu[1]) / 2

    def prob_upper(self) -> float:
        """Exact ``P(vᵀx > c)`` under the mixture (each component's projection is a 1D normal)."""
        v, c = self.split()
        p = 0.0
        for w, m, s in zip(self.w, self.mu, self.cov, strict=True):
            p += float(w * 0.5 * torch.erfc((c - v @ m) / torch.sqrt(2 * v @ s @ v)))
        return p


def ula_stationary_cov(precision: Tensor, step: float, sigma: float) -> Tensor:
    """Stationary covariance of ``x ← x − η A x + σ ξ``: solves ``Σ = MΣMᵀ + σ²I``, ``M = I − ηA`` (A symmetric,
    so M commutes with Σ): ``Σ = σ² [I − M²]⁻¹``."""
    eye = torch.eye(precision.shape[0], dtype=precision.dtype)
    m = eye - step * precision
    return sigma**2 * torch.linalg.inv(eye - m @ m)


def mean_z(x: Tensor, mean: Tensor, cov: Tensor) -> Tensor:
    """z-scores of the sample mean of ``x`` (n, d) against the true mean, SE = sqrt(diag(cov) / n)."""
    return (x.mean(0) - mean) / torch.sqrt(torch.diagonal(cov) / x.shape[0])


def cov_z(x: Tensor, cov: Tensor) -> Tensor:
    """z-scores of the sample covariance entries, SE from the spread of the products (x_i − x̄_i)(x_j − x̄_j)."""
    xc = x - x.mean(0)
    prod = xc[:, :, None] * xc[:, None, :]
    return (prod.mean(0) - cov) / (prod.std(0) / math.sqrt(x.shape[0]))


def uniform_box(n: int, low: float, high: float, generator: torch.Generator, dim: int = 2) -> Tensor:
    return low + (high - low) * torch.rand(n, dim, generator=generator, dtype=torch.float64)

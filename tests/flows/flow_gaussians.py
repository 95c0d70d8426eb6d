"""Closed forms for flow matching between Gaussians: source N(0, I), target N(μ, Σ), independent coupling.

For an affine path ``x_t = a x0 + b x1 + s ε`` with target ``u = ȧ x0 + ḃ x1 + ṡ ε``, ``(x_t, u)`` is jointly
Gaussian, and in the eigenbasis ``Σ = U diag(λ) Uᵀ`` every direction decouples::

    Var x_t = a² + b² λ + s²,   Cov(u, x_t) = a ȧ + b ḃ λ + s ṡ,   Var u = ȧ² + ḃ² λ + ṡ²
    u*(x, t) = E[u | x_t = x] = ḃ μ + U diag(Cov / Var x_t) Uᵀ (x − b μ)
    E Var[u | x_t] = Σ_k (Var u − Cov² / Var x_t)

For the straight path (a = 1 − t, b = t, s = 0) the conditional variance is λ_k / ((1 − t)² + t² λ_k), whose
integral over t ∈ [0, 1] is (π/2) sqrt(λ_k); the flow of u* maps x0 to μ + Σ^{1/2} x0 at t = 1 (the OT map).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_gen.flows import AffinePath

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)


def eig(cov: Tensor = COV) -> tuple[Tensor, Tensor]:
    lam, vecs = torch.linalg.eigh(cov)
    return lam, vecs


def sqrtm(cov: Tensor = COV) -> Tensor:
    lam, vecs = eig(cov)
    return (vecs * lam.sqrt()) @ vecs.T


def moments(path: AffinePath, t: Tensor, lam: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per sample and eigen-direction (B, d): ``Var x_t``, ``Cov(u, x_t)``, ``Var u``; and ``b``, ``ḃ`` (B, 1)."""
    a, b, s, da, db, ds_over_s = (c.double()[:, None] for c in path.coefficients(t.double()))
    ds = ds_over_s * s
    var_x = a * a + b * b * lam + s * s
    cov = a * da + b * db * lam + s * ds
    var_u = da * da + db * db * lam + ds * ds
    return var_x, cov, var_u, b, db


def marginal_velocity(path: AffinePath, mu: Tensor = MU, cov: Tensor = COV):  # noqa: ANN201
    """``u*(x, t)`` (batched, t of shape (B,)) for source N(0, I) and target N(mu, cov)."""
    lam, vecs = eig(cov)

    def field(x: Tensor, t: Tensor) -> Tensor:
        var_x, c, _, b, db = moments(path, t.reshape(-1).expand(x.shape[0]), lam)
        residual = (x.double() - b * mu) @ vecs
        return (db * mu + (residual * c / var_x) @ vecs.T).to(x.dtype)

    return field


def linear_path_minimum(cov: Tensor = COV) -> float:
    """``E_t E Var[u | x_t] / d`` of the straight path: ``(π/2) Σ_k sqrt(λ_k) / d``."""
    lam, _ = eig(cov)
    return float(0.5 * math.pi * lam.sqrt().sum() / len(lam))


def affine_path_minimum(path: AffinePath, cov: Tensor = COV, nodes: int = 64) -> float:
    """``∫_0^1 Σ_k (Var u − Cov²/Var x_t) dt / d`` by Gauss–Legendre quadrature."""
    lam, _ = eig(cov)
    import numpy as np

    xs, ws = np.polynomial.legendre.leggauss(nodes)
    total = 0.0
    t = torch.tensor(0.5 * (xs + 1.0), dtype=torch.float64)
    var_x, c, var_u, _, _ = moments(path, t, lam)
    total = (torch.tensor(0.5 * ws, dtype=torch.float64)[:, None] * (var_u - c * c / var_x)).sum()
    return float(total) / len(lam)

"""The change-of-variables log-likelihood of a flow against densities known in closed form.

- The exact marginal field of the straight path from N(0, I) to N(μ, Σ) carries the source to the target, so
  ``flow_log_prob`` must return ``log N(x; μ, Σ)`` (exact divergence, RK4 and dopri5).
- A constant linear field ``v = B x`` in 24 dimensions maps ``x(0) = e^{−B} x(1)`` with ``log p_1(x) =
  log N(e^{−B} x) − tr B``: Hutchinson's estimate (used above 16 dimensions) is unbiased, the exact one exact.
"""

from __future__ import annotations

import math

import pytest
import torch
from flow_gaussians import COV, MU, marginal_velocity

from lit_gen.flows import LinearPath, divergence_fn, flow_log_prob, standard_normal_log_prob


def _gaussian_log_prob(x: torch.Tensor) -> torch.Tensor:
    return torch.distributions.MultivariateNormal(MU, COV).log_prob(x.double())


@pytest.mark.parametrize("method, steps", [("rk4", 16), ("dopri5", None)])
def test_flow_log_prob_of_the_exact_field_is_the_target_density(method: str, steps: int | None) -> None:
    x = MU + torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) @ \
        torch.linalg.cholesky(COV).T
    out = flow_log_prob(marginal_velocity(LinearPath()), x, method=method, num_steps=steps or 1, rtol=1e-8,
                        atol=1e-8)
    assert torch.allclose(out.log_prob, _gaussian_log_prob(x), atol=1e-5)
    assert out.latent.shape == x.shape and out.nfe > 0


def test_hutchinson_is_unbiased_and_exact_divergence_exact_in_24_dims() -> None:
    d = 24
    g = torch.Generator().manual_seed(1)
    b = 0.1 * torch.randn(d, d, generator=g, dtype=torch.float64)
    x = torch.randn(4000, d, generator=g, dtype=torch.float64)
    exact = standard_normal_log_prob(x @ torch.linalg.matrix_exp(-b).T) - torch.trace(b)

    def field(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return y @ b.T

    out = flow_log_prob(field, x, num_steps=8, divergence="exact")
    assert torch.allclose(out.log_prob, exact, atol=1e-4)
    hutch = flow_log_prob(field, x, num_steps=8, generator=torch.Generator().manual_seed(2))  # auto: Hutchinson
    err = hutch.log_prob - exact
    assert float(err.std()) > 1e-3  # really a random estimate
    assert abs(float(err.mean())) < 4 * float(err.std()) / math.sqrt(len(err))


def test_divergence_fn_and_errors() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(3, 3)
    out = x @ w.T
    assert torch.allclose(divergence_fn("exact", 3)(out, x), torch.full((5,), float(torch.trace(w))), atol=1e-5)
    with pytest.raises(ValueError, match="divergence must be"):
        divergence_fn("trace", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN or infinite"):
        flow_log_prob(lambda y, t: y, torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="batch of shape"):
        flow_log_prob(lambda y, t: y, torch.zeros(3))

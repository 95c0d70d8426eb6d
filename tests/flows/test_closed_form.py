"""Flow matching between Gaussians, where everything is known in closed form (see ``flow_gaussians.py``).

- the CFM loss evaluated at the exact marginal field equals its analytic minimum E_t E Var[u | x_t] / d (within
  four Monte-Carlo standard errors, estimated from the per-sample losses), and moving the field off u* raises it by
  exactly the squared shift;
- for OT-CFM (the population OT pairs x1 = μ + Σ^{1/2} x0) the minimum is 0, and minibatch exact OT brings the
  loss at the OT field far below the independent coupling's;
- every ODE solver driven by the exact field maps x0 to μ + Σ^{1/2} x0 (its flow map at t = 1), with errors that
  shrink at the solver's order, and reproduces the target's mean and covariance.
"""

from __future__ import annotations

import math

import pytest
import torch
from flow_gaussians import (
    COV,
    MU,
    affine_path_minimum,
    linear_path_minimum,
    marginal_velocity,
    sqrtm,
)

from lit_gen.diffusion.ode import METHODS, odeint
from lit_gen.flows import (
    ExactOTCoupling,
    IndependentCoupling,
    LinearPath,
    VPCosinePath,
    cfm_loss,
)

N = 100_000


def _draws(n: int = N, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x1 = MU + torch.randn(n, 2, generator=g, dtype=torch.float64) @ sqrtm().T
    t = torch.rand(n, generator=g, dtype=torch.float64)
    return x0, x1, t, g


def _per_sample_loss(path, field, x0, x1, t, g):  # noqa: ANN001, ANN202
    x_t, u = path.sample(x0, x1, t, g)
    return (field(x_t, t) - u).square().mean(1), x_t, u


@pytest.mark.parametrize(
    "path, minimum",
    [
        (LinearPath(), linear_path_minimum()),  # (π/2) Σ sqrt(λ_k) / d, in closed form
        (LinearPath(sigma_min=0.1), None),      # Lipman et al.'s OT path, by quadrature
        (LinearPath(sigma=0.2), None),          # I-CFM's constant noise
        (VPCosinePath(), None),
    ],
    ids=["linear", "sigma_min", "icfm_noise", "vp_cosine"],
)
def test_cfm_loss_at_the_exact_field_is_its_analytic_minimum(path, minimum) -> None:  # noqa: ANN001
    minimum = affine_path_minimum(path) if minimum is None else minimum
    assert minimum == pytest.approx(affine_path_minimum(path), rel=1e-9)
    field = marginal_velocity(path)
    x0, x1, t, g = _draws()
    losses, x_t, u = _per_sample_loss(path, field, x0, x1, t, g)
    se = float(losses.std()) / math.sqrt(N)
    assert abs(float(losses.mean()) - minimum) < 4 * se, (float(losses.mean()), minimum, se)
    # the library's loss is the same average (same t and noise stream)
    g2 = torch.Generator().manual_seed(123)
    g3 = torch.Generator().manual_seed(123)
    assert float(cfm_loss(field, path, x0[:1000], x1[:1000], t[:1000], g2)) == pytest.approx(
        float(_per_sample_loss(path, field, x0[:1000], x1[:1000], t[:1000], g3)[0].mean()), rel=1e-12)
    # any other field pays its squared distance from u*: E L(u* + δ) = L(u*) + ‖δ‖²/d (on the same draws)
    delta = torch.tensor([0.3, -0.2], dtype=torch.float64)
    gap = (field(x_t, t) + delta - u).square().mean(1) - losses
    assert float(gap.mean()) == pytest.approx(float(delta.square().mean()), abs=4 * float(gap.std()) / math.sqrt(N))


def test_ot_cfm_minimum_is_zero_and_minibatch_ot_approaches_it() -> None:
    root = sqrtm()
    path = LinearPath()
    # population OT: x1 = T(x0) = μ + Σ^{1/2} x0, straight paths; u*(x, t) = μ + (A − I)((1−t)I + tA)^{-1}(x − tμ)

    def ot_field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(2, dtype=torch.float64)
        out = torch.empty_like(x)
        for i in range(len(x)):
            m = (root - eye) @ torch.linalg.inv((1 - t[i]) * eye + t[i] * root)
            out[i] = MU + m @ (x[i] - t[i] * MU)
        return out

    x0, _, t, g = _draws(512, seed=3)
    assert float(cfm_loss(ot_field, path, x0, MU + x0 @ root.T, t, g)) < 1e-20
    # minibatch couplings of the same draws: exact OT pairs are close to T(x0), independent pairs are not
    x1 = MU + torch.randn(512, 2, generator=g, dtype=torch.float64) @ root.T
    loss_ot = float(cfm_loss(ot_field, path, *ExactOTCoupling()(x0, x1), t, g))
    loss_ind = float(cfm_loss(ot_field, path, *IndependentCoupling()(x0, x1), t, g))
    assert loss_ot < 0.1 * loss_ind
    assert loss_ind > 0.5 * linear_path_minimum()


@pytest.mark.parametrize("method", METHODS)
def test_solvers_driven_by_the_exact_field_reproduce_the_target(method: str) -> None:
    field = marginal_velocity(LinearPath())
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(20_000, 2, generator=g, dtype=torch.float64)
    exact = MU + x0 @ sqrtm().T  # the flow map of u* at t = 1

    def f(t: float, x: torch.Tensor) -> torch.Tensor:
        return field(x, torch.full((x.shape[0],), t, dtype=torch.float64))

    if method == "dopri5":
        sol = odeint(f, x0, 0.0, 1.0, "dopri5", rtol=1e-7, atol=1e-7)
        err = float((sol.x - exact).square().mean().sqrt())
        assert float((sol.x - exact).abs().max()) < 1e-5 and sol.nfe == 6 * (sol.steps + sol.rejected) + 2
    else:
        order = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}[method]
        # RMS error over the draws, at 10 and 20 steps
        errs = [float((odeint(f, x0, 0.0, 1.0, method, num_steps=n).x - exact).square().mean().sqrt())
                for n in (10, 20)]
        assert errs[1] < {"euler": 0.1, "midpoint": 1e-3, "heun": 2e-3, "rk4": 1e-6}[method]
        assert errs[0] / errs[1] > 0.75 * 2.0**order  # halving the step divides the error by (at least) 2^order
        sol = odeint(f, x0, 0.0, 1.0, method, num_steps=20)
        err = errs[1]
    # moments: Monte-Carlo error of 20000 draws (4 standard errors) plus the solver's pointwise error
    x, n = sol.x, x0.shape[0]
    assert (x.mean(0) - MU).abs().max() < 4 * math.sqrt(float(COV.diagonal().max()) / n) + err
    var_se = math.sqrt(2.0 / n) * float(COV.diagonal().max())
    assert (torch.cov(x.T) - COV).abs().max() < 4 * var_se + 3 * err

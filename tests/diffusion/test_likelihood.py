"""Probability-flow likelihood: exact on Gaussian data with the analytic denoiser, Hutchinson unbiased,
bits/dim bookkeeping, and the DiffusionModule's log_prob / test-report NLL."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from lit_gen.diffusion import CosineSchedule, GaussianDenoiser, LinearSchedule
from lit_gen.diffusion.likelihood import bits_per_dim, dequantize, pf_ode_log_prob
from lit_gen.models import DiffusionModule

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
A = torch.tensor([[1.0, 0.3], [0.0, 0.4]], dtype=torch.float64)
COV = A @ A.T


def _gaussian_case(n: int = 200) -> tuple[Tensor, torch.distributions.MultivariateNormal]:
    g = torch.Generator().manual_seed(0)
    x = MU + torch.randn(n, 2, generator=g, dtype=torch.float64) @ A.T
    return x, torch.distributions.MultivariateNormal(MU, COV)


def _smoothed(sigma: float) -> torch.distributions.MultivariateNormal:
    """The model's density at its smallest noise level: N(μ, Σ + σ_min² I)."""
    return torch.distributions.MultivariateNormal(MU, COV + sigma**2 * torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("schedule", [CosineSchedule(), LinearSchedule()], ids=["cosine", "linear"])
def test_pf_ode_nll_equals_exact_gaussian_nll(schedule: torch.nn.Module) -> None:
    x, _ = _gaussian_case()
    lo, hi = schedule.edm_sigma(torch.tensor([0.0, schedule.num_timesteps - 1.0])).tolist()
    out = pf_ode_log_prob(GaussianDenoiser(MU, COV, schedule), schedule, x, 64, sigma_max=hi)
    exact = _smoothed(lo).log_prob(x)
    # Two error sources: the prior N(0, (1+σ²)I) used in place of the true N(μ, Σ+σ²I) at σ_max, pointwise
    # ≈ μ·y_T/σ² with y_T ≈ σ z, so below 4‖μ‖/σ_max for |z| < 4 (0.028 at σ = 157, 2e-4 at 2e4); and RK4's
    # O(h⁴) error (measured 3e-3 at 64 steps, 0.04 at 16 steps), allowed 6e-3.
    assert out.nfe == 256
    tol = 4 * MU.norm().item() / hi + 6e-3
    torch.testing.assert_close(out.log_prob, exact, atol=tol, rtol=0)
    # 4th order: 8 steps are visibly worse, so the comparison above is not vacuous
    coarse = pf_ode_log_prob(GaussianDenoiser(MU, COV, schedule), schedule, x, 8, sigma_max=hi)
    assert (coarse.log_prob - exact).abs().max() > 0.05


def test_hutchinson_is_unbiased_and_exact_is_default_in_low_dimension() -> None:
    schedule = CosineSchedule()
    x, _ = _gaussian_case(400)
    den = GaussianDenoiser(MU, COV, schedule)
    exact = pf_ode_log_prob(den, schedule, x, 16)
    torch.testing.assert_close(pf_ode_log_prob(den, schedule, x, 16, divergence="exact").log_prob, exact.log_prob)
    hutch = pf_ode_log_prob(den, schedule, x, 16, divergence="hutchinson", generator=torch.Generator().manual_seed(1))
    err = hutch.log_prob - exact.log_prob
    # unbiased: the mean error is within 4 standard errors of 0; and the estimator is really random (std > 0)
    assert err.std() > 0.05
    assert err.mean().abs() < 4 * err.std() / math.sqrt(len(err))


def test_dequantize_and_bits_per_dim_of_a_uniform_model_are_8_bits() -> None:
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, 256, (64, 3, 4, 4), generator=g).float()
    x = k / 255 * 2 - 1
    x_deq = dequantize(x, generator=g)
    # each value stays in its own bin [k, k+1)/256 of [-1, 1)
    torch.testing.assert_close(torch.floor((x_deq + 1) / 2 * 256), k)
    dim = x[0].numel()
    # the uniform density on [-1, 1]^D, log p = -D log 2, puts 1/256 on every level: 8 bits per dimension
    bpd = bits_per_dim(torch.full((64,), -dim * math.log(2.0)), dim)
    torch.testing.assert_close(bpd, torch.full((64,), 8.0))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        dequantize(x * 3)


def test_bad_inputs_are_named() -> None:
    schedule = CosineSchedule()
    den = GaussianDenoiser(MU, COV, schedule)
    with pytest.raises(ValueError, match="NaN"):
        pf_ode_log_prob(den, schedule, torch.full((2, 2), math.nan), 4)
    with pytest.raises(ValueError, match="num_steps"):
        pf_ode_log_prob(den, schedule, torch.zeros(2, 2), 0)
    with pytest.raises(ValueError, match="divergence"):
        pf_ode_log_prob(den, schedule, torch.zeros(2, 2), 2, divergence="trace")  # type: ignore[arg-type]


class _AnalyticX0(nn.Module):
    """A 'network' predicting x0 exactly for Gaussian data (the oracle denoiser behind a network interface)."""

    def __init__(self, schedule: torch.nn.Module) -> None:
        super().__init__()
        self.den = GaussianDenoiser(MU, COV, schedule)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.den(x, t) + 0 * self.dummy


def test_module_log_prob_and_test_report_nll() -> None:
    schedule = CosineSchedule()
    module = DiffusionModule(
        _AnalyticX0(schedule), schedule=schedule, prediction="x0", ema_decay=None, test_nll_samples=150,
        test_nll_steps=32, eval_metrics=False,
    ).double()
    x, _ = _gaussian_case(200)
    lo = schedule.edm_sigma(torch.tensor([0.0])).item()
    exact = _smoothed(lo).log_prob(x)
    # default σ_max = 80: the prior mismatch (see above) stays below 4‖μ‖/80 = 0.056 nats (measured 0.037)
    torch.testing.assert_close(module.log_prob(x), exact, atol=0.06, rtol=0)
    # the test hook keeps the first test_nll_samples points across batches and reports their mean NLL
    for batch in x.split(64):
        module.test_step(batch, 0)
    report = module.evaluation_report()
    assert report["nll_nfe"] == 128
    assert abs(report["nll"] + exact[:150].mean().item()) < 0.05
    assert module.evaluation_report() == {}  # the points are consumed

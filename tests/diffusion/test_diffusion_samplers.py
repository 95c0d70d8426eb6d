"""Every sampler against an exact oracle: the posterior mean of a 2D Gaussian with full covariance.

Fed with the exact ``GaussianDenoiser``, a sampler's only error is its discretisation (plus the negligible
mismatch between N(0, I) and the true x_T). Each Monte-Carlo test therefore allows
``4 standard errors + the sampler's discretisation bias``, with the bias stated per case:

- deterministic samplers (Heun, DDIM η=0) map x_T affinely, so their exact output moments follow from three
  runs (x_T = 0, e1, e2) in float64 — see ``exact_moments``; the stated biases are those values;
- stochastic samplers: biases measured once with 200 000 float64 samples (seed 0), margin 0.01 for that
  measurement's own noise (3 standard errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from lit_gen.diffusion import (
    SAMPLERS,
    GaussianDenoiser,
    LinearSchedule,
    SampleOutput,
    ddim_sample,
    ddpm_sample,
    euler_maruyama_sample,
    get_sampler,
    get_schedule,
    heun_sample,
    karras_sigmas,
)
from lit_gen.diffusion.samplers import timesteps

MU = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
N = 6000


def standard_errors(n: int) -> tuple[Tensor, Tensor]:
    """Standard errors of a sample mean and a sample covariance entry of n Gaussian draws:
    Var(m_i) = Σ_ii/n,  Var(C_ij) ≈ (Σ_ii Σ_jj + Σ_ij²)/n."""
    se_mean = (COV.diagonal() / n).sqrt()
    se_cov = ((COV.diagonal()[:, None] * COV.diagonal()[None, :] + COV**2) / n).sqrt()
    return se_mean, se_cov


def _sym(b: tuple[float, float, float]) -> Tensor:
    """(C11, C12, C22) biases as a symmetric 2×2 tensor."""
    return torch.tensor([[b[0], b[1]], [b[1], b[2]]], dtype=torch.float64)


@dataclass
class Case:
    sampler: str
    schedule: str
    kwargs: dict[str, Any]
    nfe: int
    bias_mean: tuple[float, float]
    bias_cov: tuple[float, float, float]
    margin: float  # 0.005 for exact (affine) biases, 0.01 for Monte-Carlo-measured ones
    n: int = N  # more samples where a wrong variance would otherwise hide inside 4 standard errors

    @property
    def id(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.sampler}-{self.schedule}-{opts}"


CASES = [
    # Heun, 18 steps from σ_max = 80: second order, bias ≈ +7.5% of C11 (mostly along the small eigen-direction,
    # λ = 0.1); the mean bias (≈ 0.01) is the N(0, I) start ignoring the data's share μ/sqrt(1 + 80²) of x_T.
    Case("heun", "linear", {"num_steps": 18}, 35, (0.0016, 0.0100), (0.0749, 0.0426, 0.0394), 0.005),
    Case("heun", "vp", {"num_steps": 18}, 35, (0.0016, 0.0100), (0.0745, 0.0424, 0.0392), 0.005),
    Case("heun", "cosine", {"num_steps": 18}, 35, (0.0016, 0.0101), (0.0788, 0.0448, 0.0415), 0.005),
    Case("heun", "sigmoid", {"num_steps": 18}, 35, (0.0016, 0.0100), (0.0698, 0.0398, 0.0366), 0.005),
    # DDIM, 50 steps: first order, bias ≈ −7% of the variance (linear), −5% (cosine).
    Case("ddim", "linear", {"num_steps": 50}, 50, (0.0006, 0.0045), (0.0696, 0.0356, 0.0399), 0.005),
    Case("ddim", "cosine", {"num_steps": 50}, 50, (0.0001, 0.0001), (0.0499, 0.0275, 0.0270), 0.005),
    Case("ddim", "vp", {"num_steps": 50}, 50, (0.0006, 0.0047), (0.0696, 0.0355, 0.0400), 0.005),
    Case("ddim", "linear", {"num_steps": 50, "eta": 1.0}, 50, (0.0044, 0.0036), (0.1346, 0.0714, 0.0760), 0.01, 40000),
    Case("ddim", "cosine", {"num_steps": 50, "eta": 1.0}, 50, (0.0029, 0.0029), (0.0806, 0.0428, 0.0463), 0.01),
    # DDPM: the posterior variance β̃ ignores Cov(x0 | x_t), so strided DDPM under-disperses; all 1000 steps
    # nearly remove that; the β variance over-disperses instead and nearly cancels it at 100 steps.
    Case("ddpm", "linear", {}, 1000, (0.0012, 0.0006), (0.0065, 0.0028, 0.0040), 0.01),
    # 40 000 samples: the two variance choices differ by 0.07 in C11, more than 4 SE at 6000 samples.
    Case("ddpm", "linear", {"num_steps": 100}, 100, (0.0018, 0.0003), (0.0744, 0.0383, 0.0426), 0.01, 40000),
    Case(
        "ddpm", "linear", {"num_steps": 100, "variance": "beta"}, 100, (0.002, 0.0002), (0.0054, 0.0069, 0.0007),
        0.01, 40000,
    ),
    # Euler–Maruyama, 100 steps (first order, stochastic).
    Case("euler_maruyama", "linear", {"num_steps": 100}, 100, (0.0033, 0.0079), (0.0137, 0.0044, 0.0111), 0.01),
    Case("euler_maruyama", "cosine", {"num_steps": 100}, 100, (0.0006, 0.0079), (0.0221, 0.0070, 0.0176), 0.01),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sampler_reproduces_gaussian(case: Case) -> None:
    sched = get_schedule(case.schedule)
    denoiser = GaussianDenoiser(MU, COV, sched)
    out = get_sampler(case.sampler)(
        denoiser, sched, (case.n, 2), generator=torch.Generator().manual_seed(1234), **case.kwargs
    )
    assert isinstance(out, SampleOutput)
    assert out.nfe == case.nfe
    assert out.x.shape == (case.n, 2) and out.x.dtype == torch.float32
    se_mean, se_cov = standard_errors(case.n)
    x = out.x.double()
    mean_err = (x.mean(0) - MU).abs()
    cov_err = (torch.cov(x.T) - COV).abs()
    mean_tol = 4 * se_mean + torch.tensor(case.bias_mean, dtype=torch.float64).abs() + case.margin
    cov_tol = 4 * se_cov + _sym(case.bias_cov).abs() + case.margin
    assert (mean_err <= mean_tol).all(), f"mean error {mean_err.tolist()} > {mean_tol.tolist()}"
    assert (cov_err <= cov_tol).all(), f"covariance error {cov_err.tolist()} > {cov_tol.tolist()}"


# ----------------------------------------------------------------------------- exact moments, convergence order
def exact_moments(sampler: Callable[..., SampleOutput], schedule_name: str, **kwargs: Any) -> tuple[Tensor, Tensor]:
    """Output mean and covariance of a deterministic sampler fed the exact denoiser: it maps x_T ~ N(0, I)
    affinely, x = c + M x_T, so three float64 runs give ``(c, M Mᵀ)`` exactly."""
    sched = get_schedule(schedule_name)
    x_T = torch.cat([torch.zeros(1, 2), torch.eye(2)]).double()
    out = sampler(GaussianDenoiser(MU, COV, sched), sched, (3, 2), x_T=x_T, dtype=torch.float64, **kwargs).x
    c, m = out[0], (out[1:] - out[0]).T
    return c, m @ m.T


def _moment_error(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> float:
    return max((a[0] - b[0]).abs().max().item(), (a[1] - b[1]).abs().max().item())


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
def test_heun_is_second_order(schedule_name: str) -> None:
    ref = exact_moments(heun_sample, schedule_name, num_steps=300)
    # The converged sampler reproduces N(μ, Σ) up to the N(0, I) start at σ_max = 80 (mean error 0.0096).
    assert _moment_error(ref, (MU, COV)) < 0.011
    e1, e2 = (_moment_error(exact_moments(heun_sample, schedule_name, num_steps=n), ref) for n in (36, 72))
    assert 3.5 < e1 / e2 < 5.5, (e1, e2)  # halving the step divides the error by ≈ 4


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
def test_ddim_is_first_order(schedule_name: str) -> None:
    ref = exact_moments(ddim_sample, schedule_name, num_steps=1000)
    assert _moment_error(ref, (MU, COV)) < 6e-3
    e1, e2 = (_moment_error(exact_moments(ddim_sample, schedule_name, num_steps=n), ref) for n in (50, 100))
    assert 1.7 < e1 / e2 < 2.4, (e1, e2)


def test_heun_default_sigma_max_is_capped_at_80() -> None:
    # With the cosine schedule's own σ_max ≈ 2e4 the Karras grid (ρ = 7) spends most of 18 steps at σ ≫ 1.
    sched = get_schedule("cosine")
    full = sched.edm_sigma(torch.tensor([999.0], dtype=torch.float64)).item()
    assert full > 1e4
    _, cov_full = exact_moments(heun_sample, "cosine", num_steps=18, sigma_max=full)
    assert 0.6 < (cov_full - COV).abs().max().item() < 0.8
    c, cov = exact_moments(heun_sample, "cosine", num_steps=18)
    c80, cov80 = exact_moments(heun_sample, "cosine", num_steps=18, sigma_max=80.0)
    assert torch.equal(c, c80) and torch.equal(cov, cov80)
    assert (cov - COV).abs().max().item() < 0.09
    # A schedule whose whole range lies below 80 keeps its own σ_max.
    short = LinearSchedule(num_timesteps=100)
    den = CountingDenoiser(short)
    heun_sample(den, short, (2, 2), 3)
    assert den.ts[0][0].item() == pytest.approx(99.0, abs=1e-3)


# ----------------------------------------------------------------------------- equivalences and bookkeeping
def test_ddim_eta_one_equals_ddpm_posterior_variance() -> None:
    # η = 1 gives σ² = β̃ and sqrt(1 − ᾱ_s − β̃) ε̂ + sqrt(ᾱ_s) x̂0 = the DDPM posterior mean, step for step;
    # both draw x_T and then one normal per non-final step, so equal seeds give equal samples.
    sched = LinearSchedule()
    den = GaussianDenoiser(MU, COV, sched)
    a = ddim_sample(den, sched, (500, 2), 40, eta=1.0, generator=torch.Generator().manual_seed(0)).x
    b = ddpm_sample(den, sched, (500, 2), 40, generator=torch.Generator().manual_seed(0)).x
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_ddpm_variance_choices_bracket_the_truth() -> None:
    # Ho et al. (2020): β̃ and β are the lower and upper bounds of the reverse-step variance. With 100 strided
    # steps the β̃ sampler under-disperses by ≈ 0.074 in C11 and the β sampler lands within ≈ 0.005 of Σ
    # (measured with 200 000 samples); 4 SE of the C11 difference at 40 000 samples ≈ 0.025.
    sched = LinearSchedule()
    den = GaussianDenoiser(MU, COV, sched)
    c11 = {}
    for variance in ("posterior", "beta"):
        x = ddpm_sample(den, sched, (40000, 2), 100, variance=variance, generator=torch.Generator().manual_seed(5)).x
        c11[variance] = x.double().var(0)[0].item()
    assert c11["posterior"] < COV[0, 0].item() - 0.04
    assert abs(c11["beta"] - COV[0, 0].item()) < 0.03


class CountingDenoiser:
    """Records every call's time vector around the exact Gaussian denoiser."""

    def __init__(self, schedule: Any) -> None:
        self.inner = GaussianDenoiser(MU, COV, schedule)
        self.ts: list[Tensor] = []

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        assert t.shape == (x.shape[0],) and t.is_floating_point()
        assert not torch.is_grad_enabled()
        self.ts.append(t.clone())
        return self.inner(x, t)


@pytest.mark.parametrize(
    ("name", "kwargs", "nfe", "last_t"),
    [
        ("ddpm", {}, 1000, 0.0),
        ("ddpm", {"num_steps": 7}, 7, 142.0),  # trailing: 999, 856, ..., 142, then to the clean data
        ("ddim", {}, 50, 19.0),
        ("ddim", {"num_steps": 1}, 1, 999.0),
        ("heun", {}, 35, 0.0),  # σ_min = edm_sigma(0)
        ("heun", {"num_steps": 1}, 1, None),  # one Euler step from σ_max straight to σ = 0
        ("heun", {"num_steps": 5}, 9, 0.0),
        ("euler_maruyama", {}, 100, 0.0),
        ("euler_maruyama", {"num_steps": 1}, 1, 999.0),
    ],
)
def test_reported_nfe_counts_denoiser_calls(
    name: str, kwargs: dict[str, Any], nfe: int, last_t: float | None
) -> None:
    sched = LinearSchedule()
    den = CountingDenoiser(sched)
    out = SAMPLERS[name](den, sched, (4, 2), generator=torch.Generator().manual_seed(0), **kwargs)
    assert out.nfe == nfe == len(den.ts)
    first = den.ts[0]
    # Every sampler starts at T−1, except Heun, which starts at σ_max = 80 (t ≈ 978 on the linear schedule).
    first_t = sched.t_from_edm_sigma(torch.tensor([80.0])).item() if name == "heun" else 999.0
    assert torch.all(first == first[0]) and first[0].item() == pytest.approx(first_t, abs=1e-3)
    assert all(0.0 <= float(t.min()) and float(t.max()) <= 999.0 for t in den.ts)
    assert den.ts[-1][0].item() == pytest.approx(first_t if last_t is None else last_t, abs=1e-3)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_samples(name: str) -> None:
    sched = LinearSchedule(num_timesteps=100)
    den = GaussianDenoiser(MU, COV, sched)
    kw = {"num_steps": 10}
    a = SAMPLERS[name](den, sched, (64, 2), generator=torch.Generator().manual_seed(7), **kw).x
    b = SAMPLERS[name](den, sched, (64, 2), generator=torch.Generator().manual_seed(7), **kw).x
    c = SAMPLERS[name](den, sched, (64, 2), generator=torch.Generator().manual_seed(8), **kw).x
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", ["heun", "ddim"])
def test_deterministic_samplers_follow_x_T(name: str) -> None:
    sched = LinearSchedule(num_timesteps=100)
    den = GaussianDenoiser(MU, COV, sched)
    x_T = torch.randn(16, 2)
    a = SAMPLERS[name](den, sched, (16, 2), 10, x_T=x_T, generator=torch.Generator().manual_seed(1)).x
    b = SAMPLERS[name](den, sched, (16, 2), 10, x_T=x_T, generator=torch.Generator().manual_seed(2)).x
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_image_shaped_samples_and_no_autograd_graph(name: str) -> None:
    sched = LinearSchedule(num_timesteps=100)
    weight = torch.ones((), requires_grad=True)  # a "network parameter": output must not track it
    inner = GaussianDenoiser(torch.zeros(4), torch.eye(4) * 0.5, sched)

    def den(x: Tensor, t: Tensor) -> Tensor:
        return weight * inner(x, t)

    out = SAMPLERS[name](den, sched, (8, 1, 2, 2), 5, generator=torch.Generator().manual_seed(0))
    assert out.x.shape == (8, 1, 2, 2)
    assert not out.x.requires_grad and torch.isfinite(out.x).all()


# ----------------------------------------------------------------------------- grids
def test_timestep_spacings() -> None:
    trailing = timesteps(1000, 50, "trailing")
    assert trailing[0] == 999 and trailing[1] == 979 and trailing[-1] == 19 and len(trailing) == 50
    leading = timesteps(1000, 50, "leading")
    assert leading[0] == 980 and leading[-1] == 0  # starts short of T-1: the flaw Lin et al. (2024) describe
    lin = timesteps(1000, 4, "linspace")
    assert lin == [999, 666, 333, 0]
    assert timesteps(10, 10, "trailing") == list(range(9, -1, -1))
    assert timesteps(1000, 1, "trailing") == [999] == timesteps(1000, 1, "linspace")
    for spacing in ("trailing", "leading", "linspace"):
        for n in (1, 3, 7, 333, 999, 1000):
            ts = timesteps(1000, n, spacing)
            assert len(ts) == n and len(set(ts)) == n and ts == sorted(ts, reverse=True)


def test_karras_sigmas() -> None:
    s = karras_sigmas(18, 0.002, 80.0, rho=7.0)
    assert len(s) == 19 and s[-1] == 0.0
    assert s[0] == pytest.approx(80.0) and s[-2] == pytest.approx(0.002)
    assert all(a > b for a, b in zip(s, s[1:], strict=False))
    mid = (80.0 ** (1 / 7) + 0.5 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    assert karras_sigmas(3, 0.002, 80.0)[1] == pytest.approx(mid)
    assert karras_sigmas(1, 0.002, 80.0) == [80.0, 0.0]


def test_heun_evaluates_at_the_grid_noise_levels() -> None:
    sched = LinearSchedule()
    den = CountingDenoiser(sched)
    heun_sample(den, sched, (2, 2), 4, sigma_max=80.0, sigma_min=0.05)
    sig = sched.edm_sigma(torch.cat([t[:1] for t in den.ts]).double())
    grid = karras_sigmas(4, 0.05, 80.0)
    expected = [grid[0], grid[1], grid[1], grid[2], grid[2], grid[3], grid[3]]
    torch.testing.assert_close(sig, torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=0)


# ----------------------------------------------------------------------------- errors
def test_bad_arguments_raise() -> None:
    sched = LinearSchedule(num_timesteps=100)
    den = GaussianDenoiser(MU, COV, sched)
    shape = (4, 2)
    with pytest.raises(ValueError, match="num_steps"):
        ddim_sample(den, sched, shape, 0)
    with pytest.raises(ValueError, match="num_steps"):
        ddim_sample(den, sched, shape, 101)
    with pytest.raises(ValueError, match="num_steps"):
        ddpm_sample(den, sched, shape, 101)
    with pytest.raises(ValueError, match="num_steps"):
        heun_sample(den, sched, shape, -3)
    with pytest.raises(ValueError, match="num_steps"):
        euler_maruyama_sample(den, sched, shape, 0)
    with pytest.raises(TypeError, match="num_steps"):
        ddim_sample(den, sched, shape, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(den, sched, shape, 10, eta=1.5)
    with pytest.raises(ValueError, match="spacing"):
        ddim_sample(den, sched, shape, 10, spacing="uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="variance"):
        ddpm_sample(den, sched, shape, 10, variance="learned")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise range"):
        heun_sample(den, sched, shape, 10, sigma_max=1e9)
    with pytest.raises(ValueError, match="sigma_min"):
        heun_sample(den, sched, shape, 10, sigma_min=5.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="x_T"):
        ddim_sample(den, sched, shape, 10, x_T=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="shape"):
        ddim_sample(den, sched, (4,), 10)
    with pytest.raises(ValueError, match="schedule.to"):
        ddim_sample(den, sched, shape, 10, device="meta")
    with pytest.raises(ValueError, match="ddim.*ddpm.*euler_maruyama.*heun"):
        get_sampler("dpm_solver")

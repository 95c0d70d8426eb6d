"""Langevin (ULA): exact stationary law on a Gaussian, tempered form, clamps, compiled update."""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K, cov_z, gaussian_2d, mean_z, ula_stationary_cov, uniform_box

from lit_gen.mcmc import Langevin


def test_ula_matches_its_biased_stationary_covariance_not_the_target() -> None:
    # ULA on E = ½(x−μ)ᵀA(x−μ) has stationary law N(μ, 2η[I − (I − ηA)²]⁻¹): exact mean, inflated covariance.
    target = gaussian_2d()
    eta, n = 0.2, 4000  # ηλ_max ≈ 0.83: covariance inflated by up to 1 / (1 − ηλ/2) ≈ 1.7
    g = torch.Generator().manual_seed(0)
    result = Langevin(step_size=eta).run(target, uniform_box(n, -3, 3, g), 150, generator=g)
    x = result.x
    sigma_eta = ula_stationary_cov(target.precision, eta, math.sqrt(2 * eta))

    assert mean_z(x, target.mean, sigma_eta).abs().max() < K
    assert cov_z(x, sigma_eta).abs().max() < K
    # The step bias is real and resolved by this test: the same samples reject the exact target covariance.
    assert cov_z(x, target.cov).abs().max() > 2 * K
    assert result.stats["acceptance_rate"] == 1.0
    assert result.stats["steps"] == 150.0


def test_ula_bias_shrinks_with_step_size() -> None:
    target = gaussian_2d()
    g = torch.Generator().manual_seed(1)
    x = Langevin(step_size=0.005).run(target, uniform_box(4000, -3, 3, g), 1500, generator=g).x
    assert cov_z(x, target.cov).abs().max() < K


def test_tempered_form_samples_at_temperature_sigma2_over_2eta() -> None:
    target = gaussian_2d()
    eta, sigma = 0.05, 0.2  # temperature σ²/(2η) = 0.4
    sampler = Langevin(step_size=eta, noise_scale=sigma)
    assert sampler.temperature == pytest.approx(0.4)
    g = torch.Generator().manual_seed(2)
    x = sampler.run(target, uniform_box(4000, -3, 3, g), 400, generator=g).x
    expected = ula_stationary_cov(target.precision, eta, sigma)  # ≈ 0.4 · A⁻¹ up to the step bias
    assert cov_z(x, expected).abs().max() < K
    assert cov_z(x, target.cov).abs().max() > 2 * K


def test_noise_scale_zero_is_gradient_descent_to_the_mode() -> None:
    target = gaussian_2d()
    x = Langevin(step_size=0.1, noise_scale=0.0).run(target, torch.zeros(8, 2, dtype=torch.float64), 500).x
    torch.testing.assert_close(x, target.mean.expand(8, 2), atol=1e-6, rtol=0)


def test_grad_clamp_limits_each_move() -> None:
    def steep(x: torch.Tensor) -> torch.Tensor:  # ∇E = 1000·x: an unclamped step would explode
        return 500.0 * (x**2).sum(1)

    x0 = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    result = Langevin(step_size=0.1, noise_scale=0.0, grad_clamp=0.5).run(steep, x0, 1)
    # Clamped gradient ±0.5 (0 stays 0): every coordinate moves by exactly η·0.5 towards the mode.
    expected = x0 - 0.1 * torch.tensor([[0.5, -0.5], [0.5, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(result.x, expected)
    # The reported gradient norm is the raw one (mean of 1000·‖x0‖ per chain), not the clamped one.
    assert result.stats["grad_norm"] == pytest.approx(1000 * (5**0.5 + 0.5) / 2)


def test_sample_clamp_keeps_states_in_the_box() -> None:
    def tilt(x: torch.Tensor) -> torch.Tensor:  # pushes chains towards +∞
        return -3.0 * x.sum(1)

    g = torch.Generator().manual_seed(3)
    x = Langevin(step_size=0.1, sample_clamp=(-1.0, 1.0)).run(tilt, torch.zeros(500, 2), 50, generator=g).x
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert (x == 1.0).float().mean() > 0.5  # most chains pinned at the upper edge, so the clamp was active


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_size": 0.0},
        {"step_size": -1.0},
        {"step_size": float("nan")},
        {"noise_scale": -0.1},
        {"grad_clamp": 0.0},
        {"sample_clamp": (1.0, -1.0)},
        {"sample_clamp": (1.0,)},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Langevin(**kwargs)


def test_non_finite_gradient_names_the_step() -> None:
    calls = {"n": 0}

    def breaks_at_call_4(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        e = (x**2).sum(1)
        return e * float("nan") if calls["n"] == 4 else e

    with pytest.raises(FloatingPointError, match=r"step 3 \(0-based\) of 10"):
        Langevin(0.01).run(breaks_at_call_4, torch.zeros(4, 2), 10)


def test_inf_gradient_is_reported_even_with_grad_clamp() -> None:
    # A clamp must not hide an infinite gradient (it would turn ±inf into ±grad_clamp).
    def energy(x: torch.Tensor) -> torch.Tensor:
        return (x * torch.tensor([float("inf"), 1.0])).sum(1)

    with pytest.raises(FloatingPointError, match="step 0"):
        Langevin(0.01, grad_clamp=1.0).run(energy, torch.ones(4, 2), 3)


@pytest.mark.slow
def test_compiled_update_matches_eager() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.SiLU(), torch.nn.Linear(32, 1))

    def energy(x: torch.Tensor) -> torch.Tensor:
        return net(x).squeeze(-1)

    kwargs = {"step_size": 0.01, "grad_clamp": 0.3, "sample_clamp": (-2.0, 2.0)}
    x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(4))
    eager = Langevin(**kwargs).run(energy, x0, 20, generator=torch.Generator().manual_seed(5))
    compiled = Langevin(**kwargs, compile=True).run(energy, x0, 20, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(compiled.x, eager.x, atol=1e-4, rtol=1e-4)
    assert compiled.stats["grad_norm"] == pytest.approx(eager.stats["grad_norm"], rel=1e-4)
    assert all(p.grad is None for p in net.parameters())

"""HMC: exact target on a Gaussian and a mixture, leapfrog reversibility and energy conservation."""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K, MixtureEnergy, cov_z, gaussian_2d, mean_z, uniform_box

from lit_gen.mcmc import HMC, energy_and_grad


def test_hmc_reproduces_gaussian_mean_and_covariance() -> None:
    target = gaussian_2d()
    g = torch.Generator().manual_seed(0)
    result = HMC(step_size=0.2, num_leapfrog=5).run(target, uniform_box(4000, -3, 3, g), 40, generator=g)
    assert mean_z(result.x, target.mean, target.cov).abs().max() < K
    assert cov_z(result.x, target.cov).abs().max() < K
    assert 0.8 < result.stats["acceptance_rate"] < 1.0


def test_hmc_reproduces_mixture_moments_and_mode_weights() -> None:
    target = MixtureEnergy()
    n = 4000
    g = torch.Generator().manual_seed(1)
    result = HMC(step_size=0.3, num_leapfrog=6).run(target, uniform_box(n, -4, 4, g), 40, generator=g)
    x = result.x
    assert mean_z(x, target.mean(), target.covariance()).abs().max() < K
    assert cov_z(x, target.covariance()).abs().max() < K
    v, c = target.split()
    p = target.prob_upper()
    frac = float(((x @ v) > c).double().mean())
    assert abs(frac - p) < K * math.sqrt(p * (1 - p) / n)


def test_leapfrog_is_reversible_and_nearly_conserves_energy() -> None:
    target = MixtureEnergy()
    sampler = HMC(step_size=0.05, num_leapfrog=20)
    g = torch.Generator().manual_seed(2)
    x0 = uniform_box(200, -2, 2, g)
    p0 = torch.randn(200, 2, generator=g, dtype=torch.float64)
    e0, g0 = energy_and_grad(target, x0)
    x1, p1, e1, g1, ok = sampler.leapfrog(target, x0, p0, g0)
    assert bool(ok)
    # Flip the momentum and integrate again: back to the start.
    x2, p2, _, _, _ = sampler.leapfrog(target, x1, -p1, g1)
    torch.testing.assert_close(x2, x0, atol=1e-10, rtol=0)
    torch.testing.assert_close(-p2, p0, atol=1e-10, rtol=0)
    # Hamiltonian error is O(ε²): small relative to the energy change along the trajectory.
    h0 = e0 + 0.5 * (p0**2).sum(1)
    h1 = e1 + 0.5 * (p1**2).sum(1)
    assert (h1 - h0).abs().max() < 0.05
    assert (e1 - e0).abs().mean() > 0.1


def test_acceptance_rate_falls_with_step_size() -> None:
    target = gaussian_2d()
    rates = []
    for step in (0.05, 0.4, 0.6):
        g = torch.Generator().manual_seed(3)
        rates.append(HMC(step, 5).run(target, uniform_box(1000, -2, 2, g), 10, generator=g).stats["acceptance_rate"])
    assert rates[0] > 0.97 and rates[0] > rates[1] > rates[2]


@pytest.mark.parametrize("kwargs", [{"step_size": 0.0}, {"num_leapfrog": 0}, {"num_leapfrog": 2.5}])
def test_invalid_settings_are_rejected(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        HMC(**kwargs)


def test_divergent_trajectory_is_reported() -> None:
    def steep(x: torch.Tensor) -> torch.Tensor:  # ε far beyond the stability limit 2/sqrt(λ): overflows
        return 1e4 * (x**2).sum(1) ** 2

    with pytest.raises(FloatingPointError, match="HMC"):
        HMC(step_size=1.0, num_leapfrog=30).run(steep, torch.ones(8, 2), 2, generator=torch.Generator().manual_seed(4))

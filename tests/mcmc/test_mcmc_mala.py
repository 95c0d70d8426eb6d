"""MALA: exact target on a Gaussian and a mixture, detailed balance, acceptance statistics."""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K, MixtureEnergy, cov_z, gaussian_2d, mean_z, uniform_box

from lit_gen.mcmc import MALA, Langevin, energy_and_grad


def test_mala_reproduces_gaussian_mean_and_covariance() -> None:
    target = gaussian_2d()
    g = torch.Generator().manual_seed(0)
    # Step 0.1: at this step ULA's covariance is off by up to 26% (see the Langevin tests); MALA has no bias.
    result = MALA(step_size=0.1).run(target, uniform_box(4000, -3, 3, g), 300, generator=g)
    assert mean_z(result.x, target.mean, target.cov).abs().max() < K
    assert cov_z(result.x, target.cov).abs().max() < K
    assert 0.8 < result.stats["acceptance_rate"] < 1.0


def test_mala_reproduces_mixture_moments_and_mode_weights() -> None:
    target = MixtureEnergy()
    n = 4000
    g = torch.Generator().manual_seed(1)
    result = MALA(step_size=0.15).run(target, uniform_box(n, -4, 4, g), 200, generator=g)
    x = result.x
    assert mean_z(x, target.mean(), target.covariance()).abs().max() < K
    assert cov_z(x, target.covariance()).abs().max() < K
    v, c = target.split()
    p = target.prob_upper()
    frac = float(((x @ v) > c).double().mean())
    assert abs(frac - p) < K * math.sqrt(p * (1 - p) / n)
    assert 0.5 < result.stats["acceptance_rate"] < 1.0


def _double_well(x: torch.Tensor) -> torch.Tensor:
    return (0.25 * x**4 - x**2 + 0.3 * x).sum(1)


def test_acceptance_function_satisfies_detailed_balance() -> None:
    # π(x) q(x'|x) α(x,x') = π(x') q(x|x') α(x',x) for every pair, with the module's own q and α.
    sampler = MALA(step_size=0.3)
    g = torch.Generator().manual_seed(2)
    x = 3 * torch.randn(1000, 1, generator=g, dtype=torch.float64)
    y = x + torch.randn(1000, 1, generator=g, dtype=torch.float64)
    ex, gx = energy_and_grad(_double_well, x)
    ey, gy = energy_and_grad(_double_well, y)
    log_a_xy = sampler.log_accept_ratio(x, y, ex, ey, gx, gy).clamp(max=0)
    log_a_yx = sampler.log_accept_ratio(y, x, ey, ex, gy, gx).clamp(max=0)
    forward = -ex + sampler.log_proposal(y, x, gx) + log_a_xy
    backward = -ey + sampler.log_proposal(x, y, gy) + log_a_yx
    torch.testing.assert_close(forward, backward, atol=1e-9, rtol=1e-9)
    # Not a tautology: many pairs are rejected in one direction only.
    assert (log_a_xy < -0.1).float().mean() > 0.2


def _mixture_1d(n: int, g: torch.Generator) -> tuple[torch.Tensor, object]:
    w, mu, sd = torch.tensor([0.3, 0.7]), torch.tensor([-1.0, 1.2]), torch.tensor([0.5, 0.8])

    def energy(x: torch.Tensor) -> torch.Tensor:
        z = (x - mu) / sd  # (n, 2) by broadcasting x (n, 1)
        return -torch.logsumexp(torch.log(w) - torch.log(sd) - 0.5 * z**2, dim=1)

    comp = (torch.rand(n, generator=g) < w[1]).long()
    exact = mu[comp] + sd[comp] * torch.randn(n, generator=g)
    return exact[:, None].double(), energy


def _fluxes(x0: torch.Tensor, x1: torch.Tensor, cut: float) -> tuple[int, int]:
    a_to_b = int(((x0 < cut) & (x1 >= cut)).sum())
    b_to_a = int(((x0 >= cut) & (x1 < cut)).sum())
    return a_to_b, b_to_a


def test_two_state_flux_balance_from_exact_samples() -> None:
    # Start at exact draws of π and take one step: detailed balance makes the flux between the two states
    # A = {x < c}, B = {x ≥ c} equal in expectation; Var(N_AB − N_BA) ≈ N_AB + N_BA.
    g = torch.Generator().manual_seed(3)
    x0, energy = _mixture_1d(100_000, g)
    x1 = MALA(step_size=0.6).run(energy, x0, 1, generator=g).x
    for cut in (-1.5, 0.0, 1.0, 2.0):
        ab, ba = _fluxes(x0, x1, cut)
        assert ab > 1000
        assert abs(ab - ba) < K * math.sqrt(ab + ba), (cut, ab, ba)
    # Negative control: ULA (the same proposal, always accepted) is not reversible with respect to π and
    # spreads mass into the tails; the check resolves that imbalance far beyond K SE.
    y1 = Langevin(step_size=0.6).run(energy, x0, 1, generator=g).x
    for cut in (-1.5, 2.0):
        ab, ba = _fluxes(x0, y1, cut)
        assert abs(ab - ba) > 2 * K * math.sqrt(ab + ba), (cut, ab, ba)


def test_acceptance_rate_falls_with_step_size() -> None:
    target = gaussian_2d()
    rates = []
    for step in (0.02, 0.3, 1.0):
        g = torch.Generator().manual_seed(4)
        x0 = target.mean + torch.randn(2000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(
            target.cov
        ).T
        rates.append(MALA(step).run(target, x0, 20, generator=g).stats["acceptance_rate"])
    assert rates[0] > 0.95 and rates[0] > rates[1] > rates[2] > 0.0


def test_nan_proposal_is_reported_with_its_step() -> None:
    def energy(x: torch.Tensor) -> torch.Tensor:  # NaN once a chain leaves (−2, 2)
        e = 0.5 * (x**2).sum(1)
        return torch.where(x.abs().max(1).values < 2, e, torch.full_like(e, float("nan")))

    with pytest.raises(FloatingPointError, match=r"MALA.*step \d+ \(0-based\)"):
        MALA(step_size=2.0).run(energy, torch.zeros(64, 2), 30, generator=torch.Generator().manual_seed(5))


def test_non_finite_initial_state_is_reported() -> None:
    with pytest.raises(FloatingPointError, match="initial states"):
        MALA(0.1).run(lambda x: (x**2).sum(1), torch.tensor([[float("nan"), 0.0]]), 3)

"""Dual-averaging step-size adaptation: the controller's recursion, MALA and HMC reaching their target acceptance on
a known Gaussian from steps far too large and far too small, the frozen step afterwards, per-step acceptance
probabilities in ``MCMCResult``."""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K

from lit_gen.mcmc import HMC, MALA, DualAveraging, Langevin, adapt_step_size

D = 10


def _gaussian(seed: int = 0):
    """``E = ½ (x − μ)ᵀ Σ⁻¹ (x − μ)`` in D dimensions, covariance eigenvalues from about 0.3 to 4."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(D, D, generator=g, dtype=torch.float64)
    cov = a @ a.T / D + 0.3 * torch.eye(D, dtype=torch.float64)
    prec, mu = torch.linalg.inv(cov), torch.randn(D, generator=g, dtype=torch.float64)

    def energy(x: torch.Tensor) -> torch.Tensor:
        z = x - mu
        return 0.5 * ((z @ prec) * z).sum(1)

    return energy, mu


def test_dual_averaging_follows_algorithm_5() -> None:
    da = DualAveraging(0.6, initial_step_size=0.5)
    assert da.mu == pytest.approx(math.log(5.0)) and da.final_step_size == 0.5
    # m = 1: H̄ = (δ − α)/(1 + t0); log ε = μ − √1/γ H̄; log ε̄ = 1^{−κ} log ε
    step = da.update(0.9)
    h = (0.6 - 0.9) / 11
    assert step == pytest.approx(math.exp(math.log(5.0) - h / 0.05))
    assert da.final_step_size == pytest.approx(step)
    step2 = da.update(0.2)
    h = (1 - 1 / 12) * h + (0.6 - 0.2) / 12
    log_step2 = math.log(5.0) - math.sqrt(2) / 0.05 * h
    assert step2 == pytest.approx(math.exp(log_step2))
    w = 2**-0.75
    assert da.final_step_size == pytest.approx(math.exp(w * log_step2 + (1 - w) * math.log(step)))


def test_dual_averaging_converges_on_a_known_acceptance_curve() -> None:
    # α(ε) = exp(−ε): the step with α = δ is −log δ
    da = DualAveraging(0.57, initial_step_size=10.0)
    for _ in range(2000):
        da.update(math.exp(-da.step_size))
    assert da.final_step_size == pytest.approx(-math.log(0.57), rel=0.02)
    da.reset()
    assert da.iteration == 0 and da.step_size == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("make", "target", "warmup"),
    [
        (lambda: MALA(step_size=2.0), 0.57, 250),
        (lambda: MALA(step_size=1e-4), 0.57, 250),
        (lambda: HMC(step_size=0.01, num_leapfrog=5), 0.75, 150),
    ],
    ids=["mala-from-large", "mala-from-small", "hmc"],
)
def test_adapted_step_reaches_the_target_acceptance_and_stays_frozen(make, target: float, warmup: int) -> None:
    energy, mu = _gaussian()
    sampler = make()
    g = torch.Generator().manual_seed(1)
    x0 = mu + 3 * torch.randn(100, D, generator=g, dtype=torch.float64)
    out = adapt_step_size(sampler, energy, x0, warmup, generator=g)  # default target for the sampler type
    assert sampler.step_size == out.step_size
    assert out.accept_probs.shape == (warmup,) and out.step_sizes.shape == (warmup,)
    result = sampler.run(energy, out.x, 100, generator=g)
    assert sampler.step_size == out.step_size  # frozen: sampling does not move it
    assert abs(float(result.accept_prob.mean()) - target) < 0.05
    assert abs(result.stats["acceptance_rate"] - target) < 0.05


def test_explicit_target_and_controller() -> None:
    energy, mu = _gaussian()
    g = torch.Generator().manual_seed(2)
    x0 = mu + torch.randn(100, D, generator=g, dtype=torch.float64)
    sampler = MALA(0.1)
    out = adapt_step_size(sampler, energy, x0, 200, target_accept=0.8, generator=g)
    assert abs(float(sampler.run(energy, out.x, 60, generator=g).accept_prob.mean()) - 0.8) < 0.05
    controller = DualAveraging(0.3, initial_step_size=0.1)
    out2 = adapt_step_size(MALA(0.1), energy, x0, 150, controller=controller, steps_per_update=2, generator=g)
    assert controller.iteration == 150 and out2.step_size == controller.final_step_size
    assert out2.step_size > out.step_size  # a lower target takes longer steps


def test_result_reports_per_step_acceptance_probabilities() -> None:
    energy, mu = _gaussian()
    g = torch.Generator().manual_seed(3)
    x0 = mu + torch.randn(400, D, generator=g, dtype=torch.float64)
    for sampler in (MALA(0.3), HMC(0.3, 3)):
        result = sampler.run(energy, x0, 20, generator=g)
        p = result.accept_prob
        assert p.shape == (20,) and p.dtype == torch.float64 and bool(((p >= 0) & (p <= 1)).all())
        # the accepted fraction is a Bernoulli draw of mean accept_prob over 400 × 20 trials
        mean = float(p.mean())
        assert abs(result.stats["acceptance_rate"] - mean) < K * math.sqrt(mean * (1 - mean) / (400 * 20))
    assert Langevin(0.01).run(energy, x0, 3).accept_prob is None


def test_bad_settings_are_clear_errors() -> None:
    energy, mu = _gaussian()
    x0 = mu.expand(8, D).clone()
    with pytest.raises(ValueError, match="no accept/reject step"):
        adapt_step_size(Langevin(0.01), energy, x0, 10)
    with pytest.raises(ValueError, match=r"target_accept must be in \(0, 1\)"):
        DualAveraging(1.5)
    with pytest.raises(ValueError, match="kappa"):
        DualAveraging(0.5, kappa=0.4)
    with pytest.raises(ValueError, match="num_warmup"):
        adapt_step_size(MALA(0.1), energy, x0, 0)
    with pytest.raises(ValueError, match=r"accept_prob must be in \[0, 1\], got nan"):
        DualAveraging(0.5).update(math.nan)


def test_dual_averaging_state_round_trip() -> None:
    a, b = DualAveraging(0.6, initial_step_size=0.1), DualAveraging(0.6, initial_step_size=0.1)
    for p in (0.9, 0.2, 0.7):
        a.update(p)
    b.load_state_dict(a.state_dict())
    assert b.iteration == 3 and b.step_size == a.step_size and b.final_step_size == a.final_step_size
    assert a.update(0.5) == b.update(0.5)
    with pytest.raises(ValueError, match="state_dict"):
        b.load_state_dict({"iteration": 1})

"""MCMC diagnostics: ESS of i.i.d. and AR(1) draws against their closed forms, split-R̂ on mixed and stuck chains,
FFT autocorrelation against the direct sum, acceptance rate from a trace.

Tolerances come from the estimators' sampling variance, with M chains of N draws (MN in all):

- i.i.d.: ``τ̂ = 1 + 2ρ̂₁ + 2 Σ_{k≥1} P̂_k`` over the kept pair sums; ``ρ̂₁ ~ N(0, 1/MN)`` and the first pair sum
  ``P̂₁ ~ N(0, 2/MN)`` is kept when positive, so ``Var(τ̂) ≈ 4/MN + 8/MN · (1/2 − 1/2π) ≈ 6.7/MN`` and the kept
  positive pairs bias ``τ̂`` upwards by about ``2 E[P̂₁⁺] = 2 φ(0) √(2/MN)`` (times 2 here, for the later pairs).
- AR(1) with coefficient ρ: ``τ = (1 + ρ)/(1 − ρ)``; the estimate sums the autocorrelations up to the lag W where
  ``ρ^W`` reaches the noise level ``1/√MN``, so (Sokal 1997) ``Var(τ̂)/τ² ≈ 2(2W + 1)/MN`` and the truncated tail
  biases it by about ``2ρ^W / ((1 − ρ) τ)``.

Every check runs on C independent coordinates at once (the estimators are vectorised over them): the mean over
coordinates is held to ``bias + K·sd/√C`` and every single coordinate to ``bias + 5·sd``.
"""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K

from lit_gen.mcmc import (
    MALA,
    MCMCDiagnostics,
    acceptance_rate,
    autocorrelation,
    effective_sample_size,
    split_rhat,
    summarize,
)

N, M, C = 1000, 4, 100  # draws, chains, independent coordinates
PHI0 = 1.0 / math.sqrt(2.0 * math.pi)


def _ar1(rho: float, seed: int, n: int = N, m: int = M, c: int = C) -> torch.Tensor:
    """Stationary AR(1) chains ``x_t = ρ x_{t−1} + √(1−ρ²) ε_t``, unit marginal variance, shape (n, m, c)."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, m, c, generator=g, dtype=torch.float64)
    x = torch.empty_like(eps)
    x[0] = eps[0]
    s = math.sqrt(1.0 - rho**2)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + s * eps[t]
    return x


def test_ess_of_iid_draws_is_the_number_of_draws() -> None:
    x = torch.randn(N, M, C, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ratio = effective_sample_size(x) / (N * M)
    assert ratio.shape == (C,)
    total = N * M
    sd = math.sqrt(6.7 / total)
    bias = 2 * 2 * PHI0 * math.sqrt(2 / total)
    assert abs(float(ratio.mean()) - 1) < bias + K * sd / math.sqrt(C)
    assert float((ratio - 1).abs().max()) < bias + 5 * sd
    # the spread across coordinates is the predicted one (not, say, zero because of a clamp)
    assert 0.6 * sd < float(ratio.std()) < 1.5 * sd


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ess_of_ar1_chains_matches_the_closed_form(rho: float) -> None:
    x = _ar1(rho, seed=int(rho * 10))
    total = N * M
    truth = total * (1 - rho) / (1 + rho)
    ratio = effective_sample_size(x) / truth
    tau = (1 + rho) / (1 - rho)
    window = math.log(total) / (2 * -math.log(rho))
    sd = math.sqrt(2 * (2 * window + 1) / total)
    bias = 2 / (math.sqrt(total) * (1 - rho) * tau)
    assert abs(float(ratio.mean()) - 1) < bias + K * sd / math.sqrt(C)
    assert float((ratio - 1).abs().max()) < bias + 5 * sd
    # the rank-normalised (bulk) ESS of a Gaussian chain estimates the same quantity
    bulk = effective_sample_size(x, rank_normalize=True) / truth
    assert abs(float(bulk.mean()) - 1) < bias + K * sd / math.sqrt(C) + 0.02


def test_ess_without_splitting_and_of_a_constant_coordinate() -> None:
    x = _ar1(0.5, seed=3, c=20)
    unsplit = effective_sample_size(x, split=False) / (N * M / 3)
    assert abs(float(unsplit.mean()) - 1) < 0.1
    x[:, :, 0] = 2.0  # never moves: no autocorrelation to speak of
    ess = effective_sample_size(x)
    assert torch.isnan(ess[0]) and torch.isfinite(ess[1:]).all()


def test_autocorrelation_by_fft_equals_the_direct_sum() -> None:
    x = torch.randn(37, 3, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    rho = autocorrelation(x)
    xc = x - x.mean(0)
    direct = torch.stack([(xc[: 37 - t] * xc[t:]).sum(0) for t in range(37)]) / 37
    torch.testing.assert_close(rho, direct / direct[0], rtol=1e-10, atol=1e-12)


def test_autocorrelation_of_ar1_decays_as_rho_to_the_lag() -> None:
    rho = 0.7
    x = _ar1(rho, seed=5)
    mean_acf = autocorrelation(x).mean(dim=(1, 2))
    for t in (1, 2, 5):
        # Bartlett's variance of ρ̂_t for an AR(1), averaged over the M·C independent series; the biased estimator
        # (divided by N, centred on the chain mean) sits about ρ^t·t/N + τ/N low.
        var = ((1 + rho**2) * (1 - rho ** (2 * t)) / (1 - rho**2) - 2 * t * rho ** (2 * t)) / N
        bias = rho**t * t / N + (1 + rho) / ((1 - rho) * N)
        assert abs(float(mean_acf[t]) - rho**t) < bias + K * math.sqrt(var / (M * C))


def test_rhat_is_one_for_mixed_chains() -> None:
    iid = torch.randn(N, M, C, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert float(split_rhat(iid).max()) < 1.01
    assert float(split_rhat(iid, rank_normalize=False).max()) < 1.01
    # autocorrelated chains: B/N fluctuates with the τ = 3 times fewer effective draws, hence the wider bound
    assert float(split_rhat(_ar1(0.5, seed=7)).max()) < 1.02
    # chains that each visit both modes of a bimodal law are mixed too
    g = torch.Generator().manual_seed(8)
    modes = torch.where(torch.rand(N, M, 10, generator=g) < 0.5, -3.0, 3.0).double()
    assert float(split_rhat(modes + torch.randn(N, M, 10, generator=g, dtype=torch.float64)).max()) < 1.01


def test_rhat_flags_chains_stuck_in_different_modes() -> None:
    x = _ar1(0.5, seed=9, c=10)
    x[:, :2] -= 3.0  # two chains in one mode, two in the other
    x[:, 2:] += 3.0
    assert float(split_rhat(x).min()) > 1.1
    assert float(split_rhat(x, rank_normalize=False).min()) > 1.1


def test_split_rhat_flags_a_trend_within_chains() -> None:
    x = _ar1(0.5, seed=10, c=10)
    x += torch.linspace(0.0, 4.0, N, dtype=torch.float64)[:, None, None]  # every chain still drifting
    assert float(split_rhat(x).min()) > 1.1


def test_rank_normalised_rhat_flags_chains_of_different_scale() -> None:
    x = torch.randn(N, M, 10, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    x[:, 2:] *= 4.0  # same centre, different spread: only the folded (tail) R̂ sees it
    assert float(split_rhat(x, rank_normalize=False).max()) < 1.05
    assert float(split_rhat(x).min()) > 1.1


def test_acceptance_rate_from_a_mala_trace_matches_the_sampler() -> None:
    g = torch.Generator().manual_seed(12)
    sampler = MALA(step_size=0.8)

    def energy(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).sum(1)

    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    trace, reported = [x], []
    for _ in range(50):
        result = sampler.run(energy, trace[-1], 1, generator=g)
        trace.append(result.x)
        reported.append(result.stats["acceptance_rate"])
    chains = torch.stack(trace)
    assert float(acceptance_rate(chains)) == pytest.approx(sum(reported) / len(reported), abs=1e-12)
    per_chain = acceptance_rate(chains, per_chain=True)
    assert per_chain.shape == (64,) and float(per_chain.mean()) == pytest.approx(float(acceptance_rate(chains)))
    assert 0.2 < float(acceptance_rate(chains)) < 0.95


def test_summarize_reports_ess_rhat_and_acceptance() -> None:
    x = _ar1(0.5, seed=13, c=3)
    summary = summarize(x, with_acceptance=False)
    assert isinstance(summary, MCMCDiagnostics)
    assert summary.ess.shape == (3,) and summary.rhat.shape == (3,)
    assert summary.num_draws == N and summary.num_chains == M and summary.acceptance_rate is None
    values = summary.as_dict()
    assert set(values) == {"ess_min", "ess_mean", "rhat_max"} and all(isinstance(v, float) for v in values.values())
    assert summary.max_rhat < 1.01 and 0.5 * N * M / 3 < summary.min_ess < 1.5 * N * M / 3
    assert "acceptance_rate" in summarize(x).as_dict()


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\(num_draws, num_chains, \*event\)"):
        effective_sample_size(torch.randn(100))
    with pytest.raises(ValueError, match="at least 4 draws"):
        split_rhat(torch.randn(3, 2))
    bad = torch.randn(50, 2)
    bad[10, 1] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        effective_sample_size(bad)
    with pytest.raises(TypeError, match="torch.Tensor"):
        autocorrelation([[1.0, 2.0]])

"""Long-run sampling: the adapted step reaches the target acceptance on a copy, and the recorded diagnostics read
well-mixed chains as mixed and stuck ones as stuck."""

from __future__ import annotations

import pytest
import torch

from lit_gen.mcmc import MALA, Langevin, long_run
from lit_gen.models import EBMModule
from lit_gen.nn import EnergyMLP


def _gaussian(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x**2).sum(1)


def test_warmup_adapts_a_copy_to_the_target_acceptance_and_moments_follow() -> None:
    sampler = MALA(step_size=5.0)  # far too large: almost nothing accepted
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(512, 4, generator=gen) * 3
    out = long_run(sampler, _gaussian, x0, 400, warmup=200, record=True, generator=gen)
    assert sampler.step_size == 5.0  # the configured sampler is left as it was
    assert out.stats["step_size"] < 5.0
    # MALA's target 0.57; the accepted fraction of the frozen run sits near it (tolerance: the averaging noise)
    assert abs(out.stats["acceptance_rate"] - 0.57) < 0.1, out.stats
    # N(0, I): with 512 chains the moments are within a few standard errors (1/sqrt(512) ~ 0.044)
    assert out.x.mean(0).abs().max() < 0.2 and (out.x.var(0) - 1).abs().max() < 0.25
    assert out.stats["rhat_max"] < 1.05 and out.stats["ess_min"] > 100


def test_stuck_chains_show_a_large_rhat() -> None:
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(64, 2, generator=gen) * 5  # over-dispersed starts that a tiny step never forgets
    out = long_run(Langevin(step_size=1e-6), _gaussian, x0, 200, record=True, generator=gen)
    assert out.stats["rhat_max"] > 1.5 and "warmup" not in out.stats


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        long_run(MALA(0.1), _gaussian, torch.zeros(4, 2), 0)
    with pytest.raises(ValueError, match="at least 8 steps"):
        long_run(MALA(0.1), _gaussian, torch.zeros(4, 2), 4, record=True)


def test_ebm_sample_returns_stats_and_adapts_by_default() -> None:
    torch.manual_seed(0)
    model = EBMModule(energy_net=EnergyMLP, sampler=MALA(step_size=0.5), sample_steps=40, sample_warmup=30,
                      eval_metrics=False, init_low=-3.0, init_high=3.0)
    x, stats = model.sample(64, return_stats=True, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 2) and {"ess_min", "rhat_max", "acceptance_rate", "step_size", "warmup"} <= set(stats)
    assert model.sampler.step_size == 0.5
    _, plain = model.sample(64, return_stats=True, adapt=False, generator=torch.Generator().manual_seed(0))
    assert plain["step_size"] == 0.5 and "warmup" not in plain

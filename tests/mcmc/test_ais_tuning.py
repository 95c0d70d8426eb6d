"""Per-temperature AIS step sizes tuned on pilot chains, and AIS on a box through x = tanh(u).

The tolerance on log Ẑ is the one of test_ais.py: an estimate agrees when ``|log Ẑ ± se²/2 − log Z| < 4·se`` (delta
method standard error, Jensen bias), where the weights' ESS is a good fraction of the chains.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from lit_gen.mcmc import (
    HMC,
    MALA,
    BoxReparametrization,
    LogisticBoxBase,
    ais_bracket,
    ais_log_partition,
    tune_ais_step_sizes,
    uniform_box_base,
)


def _gaussian(d: int, s: float):
    """``E = |x|²/(2s²)`` and its ``log Z = (d/2) log(2π s²)``; the base N(0, I)."""
    return (lambda x: 0.5 * x.pow(2).sum(1) / s**2), 0.5 * d * math.log(2 * math.pi * s**2), \
        Independent(Normal(torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)), 1)


def test_the_tuned_steps_follow_the_curvature_along_the_path_and_hit_the_target_acceptance() -> None:
    """E_β = β|x|²/(2s²) + (1 − β)|x|²/2 is Gaussian with precision β/s² + 1 − β; MALA's best step scales as the
    inverse precision (times d^{-1/3}), so from β ≈ 0 to β = 1 the tuned step must shrink by about 1/s² = 100."""
    d, s = 10, 0.1
    energy, log_z, base = _gaussian(d, s)
    betas_steps = 300
    tuned = tune_ais_step_sizes(energy, base, betas_steps, MALA(1.0), num_chains=64,
                                generator=torch.Generator().manual_seed(0))
    assert tuned.step_sizes.shape == (betas_steps - 1,) and tuned.target_accept == 0.57
    assert 0.5 < float(tuned.accept_probs.mean()) < 0.64
    ratio = float(tuned.step_sizes[:10].mean() / tuned.step_sizes[-10:].mean())
    assert 30 < ratio < 300
    sampler = MALA(1.0)
    result = ais_log_partition(energy, base, num_chains=256, num_steps=betas_steps, sampler=sampler,
                               generator=torch.Generator().manual_seed(1), step_sizes=tuned.step_sizes)
    assert sampler.step_size == 1.0  # the schedule is set move by move and the given step restored
    assert 0.45 < result.acceptance_rate < 0.7
    assert abs(result.log_z + result.stderr**2 / 2 - log_z) < 4 * result.stderr
    fixed = ais_log_partition(energy, base, num_chains=256, num_steps=betas_steps, sampler=MALA(1.0),
                              generator=torch.Generator().manual_seed(1))
    assert fixed.acceptance_rate < 0.05 < result.acceptance_rate  # the untuned start is far too large


def test_a_tuned_schedule_brackets_in_both_directions_and_tunes_hmc_too() -> None:
    d, s = 4, 0.3
    energy, log_z, base = _gaussian(d, s)
    data = s * torch.randn(128, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for sampler in (MALA(0.5), HMC(0.5, num_leapfrog=3)):
        tuned = tune_ais_step_sizes(energy, base, 100, sampler, num_chains=64,
                                    generator=torch.Generator().manual_seed(3))
        assert abs(float(tuned.accept_probs.mean()) - tuned.target_accept) < 0.1
        bracket = ais_bracket(energy, base, data, num_chains=128, num_steps=100, sampler=sampler,
                              generator=torch.Generator().manual_seed(4), step_sizes=tuned.step_sizes)
        se = max(bracket.forward.stderr, bracket.reverse.stderr)
        true_nll = float(energy(data).mean()) + log_z
        assert bracket.nll_lower - 4 * se <= true_nll <= bracket.nll_upper + 4 * se
        assert sampler.step_size == 0.5


def test_bad_schedules_and_samplers_get_clear_errors() -> None:
    energy, _, base = _gaussian(3, 1.0)
    with pytest.raises(ValueError, match="9 intermediate temperatures"):
        ais_log_partition(energy, base, num_chains=4, num_steps=10, step_sizes=torch.ones(5))
    with pytest.raises(ValueError, match="positive and finite"):
        ais_log_partition(energy, base, num_chains=4, num_steps=3, step_sizes=torch.tensor([0.1, -1.0]))
    with pytest.raises(ValueError, match="1-D tensor"):
        ais_log_partition(energy, base, num_chains=4, num_steps=3, step_sizes=0.1)
    with pytest.raises(TypeError, match="MALA or HMC"):
        tune_ais_step_sizes(energy, base, 10, sampler=object())
    with pytest.raises(ValueError, match="target_accept"):
        tune_ais_step_sizes(energy, base, 10, target_accept=1.5)


def test_the_box_map_its_jacobian_and_its_base_are_exact() -> None:
    low = torch.tensor([[-1.0, 0.0], [2.0, -3.0]], dtype=torch.float64)
    high = torch.tensor([[1.0, 0.5], [6.0, 3.0]], dtype=torch.float64)
    box = BoxReparametrization(low, high)
    u = torch.randn(5, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    x = box.to_box(u)
    assert bool(((x > low) & (x < high)).all())
    torch.testing.assert_close(box.from_box(x), u)
    # log|dx/du| of the diagonal map against autograd, per point
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda v: box.to_box(v.view(2, 2)).flatten(), u[i].flatten())
        torch.testing.assert_close(box.log_det(u[i : i + 1])[0], torch.logdet(jac))
    # the base is the uniform law on the box, seen in u: log p_u(u) = −log vol + log|dx/du|
    base = box.base()
    assert isinstance(base, LogisticBoxBase) and tuple(base.event_shape) == (2, 2)
    log_vol = float(torch.log(high - low).sum())
    torch.testing.assert_close(base.log_prob(u), -log_vol + box.log_det(u))
    torch.manual_seed(0)
    draws = box.to_box(base.sample((20000,)))
    mean, var = draws.mean(0), draws.var(0)
    torch.testing.assert_close(mean, (low + high) / 2, atol=float(4 * ((high - low) / math.sqrt(12 * 20000)).max()),
                               rtol=0)
    torch.testing.assert_close(var, (high - low) ** 2 / 12, rtol=0.05, atol=0)
    # extreme u stay finite (a naive log(1 − tanh²) is −inf beyond |u| ≈ 19 in float64)
    assert bool(torch.isfinite(base.log_prob(torch.full((1, 2, 2), 40.0, dtype=torch.float64))).all())
    with pytest.raises(ValueError, match="outside the box"):
        box.from_box(torch.full((1, 2, 2), 10.0, dtype=torch.float64))


def test_in_784_dimensions_near_a_face_the_box_map_moves_where_the_uniform_box_base_cannot() -> None:
    """E = a·Σx (a = 20) on [−1, 1]^784, log Z = 784 log(2 sinh(a)/a): the mass sits within ~1/a of the face x = −1
    like MNIST's background. In x, a MALA move crosses the face in some coordinate and is rejected; in u it is not,
    and the tuned anneal's bracket holds the exact log Z."""
    a, shape = 20.0, (1, 28, 28)
    d = 784
    log_z = d * math.log(2 * math.sinh(a) / a)
    energy = lambda x: a * x.flatten(1).sum(1)  # noqa: E731
    low, high = torch.full(shape, -1.0), torch.full(shape, 1.0)
    v = torch.rand(32, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    data = (-torch.log(math.exp(a) - v * (math.exp(a) - math.exp(-a))) / a).float()
    in_x = ais_log_partition(energy, uniform_box_base(low, high), num_chains=16, num_steps=100, sampler=MALA(0.01),
                             generator=torch.Generator().manual_seed(1))
    assert in_x.acceptance_rate == 0.0

    box = BoxReparametrization(low, high)
    energy_u, base = box.energy(energy), box.base()
    tuned = tune_ais_step_sizes(energy_u, base, 1000, MALA(0.05), num_chains=16,
                                generator=torch.Generator().manual_seed(2))
    bracket = ais_bracket(energy_u, base, box.from_box(data), num_chains=32, num_steps=1000, sampler=MALA(0.05),
                          generator=torch.Generator().manual_seed(3), step_sizes=tuned.step_sizes)
    assert 0.45 < bracket.forward.acceptance_rate < 0.7 and 0.45 < bracket.reverse.acceptance_rate < 0.7
    se = max(bracket.forward.stderr, bracket.reverse.stderr)
    assert bracket.forward.log_z - 4 * se <= log_z <= bracket.reverse.log_z + 4 * se
    # informative: the two sides within 1 nat per dimension of each other
    assert bracket.reverse.log_z - bracket.forward.log_z < d

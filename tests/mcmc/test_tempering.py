"""Replica exchange: mode weights of a well-separated unequal mixture where plain MALA and Langevin stay in their
starting mode, exactness of the T = 1 chain and of every tempered replica, the sampler interface, clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K, cov_z, gaussian_2d, mean_z, uniform_box

from lit_gen.mcmc import (
    MALA,
    Langevin,
    MCMCResult,
    MCMCSampler,
    ReplicaExchange,
    effective_sample_size,
    geometric_temperatures,
)

WEIGHTS, MEANS, SD = torch.tensor([0.8, 0.2], dtype=torch.float64), torch.tensor([-6.0, 6.0], dtype=torch.float64), 0.5


def _mixture(x: torch.Tensor) -> torch.Tensor:
    """``−log(0.8 N(−6, 0.5²) + 0.2 N(6, 0.5²))`` on (B, 1): a barrier of about 72 nats between the modes."""
    z = (x - MEANS) / SD
    return -torch.logsumexp(torch.log(WEIGHTS) - 0.5 * z**2, dim=1)


def test_replica_exchange_recovers_unequal_mode_weights_where_plain_chains_do_not() -> None:
    chains = 256
    start = torch.full((chains, 1), 6.0, dtype=torch.float64)  # every chain in the light mode
    g = torch.Generator().manual_seed(0)
    # E/T_max has a barrier of ~0.7 nats at T_max = 100; the ratio 100^(1/5) ≈ 2.5 between rungs keeps swaps frequent
    sampler = ReplicaExchange(MALA(0.1), num_replicas=6, max_temperature=100.0, swap_every=5)
    burn = sampler.sample(_mixture, start, 300, generator=g)
    x, hot, trace = burn.x, burn.replicas[1:], []
    for _ in range(40):
        out = sampler.sample(_mixture, x, 10, generator=g, hot=hot)
        x, hot = out.x, out.replicas[1:]
        trace.append((x[:, 0] < 0).double())
    in_heavy = torch.stack(trace)  # (draws, chains): the indicator of the heavy mode
    ess = float(effective_sample_size(in_heavy))
    assert ess > 1000  # hundreds of mode switches per chain, so the normal approximation below holds
    p = float(WEIGHTS[0])
    tolerance = K * math.sqrt(p * (1 - p) / ess)
    estimate = float(in_heavy.mean())
    assert abs(estimate - p) < tolerance, (estimate, tolerance)
    assert bool(((out.swap_rates > 0.3) & (out.swap_rates < 1.0)).all())
    # the same budget of plain chains from the same start never leaves the light mode
    for plain in (MALA(0.1), Langevin(0.02)):
        stuck = plain.run(_mixture, start, 700, generator=g).x
        assert abs(float((stuck[:, 0] < 0).double().mean()) - p) > 10 * tolerance


def test_cold_chain_and_every_replica_sample_their_tempered_law() -> None:
    # E = ½xᵀAx at temperature T is N(μ, T·A⁻¹): each replica's moments are checked; a wrong sign or factor in the
    # swap probability would pull hot states into the cold replica and inflate its covariance
    target = gaussian_2d()
    g = torch.Generator().manual_seed(1)
    for scale_steps in (True, False):
        sampler = ReplicaExchange(MALA(0.1), temperatures=[1.0, 2.0, 4.0], swap_every=2, scale_steps=scale_steps)
        out = sampler.sample(target, uniform_box(2000, -3, 3, g), 200, generator=g)
        for k, temperature in enumerate(out.temperatures.tolist()):
            cov = temperature * target.cov
            assert mean_z(out.replicas[k], target.mean, cov).abs().max() < K
            assert cov_z(out.replicas[k], cov).abs().max() < K
        assert bool(((out.swap_rates > 0.2) & (out.swap_rates < 1.0)).all())
        assert torch.equal(out.x, out.replicas[0])


def test_is_a_drop_in_sampler() -> None:
    target = gaussian_2d()
    sampler = ReplicaExchange(MALA(0.05), num_replicas=4, max_temperature=8.0, swap_every=3)
    assert isinstance(sampler, MCMCSampler)
    x0 = torch.zeros(32, 2, dtype=torch.float64)
    with torch.no_grad():
        result = sampler.run(target, x0, 10, generator=torch.Generator().manual_seed(2))
    assert isinstance(result, MCMCResult) and result.x.shape == x0.shape and not result.x.requires_grad
    assert all(isinstance(v, float) for v in result.stats.values())
    assert {"acceptance_rate", "mean_energy", "grad_norm", "steps", "swap_rate", "swap_rate_0"} <= set(result.stats)
    assert result.stats["steps"] == 10.0
    again = sampler.run(target, x0, 10, generator=torch.Generator().manual_seed(2))
    assert torch.equal(again.x, result.x)
    # one swap round tries only the even pairs: the odd pair's rate is undefined
    one_round = sampler.sample(target, x0, 3, generator=torch.Generator().manual_seed(3))
    assert math.isnan(float(one_round.swap_rates[1])) and not math.isnan(float(one_round.swap_rates[0]))
    assert torch.allclose(geometric_temperatures(4, 8.0), torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64))


def test_persistent_hot_replicas_carry_over_between_calls() -> None:
    target = gaussian_2d()
    sampler = ReplicaExchange(MALA(0.05), num_replicas=3, max_temperature=4.0, swap_every=2, persistent=True)
    x0 = torch.zeros(16, 2, dtype=torch.float64)
    first = sampler.sample(target, x0, 4, generator=torch.Generator().manual_seed(4))
    second = sampler.sample(target, first.x, 4, generator=torch.Generator().manual_seed(5))
    explicit = ReplicaExchange(MALA(0.05), num_replicas=3, max_temperature=4.0, swap_every=2).sample(
        target, first.x, 4, generator=torch.Generator().manual_seed(5), hot=first.replicas[1:])
    assert torch.equal(second.replicas, explicit.replicas)


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="increase strictly from T = 1"):
        ReplicaExchange(temperatures=[2.0, 4.0])
    with pytest.raises(ValueError, match="swap_every"):
        ReplicaExchange(swap_every=0)
    with pytest.raises(ValueError, match="max_temperature must be >= 1"):
        ReplicaExchange(max_temperature=0.5)
    with pytest.raises(TypeError, match="MCMCSampler"):
        ReplicaExchange(sampler="mala")
    sampler = ReplicaExchange(MALA(0.05), num_replicas=3)
    with pytest.raises(ValueError, match=r"hot must have shape \(K − 1, B, \*shape\)"):
        sampler.sample(gaussian_2d(), torch.zeros(4, 2, dtype=torch.float64), 2, hot=torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match=r"energy must return shape \(B,\)"):
        sampler.run(lambda x: (x**2).sum(), torch.zeros(4, 2), 2)


def test_state_dict_round_trip_continues_the_hot_replicas_bitwise() -> None:
    # an uninterrupted 3-call run against 1 call, save (through torch.save, weights_only), load into a fresh
    # sampler, 2 more calls: the same states, hot replicas and swap counters, bit for bit
    import io

    target = gaussian_2d()

    def make() -> ReplicaExchange:
        return ReplicaExchange(MALA(0.05), num_replicas=3, max_temperature=4.0, swap_every=2, persistent=True)

    x0 = torch.zeros(16, 2)
    full, g = make(), torch.Generator().manual_seed(7)
    x = x0
    for _ in range(3):
        x = full.run(target, x, 4, generator=g).x
    first, g = make(), torch.Generator().manual_seed(7)
    y = first.run(target, x0, 4, generator=g).x
    assert first.hot is not None and first.hot.shape == (2, 16, 2)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = make()
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(resumed.hot, first.hot) and torch.equal(resumed.swap_attempts, first.swap_attempts)
    for _ in range(2):
        y = resumed.run(target, y, 4, generator=g).x
    assert torch.equal(x, y) and torch.equal(full.hot, resumed.hot)
    assert torch.equal(full.swap_attempts, resumed.swap_attempts) and torch.equal(full.swap_accepts,
                                                                                  resumed.swap_accepts)
    assert float(full.swap_attempts.sum()) == 3 * 2 * 16 and 0.0 < full.swap_rate < 1.0  # 2 rounds of 1 pair a call
    # an empty state (no run yet) round-trips too; a state of another ladder is refused by name
    fresh = make()
    fresh.load_state_dict(make().state_dict())
    assert fresh.hot is None and math.isnan(fresh.swap_rate)
    other = ReplicaExchange(MALA(0.05), num_replicas=4, max_temperature=4.0)
    with pytest.raises(ValueError, match="temperature ladder"):
        other.load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="NaN or infinite"):
        make().load_state_dict({**first.state_dict(), "hot": torch.full((2, 16, 2), math.nan)})
    with pytest.raises(ValueError, match="state_dict"):
        make().load_state_dict({"hot": None})


def test_per_chain_energy_tiles_conditioning_over_the_replicas() -> None:
    # E(x | c_b) = ½‖x − c_b‖²: chain b's replicas all sample around its own centre c_b
    from lit_gen.mcmc import per_chain_energy, tile_chains

    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0]], dtype=torch.float64).repeat(200, 1)  # B = 400

    def make(m: int):
        c = tile_chains(centres, m)
        return lambda z: 0.5 * (z - c).pow(2).sum(1)

    energy = per_chain_energy(make, centres.shape[0])
    sampler = ReplicaExchange(MALA(0.2), num_replicas=3, max_temperature=2.0, swap_every=2)
    out = sampler.sample(energy, centres.clone(), 60, generator=torch.Generator().manual_seed(8))
    for k in range(3):  # every replica stays centred on its chain's own c_b
        assert float((out.replicas[k] - centres).mean(0).abs().max()) < 0.3
    assert out.accept_prob is not None and out.accept_prob.shape == (60,)
    with pytest.raises(ValueError, match="whole number of copies"):
        energy(torch.zeros(401, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="copies must be a positive int"):
        tile_chains(centres, 0)

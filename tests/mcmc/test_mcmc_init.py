"""Chain initialisation: init distributions, short-run, CD-k and the persistent replay buffer."""

from __future__ import annotations

import math

import pytest
import torch
from _mcmc_targets import K, cov_z, gaussian_2d, mean_z, ula_stationary_cov

from lit_gen.mcmc import DataInit, GaussianInit, Langevin, NoiseInit, ReplayBuffer, UniformInit


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- init distributions
def test_uniform_init_per_feature_bounds_and_moments() -> None:
    low, high = torch.tensor([-1.0, 2.0]), torch.tensor([1.0, 6.0])
    x = UniformInit(low, high).sample(20000, (2,), _gen(0))
    assert x.shape == (20000, 2) and x.dtype == torch.float32
    assert (x >= low).all() and (x <= high).all()
    se = (high - low) / math.sqrt(12 * 20000)
    assert ((x.mean(0) - (low + high) / 2).abs() < K * se).all()


def test_uniform_init_from_bounds_pads_by_a_fraction_of_the_width() -> None:
    dist = UniformInit.from_bounds(torch.tensor([0.0, -2.0]), torch.tensor([10.0, 2.0]))
    torch.testing.assert_close(dist.low.float(), torch.tensor([-1.0, -2.4]))
    torch.testing.assert_close(dist.high.float(), torch.tensor([11.0, 2.4]))
    data = torch.tensor([[0.0, 1.0], [2.0, 5.0], [1.0, 3.0]])
    box = UniformInit.from_data(data, pad=0.5)
    torch.testing.assert_close(box.low.float(), torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(box.high.float(), torch.tensor([3.0, 7.0]))


def test_uniform_init_scalar_bounds_images_and_dtype() -> None:
    x = UniformInit(-1.0, 1.0).sample(8, (3, 4, 4), _gen(1), "cpu", torch.float64)
    assert x.shape == (8, 3, 4, 4) and x.dtype == torch.float64
    assert x.abs().max() <= 1.0


def test_init_distributions_are_reproducible() -> None:
    for dist in (UniformInit(-2.0, 2.0), GaussianInit(1.0, 0.5)):
        a, b = dist.sample(16, (2,), _gen(3)), dist.sample(16, (2,), _gen(3))
        assert torch.equal(a, b) and not torch.equal(a, dist.sample(16, (2,), _gen(4)))


def test_gaussian_init_moments() -> None:
    x = GaussianInit(torch.tensor([1.0, -3.0]), torch.tensor([0.5, 2.0])).sample(20000, (2,), _gen(2))
    se_mean = torch.tensor([0.5, 2.0]) / math.sqrt(20000)
    assert ((x.mean(0) - torch.tensor([1.0, -3.0])).abs() < K * se_mean).all()
    # SE of a normal sample std ≈ σ / sqrt(2n)
    assert ((x.std(0) - torch.tensor([0.5, 2.0])).abs() < K * torch.tensor([0.5, 2.0]) / math.sqrt(40000)).all()


def test_init_distribution_errors() -> None:
    with pytest.raises(ValueError, match="high > low"):
        UniformInit(1.0, 1.0)
    with pytest.raises(ValueError, match="broadcast"):
        UniformInit(torch.zeros(3), torch.ones(3)).sample(4, (2,))
    with pytest.raises(ValueError, match="pad"):
        UniformInit.from_bounds(0.0, 1.0, pad=-0.1)
    with pytest.raises(ValueError, match="std > 0"):
        GaussianInit(0.0, 0.0)
    with pytest.raises(ValueError, match="positive int"):
        UniformInit().sample(0, (2,))


# ---------------------------------------------------------------- short-run and CD-k
def test_noise_init_follows_the_data_and_needs_a_distribution() -> None:
    data = torch.zeros(10, 3, dtype=torch.float64)
    init = NoiseInit(None)
    with pytest.raises(RuntimeError, match="no init distribution"):
        init.initial(data)
    init.set_init(UniformInit(5.0, 6.0))
    x = init.initial(data, _gen(0))
    assert x.shape == (10, 3) and x.dtype == torch.float64
    assert (x >= 5).all() and (x <= 6).all()
    init.update(x)  # stateless: accepted and ignored
    assert init.state_dict() == {}


def test_data_init_is_a_copy_of_the_batch_plus_optional_noise() -> None:
    data = torch.randn(5000, 2, generator=_gen(1))
    x = DataInit().initial(data)
    assert torch.equal(x, data)
    x.add_(1.0)
    assert not torch.equal(x, data)  # a copy, not a view
    noisy = DataInit(noise_std=0.1).initial(data, _gen(2)) - data
    assert abs(float(noisy.std()) - 0.1) < K * 0.1 / math.sqrt(2 * noisy.numel())
    with pytest.raises(ValueError, match="noise_std"):
        DataInit(noise_std=-1.0)


# ---------------------------------------------------------------- replay buffer
def test_buffer_fills_lazily_draws_distinct_slots_and_writes_back() -> None:
    buf = ReplayBuffer(UniformInit(0.0, 1.0), capacity=100, restart_prob=0.0)
    assert not buf.filled and buf.chains is None
    data = torch.zeros(30, 2)
    x = buf.initial(data, _gen(0))
    assert buf.filled and buf.chains.shape == (100, 2)
    assert (buf.chains >= 0).all() and (buf.chains <= 1).all()
    idx = buf.last_indices
    assert len(set(idx.tolist())) == 30  # distinct slots: write-back is unambiguous
    torch.testing.assert_close(x, buf.chains[idx])
    before = buf.chains.clone()
    marker = torch.arange(60.0).reshape(30, 2) + 10
    buf.update(marker)
    torch.testing.assert_close(buf.chains[idx], marker)
    untouched = torch.ones(100, dtype=torch.bool)
    untouched[idx] = False
    torch.testing.assert_close(buf.chains[untouched], before[untouched])


def test_buffer_restarts_at_the_configured_rate_from_the_init_distribution() -> None:
    p, n, draws = 0.05, 250, 200
    buf = ReplayBuffer(UniformInit(0.0, 1.0), capacity=1000, restart_prob=p)
    g = _gen(1)
    buf.initial(torch.zeros(n, 2), g)
    buf.chains.fill_(100.0)  # persistent chains far from the init box
    restarted = 0
    for _ in range(draws):
        x = buf.initial(torch.zeros(n, 2), g)
        fresh = (x <= 1.0).all(1)
        # A restart is a real draw from the init distribution, not a perturbation of the stored chain.
        assert ((x[fresh] >= 0) & (x[fresh] <= 1)).all()
        assert (x[~fresh] == 100.0).all()
        assert torch.equal(fresh, buf.last_restarted)
        restarted += int(fresh.sum())
    total = n * draws
    assert abs(restarted / total - p) < K * math.sqrt(p * (1 - p) / total)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_buffer_restart_extremes(p: float) -> None:
    buf = ReplayBuffer(UniformInit(0.0, 1.0), capacity=50, restart_prob=p)
    buf.initial(torch.zeros(50, 1), _gen(2))
    buf.chains.fill_(7.0)
    x = buf.initial(torch.zeros(50, 1), _gen(3))
    assert bool((x == 7.0).all()) is (p == 0.0)
    assert bool((x <= 1.0).all()) is (p == 1.0)


def _used_buffer() -> tuple[ReplayBuffer, torch.Generator]:
    buf = ReplayBuffer(GaussianInit(), capacity=64, restart_prob=0.2)
    g = _gen(4)
    for _ in range(3):
        x = buf.initial(torch.zeros(16, 3), g)
        buf.update(x + 1.0)
    buf.initial(torch.zeros(16, 3), g)  # leave a draw pending: its slot indices must survive too
    return buf, g


def _assert_same_future(a: ReplayBuffer, b: ReplayBuffer) -> None:
    torch.testing.assert_close(a.chains, b.chains)
    assert torch.equal(a.last_indices, b.last_indices)
    samples = torch.full((16, 3), -5.0)
    a.update(samples)
    b.update(samples)
    torch.testing.assert_close(a.chains, b.chains)
    xa, xb = a.initial(torch.zeros(16, 3), _gen(9)), b.initial(torch.zeros(16, 3), _gen(9))
    torch.testing.assert_close(xa, xb)


def test_buffer_state_dict_round_trip() -> None:
    buf, _ = _used_buffer()
    state = buf.state_dict()
    assert state["filled"] and state["capacity"] == 64
    restored = ReplayBuffer(GaussianInit(), capacity=64, restart_prob=0.2)
    restored.load_state_dict(state)
    assert restored.filled
    _assert_same_future(buf, restored)


def test_buffer_state_survives_torch_save_and_load(tmp_path) -> None:
    buf, _ = _used_buffer()
    path = tmp_path / "buffer.pt"
    torch.save({"ebm_chains": buf.state_dict()}, path)
    state = torch.load(path)  # default weights_only=True: the state holds only tensors and numbers
    restored = ReplayBuffer(None, capacity=64)
    restored.load_state_dict(state["ebm_chains"])
    restored.set_init(GaussianInit())
    assert restored.restart_prob == 0.2
    _assert_same_future(buf, restored)


def test_buffer_state_of_an_unfilled_buffer_round_trips() -> None:
    state = ReplayBuffer(None, capacity=10).state_dict()
    restored = ReplayBuffer(None, capacity=10)
    restored.load_state_dict(state)
    assert not restored.filled


def test_buffer_follows_the_data_dtype_after_restore() -> None:
    buf, _ = _used_buffer()
    restored = ReplayBuffer(GaussianInit(), capacity=64)
    restored.load_state_dict(buf.state_dict())
    x = restored.initial(torch.zeros(16, 3, dtype=torch.float64), _gen(5))
    assert x.dtype == torch.float64 and restored.chains.dtype == torch.float64


def test_buffer_errors() -> None:
    with pytest.raises(RuntimeError, match="set_init"):
        ReplayBuffer(None).initial(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(UniformInit(), capacity=8).initial(torch.zeros(9, 2))
    with pytest.raises(ValueError, match="restart_prob"):
        ReplayBuffer(UniformInit(), restart_prob=1.5)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(UniformInit(), capacity=0)
    with pytest.raises(TypeError, match="sample"):
        ReplayBuffer(init_dist="uniform")
    buf = ReplayBuffer(UniformInit(), capacity=20)
    with pytest.raises(RuntimeError, match="before initial"):
        buf.update(torch.zeros(4, 2))
    buf.initial(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="update"):
        buf.update(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="chain shape"):
        buf.initial(torch.zeros(4, 3))
    with pytest.raises(KeyError, match="missing"):
        buf.load_state_dict({"chains": None})


def test_persistent_chains_continue_across_training_steps() -> None:
    # PCD: 30 rounds of 10 Langevin steps through the buffer reach the stationary law of one 300-step run
    # (exactly known for ULA on a Gaussian); 300 steps from the init box alone would not be enough if the
    # chains did not persist, since 10 steps contract the initial spread by only (1 − ηλ_min)^10 ≈ 0.7.
    target = gaussian_2d()
    n, eta = 2000, 0.05
    buf = ReplayBuffer(UniformInit(-3.0, 3.0), capacity=n, restart_prob=0.0)
    sampler = Langevin(step_size=eta)
    g = _gen(6)
    data = torch.zeros(n, 2, dtype=torch.float64)
    for _ in range(30):
        x = buf.initial(data, g)
        buf.update(sampler.run(target, x, 10, generator=g).x)
    stationary = ula_stationary_cov(target.precision, eta, math.sqrt(2 * eta))
    assert mean_z(buf.chains, target.mean, stationary).abs().max() < K
    assert cov_z(buf.chains, stationary).abs().max() < K

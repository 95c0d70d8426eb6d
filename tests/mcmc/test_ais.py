"""Annealed importance sampling: log Z of Gaussians (d = 2, 10, 64) and of a 2-D mixture against closed forms and a
grid, the forward/reverse bracket, a bounded base, chunking, the DDP gather, and clear errors.

Tolerance. ``log Ẑ = log mean w`` over n chains has, by the delta method, standard error
``se ≈ sd(w) / (√n mean w)`` (what ``AISResult.stderr`` reports) and, one order further, a downward bias
``E[log Ẑ] − log Z ≈ −Var(Ẑ)/(2Z²) = −se²/2`` (Jensen). The reverse estimate ``−log mean w_rev`` has the same se and
the opposite bias. So an estimate is accepted when ``|log Ẑ ± se²/2 − log Z| < K·se`` with K = 4, in settings where
the weights' ESS is a good fraction of n (there ``se`` itself is estimated within a few tens of percent).
"""

from __future__ import annotations

import math
import time

import pytest
import torch
from _mcmc_targets import K, MixtureEnergy
from torch.distributions import Normal

from lit_gen.mcmc import (
    HMC,
    MALA,
    AISResult,
    MCMCSampler,
    ais_bracket,
    ais_log_partition,
    ais_log_partition_reverse,
    annealing_schedule,
    fit_gaussian_base,
    gather_log_weights,
    uniform_box_base,
    weight_statistics,
)
from lit_gen.mcmc.base import _log_uniform, _randn_like


class GaussianND:
    """``E(x) = ½ (x − μ)ᵀ Σ⁻¹ (x − μ)`` with a random full covariance; ``log Z = d/2 log 2π + ½ log det Σ``."""

    def __init__(self, d: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        self.cov = a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)
        self.mean = torch.randn(d, generator=g, dtype=torch.float64)
        self.precision = torch.linalg.inv(self.cov)
        self.log_z = d / 2 * math.log(2 * math.pi) + 0.5 * float(torch.logdet(self.cov))
        self._chol = torch.linalg.cholesky(self.cov)
        self._g = g

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = x - self.mean
        return 0.5 * ((z @ self.precision) * z).sum(1)

    def sample(self, n: int) -> torch.Tensor:
        return self.mean + torch.randn(n, self.mean.numel(), generator=self._g, dtype=torch.float64) @ self._chol.T


def _assert_agrees(result: AISResult, truth: float) -> None:
    sign = 1.0 if result.direction == "forward" else -1.0
    debiased = result.log_z + sign * result.stderr**2 / 2
    assert abs(debiased - truth) < K * result.stderr, (result.log_z, result.stderr, truth)
    n = result.log_weights.numel()
    assert 0 < result.ess <= n * (1 + 1e-12)


@pytest.mark.parametrize(
    ("d", "num_chains", "num_steps", "step"),
    [(2, 128, 50, 0.3), (10, 128, 100, 0.2), (64, 128, 150, 0.15)],
    ids=["d2", "d10", "d64"],
)
def test_forward_and_reverse_ais_recover_the_gaussian_log_partition(d, num_chains, num_steps, step) -> None:
    target = GaussianND(d, seed=d)
    data = target.sample(2000)
    base = fit_gaussian_base(data)  # diagonal fit to a full-covariance target, as on real data
    g = torch.Generator().manual_seed(1)
    forward = ais_log_partition(target, base, num_chains=num_chains, num_steps=num_steps, sampler=MALA(step),
                                generator=g)
    reverse = ais_log_partition_reverse(target, base, data[:num_chains], num_steps=num_steps, sampler=MALA(step),
                                        generator=g)
    for result in (forward, reverse):
        _assert_agrees(result, target.log_z)
        assert result.ess > 0.1 * num_chains  # the regime where se is trustworthy
        assert result.log_weights.shape == (num_chains,) and result.samples.shape == (num_chains, d)
        assert 0.5 < result.acceptance_rate < 1.0
        assert result.num_steps == num_steps
    assert forward.direction == "forward" and reverse.direction == "reverse"


def test_ais_with_hmc_transitions() -> None:
    target = GaussianND(10, seed=10)
    base = fit_gaussian_base(target.sample(2000))
    result = ais_log_partition(target, base, num_chains=128, num_steps=60, sampler=HMC(0.25, 4),
                               generator=torch.Generator().manual_seed(2))
    _assert_agrees(result, target.log_z)
    assert 0.5 < result.acceptance_rate < 1.0


def _mixture_with_normaliser():
    """The two-component 2-D mixture, shifted by −log Z: ``E(x) = −log p(x) − log Z`` with ``log Z = 1.3``."""
    mixture = MixtureEnergy()
    log_z = 1.3

    def energy(x: torch.Tensor) -> torch.Tensor:
        return mixture(x) - log_z

    g = torch.Generator().manual_seed(3)
    comp = (torch.rand(4000, generator=g) < mixture.w[1]).long()
    chol = torch.linalg.cholesky(mixture.cov)
    exact = mixture.mu[comp] + (chol[comp] @ torch.randn(4000, 2, 1, generator=g, dtype=torch.float64)).squeeze(-1)
    return energy, log_z, exact


def test_ais_on_a_2d_mixture_agrees_with_the_truth_and_the_grid() -> None:
    energy, log_z, exact = _mixture_with_normaliser()
    # the grid: a Riemann sum of exp(−E) over [−7, 7]², where the mixture has all but ~1e-20 of its mass
    side = torch.linspace(-7, 7, 561, dtype=torch.float64)
    grid = torch.cartesian_prod(side, side)
    cell = float(side[1] - side[0]) ** 2
    grid_log_z = float(torch.logsumexp(-energy(grid), 0)) + math.log(cell)
    assert abs(grid_log_z - log_z) < 1e-6
    base = fit_gaussian_base(exact, full_covariance=True)
    g = torch.Generator().manual_seed(4)
    forward = ais_log_partition(energy, base, num_chains=200, num_steps=100, sampler=MALA(0.15), generator=g)
    reverse = ais_log_partition_reverse(energy, base, exact[:200], num_steps=100, sampler=MALA(0.15), generator=g)
    for result in (forward, reverse):
        _assert_agrees(result, log_z)
        _assert_agrees(result, grid_log_z)


def _group_estimates(log_weights: torch.Tensor, size: int) -> torch.Tensor:
    """``log mean w`` over consecutive groups of ``size`` chains: independent estimates, each as biased as one run of
    ``size`` chains."""
    groups = log_weights.reshape(-1, size)
    return torch.logsumexp(groups, 1) - math.log(size)


def test_bracket_contains_the_truth_in_expectation_and_tightens_with_longer_schedules() -> None:
    # Forward ≤ log Z ≤ reverse holds in expectation (Jensen), not run by run: with a good fit both estimates of
    # one run fall within their noise of the truth, on either side. So the expectation is measured: 2000 chains
    # make 200 independent runs of 10 chains, whose mean estimate has a standard error from their spread; short
    # anneals in d = 64 (the log weights' variance grows with d) make the Jensen gap many such errors wide.
    target = GaussianND(64, seed=64)
    data = target.sample(2000)  # exact samples: the reverse direction is an upper bound in expectation
    base = fit_gaussian_base(target.sample(2000))
    gaps = []
    for num_steps in (5, 20):
        bracket = ais_bracket(target, base, data, num_chains=2000, num_steps=num_steps, sampler=MALA(0.1),
                              generator=torch.Generator().manual_seed(5))
        lower = _group_estimates(bracket.forward.log_weights, 10)
        upper = -_group_estimates(bracket.reverse.log_weights, 10)
        se_lower, se_upper = (float(v.std() / math.sqrt(v.numel())) for v in (lower, upper))
        assert float(lower.mean()) + K * se_lower < target.log_z < float(upper.mean()) - K * se_upper
        # the all-chains estimates: each at most a few of its standard errors on the wrong side (Markov's bound)
        assert bracket.forward.log_z < target.log_z + K * bracket.forward.stderr
        assert bracket.reverse.log_z > target.log_z - K * bracket.reverse.stderr
        mean_energy = float(target(data).mean())
        assert bracket.mean_energy == pytest.approx(mean_energy)
        assert bracket.nll_lower == pytest.approx(mean_energy + bracket.forward.log_z)
        assert bracket.nll_upper == pytest.approx(mean_energy + bracket.reverse.log_z)
        assert bracket.reverse.log_weights.numel() == 2000
        gaps.append((float(upper.mean() - lower.mean()), math.hypot(se_lower, se_upper)))
    (short, se_short), (long, se_long) = gaps
    assert long + K * se_long < short - K * se_short


def test_one_step_is_plain_importance_sampling_from_the_base() -> None:
    target = GaussianND(2, seed=2)
    base = fit_gaussian_base(target.sample(500))
    result = ais_log_partition(target, base, num_chains=300, num_steps=1, generator=torch.Generator().manual_seed(6))
    x = result.samples  # no transition: the base draws themselves
    torch.testing.assert_close(result.log_weights, (-base.log_prob(x) - target(x)).double())
    log_mean, se, ess = weight_statistics(result.log_weights)
    assert (result.log_z, result.stderr, result.ess) == (log_mean, se, ess)
    assert math.isnan(result.acceptance_rate)
    _assert_agrees(result, target.log_z)


def test_weighted_forward_samples_reproduce_the_target_mean() -> None:
    target = GaussianND(2, seed=2)
    base = fit_gaussian_base(target.sample(500), scale=1.5)
    result = ais_log_partition(target, base, num_chains=400, num_steps=30, sampler=MALA(0.3),
                               generator=torch.Generator().manual_seed(7))
    w = torch.softmax(result.log_weights, 0)
    mean = (w[:, None] * result.samples).sum(0)
    assert ((mean - target.mean).abs() / (torch.diagonal(target.cov) / result.ess).sqrt()).max() < K


def test_uniform_base_estimates_the_normaliser_restricted_to_the_box() -> None:
    # E = x²/2 on x ∈ [0, 3]: ∫ = √(2π) (Φ(3) − ½); chains never leave the box before β = 1
    def energy(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).sum(1)

    base = uniform_box_base(torch.tensor([0.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64))
    truth = math.log(math.sqrt(2 * math.pi) * (0.5 * math.erfc(-3 / math.sqrt(2)) - 0.5))
    result = ais_log_partition(energy, base, num_chains=200, num_steps=40, sampler=MALA(0.1),
                               generator=torch.Generator().manual_seed(8))
    _assert_agrees(result, truth)
    assert bool(((result.samples >= 0) & (result.samples <= 3)).all())
    with pytest.raises(ValueError, match="outside the base's support"):
        ais_log_partition_reverse(energy, base, torch.tensor([[1.0], [4.0]], dtype=torch.float64), num_steps=5)
    box = uniform_box_base(-1.0, 1.0, event_shape=(2, 3))
    assert tuple(box.event_shape) == (2, 3) and tuple(box.batch_shape) == ()


class _RandomWalkMetropolis(MCMCSampler):
    """A sampler of one's own (Gaussian random-walk Metropolis), to exercise the generic transition path."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def _run(self, energy, x, num_steps, generator):
        with torch.no_grad():
            e = energy(x)
            accepted = 0.0
            for _ in range(num_steps):
                prop = x + self.scale * _randn_like(x, generator)
                e_prop = energy(prop)
                accept = _log_uniform(x.shape[0], generator, x.device) < (e - e_prop)
                accepted += float(accept.double().mean())
                x = torch.where(accept[:, None], prop, x)
                e = torch.where(accept, e_prop, e)
        return x, {"acceptance_rate": accepted / num_steps}


def test_any_sampler_can_drive_the_transitions() -> None:
    target = GaussianND(2, seed=2)
    base = fit_gaussian_base(target.sample(500))
    result = ais_log_partition(target, base, num_chains=128, num_steps=40, sampler=_RandomWalkMetropolis(0.5),
                               generator=torch.Generator().manual_seed(9))
    _assert_agrees(result, target.log_z)
    assert 0.2 < result.acceptance_rate < 1.0


def test_chunks_schedules_and_reproducibility() -> None:
    target = GaussianND(2, seed=2)
    base = fit_gaussian_base(target.sample(500))

    def run(num_steps: int | None = 20, **kw) -> AISResult:
        return ais_log_partition(target, base, num_chains=100, num_steps=num_steps, sampler=MALA(0.3),
                                 generator=torch.Generator().manual_seed(10), **kw)

    state = torch.random.get_rng_state()
    whole = run()
    assert torch.equal(torch.random.get_rng_state(), state)  # base draws come from the generator, not the global RNG
    assert torch.equal(run().log_weights, whole.log_weights)
    assert torch.equal(run(chunk_size=100).log_weights, whole.log_weights)
    chunked = run(chunk_size=32)
    assert chunked.log_weights.shape == (100,) and chunked.samples.shape == (100, 2)
    _assert_agrees(chunked, target.log_z)
    linear = run(schedule="linear")
    _assert_agrees(linear, target.log_z)
    explicit = run(schedule=annealing_schedule(20, "linear"), num_steps=None)
    assert torch.equal(explicit.log_weights, linear.log_weights)
    beta = annealing_schedule(50)
    assert beta[0] == 0 and beta[-1] == 1 and bool((beta[1:] > beta[:-1]).all())
    # the sigmoid schedule is denser at both ends than the linear one
    assert beta[1] < 1 / 50 and 1 - beta[-2] < 1 / 50


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_runs_under_any_grad_mode(mode: str) -> None:
    target = GaussianND(2, seed=2)
    data = target.sample(64)
    reference = ais_bracket(target, fit_gaussian_base(data), data, num_chains=16, num_steps=5,
                            generator=torch.Generator().manual_seed(12))
    with {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}[mode]():
        inner = data.clone()  # an inference tensor under inference mode, and so is the base fitted to it
        bracket = ais_bracket(target, fit_gaussian_base(inner), inner, num_chains=16, num_steps=5,
                              generator=torch.Generator().manual_seed(12))
    torch.testing.assert_close(bracket.forward.log_weights, reference.forward.log_weights)
    torch.testing.assert_close(bracket.reverse.log_weights, reference.reverse.log_weights)


def test_bad_input_is_a_clear_error() -> None:
    target = GaussianND(2, seed=2)
    batched = Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match=r"batch shape \(\).*Independent\(base, 1\)"):
        ais_log_partition(target, batched, num_chains=4, num_steps=3)
    with pytest.raises(TypeError, match="torch.distributions"):
        ais_log_partition(target, "normal", num_chains=4, num_steps=3)
    base = fit_gaussian_base(target.sample(100))
    with pytest.raises(ValueError, match=r"energy must return shape \(B,\)"):
        ais_log_partition(lambda x: (x**2).sum(), base, num_chains=4, num_steps=3)
    with pytest.raises(ValueError, match="at least two chains"):
        ais_log_partition(target, base, num_chains=1, num_steps=3)
    with pytest.raises(ValueError, match="start at β = 0"):
        ais_log_partition(target, base, num_chains=4, num_steps=None, schedule=torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        ais_log_partition(target, base, num_chains=4, num_steps=None, schedule=torch.tensor([0.0, 0.7, 0.5, 1.0]))
    with pytest.raises(ValueError, match="event shape"):
        ais_log_partition_reverse(target, base, torch.zeros(4, 3, dtype=torch.float64), num_steps=3)

    def overflowing(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x[:, 0] > 0.5, torch.full_like(x[:, 0], math.nan), target(x))

    with pytest.raises(FloatingPointError, match="non-finite"):
        ais_log_partition(overflowing, base, num_chains=50, num_steps=10, sampler=MALA(0.3),
                          generator=torch.Generator().manual_seed(11))
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_gaussian_base(torch.tensor([[0.0, 1.0], [math.nan, 2.0]]))


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        target = GaussianND(2, seed=2)
        base = fit_gaussian_base(target.sample(200))
        mine = ais_log_partition(target, base, num_chains=20 + 10 * rank, num_steps=10, sampler=MALA(0.3),
                                 generator=torch.Generator().manual_seed(100 + rank), gather=False)
        pooled = ais_log_partition(target, base, num_chains=20 + 10 * rank, num_steps=10, sampler=MALA(0.3),
                                   generator=torch.Generator().manual_seed(100 + rank))
        torch.save({"mine": mine.log_weights, "pooled": pooled.log_weights, "log_z": pooled.log_z,
                    "samples": pooled.samples.shape[0], "gathered": gather_log_weights(mine.log_weights)},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_log_weights_are_gathered_across_ranks(tmp_path) -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    import torch.multiprocessing as mp

    # fork: the ranks inherit the imported modules (a spawned rank spends seconds importing torch); the suite runs
    # torch single-threaded, so no thread pool is copied mid-flight
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                                 join=False, start_method=method)
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two DDP ranks did not finish within 120 s")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    expected = torch.cat([r0["mine"], r1["mine"]])  # rank order; ranks hold 20 and 30 chains
    for r in (r0, r1):
        assert torch.equal(r["pooled"], expected) and torch.equal(r["gathered"], expected)
        assert r["log_z"] == weight_statistics(expected)[0]
    assert (r0["samples"], r1["samples"]) == (20, 30)  # samples stay on their rank
    assert torch.equal(gather_log_weights(r0["mine"]), r0["mine"])  # no process group: unchanged

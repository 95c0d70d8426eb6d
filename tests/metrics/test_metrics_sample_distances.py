import math

import pytest
import torch

from lit_gen.metrics import (
    MaximumMeanDiscrepancy,
    SlicedWassersteinDistance,
    mmd2_unbiased,
    random_directions,
    sliced_wasserstein,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _normal(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 2, generator=_gen(seed))


# ----------------------------------------------------------------------------- sliced Wasserstein


def test_sw_of_identical_sets_is_zero():
    a = torch.randn(500, 2, generator=_gen(0))
    assert sliced_wasserstein(a, a).item() == 0.0
    # Order does not matter: a permutation is the same empirical measure.
    perm = torch.randperm(500, generator=_gen(1))
    assert sliced_wasserstein(a, a[perm]).item() == pytest.approx(0, abs=1e-6)


def test_sw_of_a_shift_is_c_times_mean_abs_u1():
    a = torch.randn(1000, 2, generator=_gen(0))
    c = 0.8
    sw = sliced_wasserstein(a, a + torch.tensor([c, 0.0]), num_projections=512, seed=0).item()
    # Projecting shifts every order statistic by c*u1, so SW1 = c * mean_k |u_k1| exactly ...
    u = random_directions(512, 2, seed=0)
    assert sw == pytest.approx(c * u[:, 0].abs().mean().item(), rel=1e-5)
    # ... and E|u1| = 2/pi for u uniform on the circle; Var|cos θ| = 1/2 - 4/pi^2, so K=512 has SE below.
    se = c * math.sqrt(0.5 - 4 / math.pi**2) / math.sqrt(512)
    assert abs(sw - c * 2 / math.pi) < 4 * se


def test_sw_same_distribution_small_vs_shifted():
    a = torch.randn(2000, 2, generator=_gen(0))
    b = torch.randn(2000, 2, generator=_gen(1))
    same = sliced_wasserstein(a, b).item()
    shifted = sliced_wasserstein(a, b + torch.tensor([0.5, 0.0])).item()
    # Two independent n=2000 samples: W1 of 1-D projections is O(n^-1/2) ≈ 0.02; the shift gives ≈ 0.32.
    assert same < 0.06
    assert shifted > 0.25
    assert shifted > 5 * same


def test_sw_seed_fixes_directions_and_images_are_flattened():
    a = torch.randn(64, 1, 4, 4, generator=_gen(0))
    b = torch.randn(64, 1, 4, 4, generator=_gen(1))
    v = sliced_wasserstein(a, b, seed=3)
    assert v.item() == sliced_wasserstein(a, b, seed=3).item()
    assert v.item() == pytest.approx(sliced_wasserstein(a.flatten(1), b.flatten(1), seed=3).item())
    assert v.item() != sliced_wasserstein(a, b, seed=4).item()


def test_sw_errors():
    with pytest.raises(ValueError, match="equal-size"):
        sliced_wasserstein(torch.randn(10, 2), torch.randn(11, 2))
    with pytest.raises(ValueError, match="dimensions"):
        sliced_wasserstein(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(ValueError, match="num_projections"):
        sliced_wasserstein(torch.randn(10, 2), torch.randn(10, 2), num_projections=0)
    a = torch.randn(10, 2)
    a[0, 0] = float("nan")
    assert torch.isnan(sliced_wasserstein(a, torch.randn(10, 2)))


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_sw_metric_accumulates_like_the_function():
    a = torch.randn(300, 2, generator=_gen(0))
    b = torch.randn(300, 2, generator=_gen(1)) + 0.3
    metric = SlicedWassersteinDistance(num_projections=128, seed=5)
    for i in range(0, 300, 100):
        metric.update(a[i : i + 100], b[i : i + 100])
    torch.testing.assert_close(metric.compute(), sliced_wasserstein(a, b, 128, seed=5))
    metric.reset()
    with pytest.raises(ValueError, match="update"):
        metric.compute()


def _duplicate_rank_sync(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
    """Stands in for all_gather with two ranks that hold the same states."""
    return [tensor, tensor.clone()]


def test_metrics_concatenate_states_across_processes():
    # A 'sum' reduction would double the samples (SW doubles); 'cat' gives the function of the gathered sets.
    a = torch.randn(50, 2, generator=_gen(0))
    b = torch.randn(50, 2, generator=_gen(1)) + 1.0
    for metric, fn in [
        (SlicedWassersteinDistance, lambda p, t: sliced_wasserstein(p, t)),
        (MaximumMeanDiscrepancy, lambda p, t: mmd2_unbiased(p, t)),
    ]:
        m = metric(dist_sync_fn=_duplicate_rank_sync, distributed_available_fn=lambda: True)
        m.update(a[:20], b[:20])
        m.update(a[20:], b[20:])
        torch.testing.assert_close(m.compute(), fn(torch.cat([a, a]), torch.cat([b, b])))


# ----------------------------------------------------------------------------- MMD


def test_mmd_hand_computed_on_three_points():
    # a = {0, 1}, b = {0, 3} in 1-D; k(d) = exp(-d²/2) + exp(-d²/8) for bandwidths (1, 2).
    def k(d: float) -> float:
        return math.exp(-(d**2) / 2) + math.exp(-(d**2) / 8)

    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [3.0]])
    k_aa = 2 * k(1) / (2 * 1)
    k_bb = 2 * k(3) / (2 * 1)
    k_ab = (k(0) + k(3) + k(1) + k(2)) / 4
    expected = k_aa + k_bb - 2 * k_ab
    assert mmd2_unbiased(a, b, bandwidths=(1.0, 2.0)).item() == pytest.approx(expected, rel=1e-6)
    same = 2 * k(1) - (2 * k(0) + 2 * k(1)) / 2
    assert mmd2_unbiased(a, a, bandwidths=(1.0, 2.0)).item() == pytest.approx(same)


def test_mmd_same_distribution_is_unbiased_and_grows_with_shift():
    # Under equal distributions the U-statistic has mean 0 (a biased V-statistic is always > 0).
    seeds = range(0, 60, 2)
    values = torch.stack([mmd2_unbiased(_normal(200, s), _normal(200, s + 1)) for s in seeds])
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean().item()) < 3 * se.item()
    assert (values < 0).any()
    a = torch.randn(500, 2, generator=_gen(100))
    b = torch.randn(500, 2, generator=_gen(101))
    shifts = [0.5, 1.0, 2.0]
    mmds = [mmd2_unbiased(a, b + torch.tensor([s, 0.0])).item() for s in shifts]
    null_sd = values.std().item() * 200 / 500  # null SD scales as 1/n
    assert mmds[0] > 5 * null_sd
    assert mmds[0] < mmds[1] < mmds[2]


def test_mmd_chunking_and_unequal_sizes():
    a = torch.randn(103, 3, generator=_gen(0))
    b = torch.randn(57, 3, generator=_gen(1)) + 0.2
    full = mmd2_unbiased(a, b, chunk_size=1000)
    torch.testing.assert_close(mmd2_unbiased(a, b, chunk_size=7), full)
    torch.testing.assert_close(mmd2_unbiased(a, b), full)


def test_mmd_metric_accumulates_like_the_function():
    a = torch.randn(90, 2, generator=_gen(0))
    b = torch.randn(60, 2, generator=_gen(1)) + 0.5
    metric = MaximumMeanDiscrepancy(bandwidths=(0.5, 1.0))
    metric.update(a[:30], b[:20])
    metric.update(a[30:], b[20:])
    torch.testing.assert_close(metric.compute(), mmd2_unbiased(a, b, bandwidths=(0.5, 1.0)))


def test_mmd_errors():
    with pytest.raises(ValueError, match="at least 2"):
        mmd2_unbiased(torch.randn(1, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match="bandwidths"):
        mmd2_unbiased(torch.randn(5, 2), torch.randn(5, 2), bandwidths=(0.0,))
    with pytest.raises(ValueError, match="dimensions"):
        mmd2_unbiased(torch.randn(5, 2), torch.randn(5, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        mmd2_unbiased([[0.0, 1.0]], torch.randn(5, 2))

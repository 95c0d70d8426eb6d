"""2D toy sets: shapes, seeding, and agreement with the FFJORD definitions (Grathwohl et al. 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_circles, make_moons, make_swiss_roll

from lit_gen.data import TOY_DATASETS, Toy2DDataModule, sample_toy2d, toy_log_prob, toy_mixture


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_all_names_listed() -> None:
    expected = {"8gaussians", "25gaussians", "swissroll", "2spirals", "pinwheel", "checkerboard", "rings"}
    assert expected | {"moons", "circles"} <= set(TOY_DATASETS)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_shape_dtype_seeding(name: str) -> None:
    a = sample_toy2d(name, 1001, gen(0))
    assert a.shape == (1001, 2) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and a.abs().max() < 6.0
    torch.testing.assert_close(a, sample_toy2d(name, 1001, gen(0)))
    assert not torch.equal(a, sample_toy2d(name, 1001, gen(1)))
    assert sample_toy2d(name, 0).shape == (0, 2)
    assert sample_toy2d(name, 3, gen(0)).shape == (3, 2)
    # Without a generator the global torch seed decides.
    torch.manual_seed(5)
    b = sample_toy2d(name, 50)
    torch.manual_seed(5)
    torch.testing.assert_close(b, sample_toy2d(name, 50))


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown toy dataset 'spiral'") as info:
        sample_toy2d("spiral", 10)
    for name in TOY_DATASETS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="valid names"):
        Toy2DDataModule(name="nope")
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        sample_toy2d("moons", -1)


def _cluster_stats(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, ...]:
    label = torch.cdist(x.double(), centers).argmin(dim=1)
    counts = torch.bincount(label, minlength=len(centers))
    means = torch.stack([x[label == k].double().mean(0) for k in range(len(centers))])
    stds = torch.stack([x[label == k].double().std(0) for k in range(len(centers))])
    return counts, means, stds


def test_8gaussians_definition() -> None:
    n = 40000
    x = sample_toy2d("8gaussians", n, gen(0))
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centers = 4.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1) / 1.414
    counts, means, stds = _cluster_stats(x, centers)
    sigma = 0.5 / 1.414
    # Shares: binomial SE; means: sigma / sqrt(n_k); stds: sigma / sqrt(2 (n_k - 1)). All within 4 SE.
    assert ((counts / n - 1 / 8).abs() < 4 * math.sqrt(1 / 8 * 7 / 8 / n)).all()
    assert ((means - centers).abs() < 4 * sigma / counts.sqrt()[:, None]).all()
    assert ((stds - sigma).abs() < 4 * sigma / (2 * (counts[:, None] - 1)).sqrt()).all()


def test_25gaussians_definition() -> None:
    n = 50000
    x = sample_toy2d("25gaussians", n, gen(1))
    grid = torch.arange(-2, 3, dtype=torch.float64) * 2
    centers = torch.cartesian_prod(grid, grid) / 2.828
    counts, means, stds = _cluster_stats(x, centers)
    sigma = 0.1 / 2.828
    assert ((counts / n - 1 / 25).abs() < 4 * math.sqrt(1 / 25 * 24 / 25 / n)).all()
    assert ((means - centers).abs() < 4 * sigma / counts.sqrt()[:, None]).all()
    assert ((stds - sigma).abs() < 4 * sigma / (2 * (counts[:, None] - 1)).sqrt()).all()


def test_unequal_gaussians_density_normalises_and_weights_are_10_4_2_1() -> None:
    log_p = toy_log_prob("unequal_gaussians")
    mixture = toy_mixture("unequal_gaussians")
    assert log_p is not None and mixture is not None and mixture.num_components == 4
    # the exact density integrates to one on a fine grid (midpoint rule; the modes lie well inside [-5, 5]²)
    cell = 0.01
    g = torch.arange(-5 + cell / 2, 5, cell, dtype=torch.float64)
    grid = torch.cartesian_prod(g, g)
    assert abs(float(log_p(grid).exp().sum()) * cell**2 - 1.0) < 1e-4
    # empirical mode shares ≈ 10 : 4 : 2 : 1 within 4 binomial standard errors, a factor 10 between extremes
    n = 40000
    x = sample_toy2d("unequal_gaussians", n, gen(6))
    counts, means, stds = _cluster_stats(x, mixture.means)
    weights = torch.tensor([10.0, 4.0, 2.0, 1.0], dtype=torch.float64) / 17.0
    torch.testing.assert_close(mixture.weights, weights)
    assert ((counts / n - weights).abs() < 4 * (weights * (1 - weights) / n).sqrt()).all(), counts.tolist()
    sigma = 0.5 / 1.414
    assert ((means - mixture.means).abs() < 4 * sigma / counts.sqrt()[:, None]).all()
    assert ((stds - sigma).abs() < 4 * sigma / (2 * (counts[:, None] - 1)).sqrt()).all()
    assert float(weights[0] / weights[-1]) == 10.0


def _numpy_seed(seed: int) -> int:
    return int(torch.randint(0, 2**31 - 1, (), generator=gen(seed)))


def test_sklearn_sets_follow_their_definitions_and_the_torch_seed() -> None:
    n, seed = 999, 7
    s = _numpy_seed(seed)
    swiss = make_swiss_roll(n_samples=n, noise=1.0, random_state=s)[0][:, [0, 2]] / 5
    moons = make_moons(n_samples=n, noise=0.1, random_state=s)[0] * 2 + np.array([-1.0, -0.2])
    circles = make_circles(n_samples=n, factor=0.5, noise=0.08, random_state=s)[0] * 3
    for name, ref in (("swissroll", swiss), ("moons", moons), ("circles", circles)):
        torch.testing.assert_close(sample_toy2d(name, n, gen(seed)), torch.from_numpy(ref).float())


def test_pinwheel_definition() -> None:
    n = 20000
    x = sample_toy2d("pinwheel", n, gen(2)).double() / 2  # undo FFJORD's final ×2
    # Un-rotated features f ~ N((1, 0), diag(0.3², 0.1²)): E|f|² = 1 + 0.09 + 0.01.
    r2 = (x**2).sum(1)
    assert abs(r2.mean() - 1.10) < 4 * r2.std() / math.sqrt(n)
    # x = f rotated by −(2πk/5 + 0.25 exp(f0)); recover the arm k with f0 ≈ |x|.
    r = r2.sqrt()
    phase = -torch.atan2(x[:, 1], x[:, 0]) - 0.25 * torch.exp(r)
    arm = torch.remainder(torch.round(phase / (2 * math.pi / 5)), 5).long()
    counts = torch.bincount(arm, minlength=5)
    assert ((counts - n // 5).abs() <= n // 500).all()  # labels are exactly balanced; allow 0.2% misreads


def test_checkerboard_definition_and_exact_density() -> None:
    n = 40000
    x = sample_toy2d("checkerboard", n, gen(3))
    log_p = toy_log_prob("checkerboard")
    assert log_p is not None
    torch.testing.assert_close(log_p(x), torch.full((n,), -math.log(32.0)))  # every point on a dark square
    cells = torch.floor(x / 2).long()
    assert cells.min() >= -2 and cells.max() <= 1
    cell_id = (cells[:, 0] + 2) * 4 + (cells[:, 1] + 2)
    counts = torch.bincount(cell_id, minlength=16)
    dark = counts > 0
    assert int(dark.sum()) == 8
    assert ((counts[dark] / n - 1 / 8).abs() < 4 * math.sqrt(1 / 8 * 7 / 8 / n)).all()
    # Off-support and outside-box points get -inf; the density integrates to one.
    assert torch.isinf(log_p(torch.tensor([[1.0, -1.0], [4.5, 0.5]]))).all()
    g = torch.linspace(-5 + 0.005, 5 - 0.005, 1000)
    grid = torch.cartesian_prod(g, g)
    assert abs(float(log_p(grid).exp().sum()) * 0.01**2 - 1.0) < 1e-3


def test_rings_definition() -> None:
    n = 20000
    x = sample_toy2d("rings", n, gen(4)).double()
    r = x.norm(dim=1)
    radii = torch.tensor([3.0, 2.25, 1.5, 0.75], dtype=torch.float64)
    ring = (r[:, None] - radii).abs().argmin(dim=1)
    assert torch.bincount(ring, minlength=4).tolist() == [n // 4] * 4
    resid = r - radii[ring]
    # Radial residual of isotropic N(0, 0.08²) noise: mean ≈ 0.08²/(2 r) ≈ 0, std ≈ 0.08.
    assert abs(float(resid.std()) - 0.08) < 0.005
    assert abs(float(resid.mean())) < 0.005


def test_2spirals_point_symmetry_and_extent() -> None:
    n = 20000
    x = sample_toy2d("2spirals", n, gen(5)).double()
    # Spiral 2 is −spiral 1 (up to noise), so every 1-D projection is symmetric about 0 on average.
    for angle in (0.0, 0.7, 2.0):
        u = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
        p = x @ u
        assert abs(float(p.mean())) < 4 * float(p.std()) / math.sqrt(n)
    # Radius t ≤ 3π, uniform jitter ≤ 0.5 per axis, /3, then N(0, 0.1²) noise.
    assert float(x.norm(dim=1).max()) < (3 * math.pi + 0.5 * math.sqrt(2)) / 3 + 0.6


def test_log_prob_only_where_known() -> None:
    for name in TOY_DATASETS:
        known = name in ("8gaussians", "25gaussians", "unequal_gaussians", "checkerboard", "wrapped_gaussians")
        assert (toy_log_prob(name) is not None) == known
    assert toy_mixture("swissroll") is None


def test_datamodule_splits_seeding_and_true_nll() -> None:
    dm = Toy2DDataModule("8gaussians", n_train=3000, n_val=500, n_test=4000, batch_size=100, seed=0)
    assert dm.data_shape == (2,)  # known before setup
    dm.setup("fit")
    assert [len(dm.tensor(s)) for s in ("train", "val", "test")] == [3000, 500, 4000]
    assert not torch.equal(dm.tensor("train")[:500], dm.tensor("val"))
    again = Toy2DDataModule("8gaussians", n_train=3000, n_val=500, n_test=4000, batch_size=100, seed=0)
    torch.testing.assert_close(again.tensor("test"), dm.tensor("test"))
    other = Toy2DDataModule("8gaussians", n_train=3000, n_val=500, n_test=4000, batch_size=100, seed=1)
    assert not torch.equal(other.tensor("test"), dm.tensor("test"))
    # Changing one split's size leaves the other draws unchanged (independent streams).
    bigger = Toy2DDataModule("8gaussians", n_train=5000, n_val=500, n_test=4000, batch_size=100, seed=0)
    torch.testing.assert_close(bigger.tensor("test"), dm.tensor("test"))

    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (100, 2) and batch.dtype == torch.float32
    assert len(dm.train_dataloader()) == 30

    # Well separated clusters: H ≈ log 8 + log(2π e σ²); the exact NLL estimate is within 4 SE.
    sigma = 0.5 / 1.414
    entropy = math.log(8) + math.log(2 * math.pi * math.e * sigma**2)
    log_p = dm.log_prob(dm.tensor("test"))
    nll = dm.true_nll()
    assert nll == pytest.approx(float(-log_p.double().mean()))
    assert abs(nll - entropy) < 4 * float(log_p.std()) / math.sqrt(4000)
    low, high = dm.bounds()
    assert low.shape == (2,) and (low < -3).all() and (high > 3).all()
    assert Toy2DDataModule("moons").true_nll() is None
    assert Toy2DDataModule("moons").log_prob is None

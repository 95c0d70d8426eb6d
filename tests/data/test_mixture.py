"""GaussianMixture: exact log density and sampling."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gen.data import GaussianMixture, toy_mixture


def test_log_prob_matches_hand_computation() -> None:
    gm = GaussianMixture([1.0, 3.0], [[0.0, 0.0], [2.0, -1.0]], [0.5, 2.0])
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-3.0, 4.0]])

    def normal(point: list[float], mean: list[float], std: float) -> float:
        sq = sum((a - b) ** 2 for a, b in zip(point, mean, strict=True))
        return math.exp(-sq / (2 * std**2)) / (2 * math.pi * std**2)

    expected = [
        math.log(0.25 * normal(p, [0.0, 0.0], 0.5) + 0.75 * normal(p, [2.0, -1.0], 2.0)) for p in x.tolist()
    ]
    torch.testing.assert_close(gm.log_prob(x), torch.tensor(expected), rtol=1e-6, atol=1e-6)
    assert gm.log_prob(x.double()).dtype == torch.float64


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_density_integrates_to_one_on_a_grid(name: str) -> None:
    gm = toy_mixture(name)
    assert gm is not None
    n, L = 400, 5.0  # the mixtures' mass outside [-5, 5]^2 is < 1e-12
    g = torch.linspace(-L, L, n, dtype=torch.float64)
    grid = torch.cartesian_prod(g, g)
    cell = (g[1] - g[0]) ** 2
    total = float(gm.log_prob(grid).exp().sum() * cell)
    assert abs(total - 1.0) < 1e-4


def test_sample_reproducible_and_matches_components() -> None:
    gm = GaussianMixture([0.2, 0.8], [[-5.0, 0.0], [5.0, 1.0]], 0.3)
    a = gm.sample(20000, generator=torch.Generator().manual_seed(0))
    b = gm.sample(20000, generator=torch.Generator().manual_seed(0))
    assert a.shape == (20000, 2) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    left = a[a[:, 0] < 0]
    # Component share: binomial standard error sqrt(p(1-p)/n) = 0.0028; allow 4 SE.
    assert abs(len(left) / 20000 - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 20000)
    # Component mean: SE = 0.3 / sqrt(n_k).
    se = 0.3 / math.sqrt(len(left))
    assert torch.allclose(left.mean(0).double(), torch.tensor([-5.0, 0.0], dtype=torch.float64), atol=4 * se)
    assert gm.sample(0).shape == (0, 2)


def test_bad_parameters_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        GaussianMixture([1.0], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="weights must have shape"):
        GaussianMixture([1.0, 1.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], 1.0)
    with pytest.raises(ValueError, match="stds must be finite and positive"):
        GaussianMixture([1.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], [1.0, 0.0])
    with pytest.raises(ValueError, match="weights must be finite, >= 0"):
        GaussianMixture([1.0, -1.0], [[0.0, 0.0], [1.0, 1.0]], 1.0)
    gm = GaussianMixture([1.0], [[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        gm.log_prob(torch.zeros(3, 3))

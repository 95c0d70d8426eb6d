"""The periodic toy set: a wrapped Gaussian mixture on [-π, π)² with an exact (truncated-wrap) density."""

from __future__ import annotations

import math

import torch

from lit_gen.data import Toy2DDataModule, sample_toy2d, toy_log_prob
from lit_gen.data.torus import wrapped_gaussians


def test_wrapped_gaussians_density_integrates_to_one_and_is_periodic() -> None:
    log_prob = toy_log_prob("wrapped_gaussians")
    assert log_prob is not None
    n = 300  # midpoint rule on a smooth periodic integrand: error far below 1e-6
    g = (torch.arange(n, dtype=torch.float64) + 0.5) * (2 * math.pi / n) - math.pi
    grid = torch.cartesian_prod(g, g)
    mass = log_prob(grid).exp().sum() * (2 * math.pi / n) ** 2
    assert abs(mass.item() - 1.0) < 1e-6
    # the seam component at (π, 0) has equal density just inside either edge: the wrap joins them
    edge = torch.tensor([[math.pi - 1e-3, 0.0], [-math.pi + 1e-3, 0.0]], dtype=torch.float64)
    lp = log_prob(edge)
    assert abs(lp[0].item() - lp[1].item()) < 1e-6
    assert log_prob(torch.tensor([[4.0, 0.0]])).item() == -math.inf


def test_wrapped_gaussians_samples_in_the_box_and_match_the_density() -> None:
    x = sample_toy2d("wrapped_gaussians", 20000, torch.Generator().manual_seed(0))
    assert bool(((x >= -math.pi) & (x < math.pi)).all())
    # Monte Carlo entropy −E log p against the grid value; SE ≈ std(log p)/sqrt(n) ≈ 0.01, allow 0.05
    mixture = wrapped_gaussians()
    n = 300
    g = (torch.arange(n, dtype=torch.float64) + 0.5) * (2 * math.pi / n) - math.pi
    lp = mixture.log_prob(torch.cartesian_prod(g, g))
    entropy = -(lp.exp() * lp).sum() * (2 * math.pi / n) ** 2
    assert abs(-mixture.log_prob(x.double()).mean().item() - entropy.item()) < 0.05
    dm = Toy2DDataModule("wrapped_gaussians", n_train=100, n_val=10, n_test=50)
    assert dm.true_nll() is not None

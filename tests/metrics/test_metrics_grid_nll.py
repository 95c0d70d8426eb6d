import math

import pytest
import torch
from torch import nn

from lit_gen.metrics import energy_grid, grid_log_partition, grid_nll


def _gaussian_energy(mu: torch.Tensor, s: float):
    return lambda x: (x - mu).pow(2).sum(1) / (2 * s * s)


def test_grid_nll_of_a_gaussian_is_exact():
    mu, s = torch.tensor([0.5, -1.0]), 0.7
    x = mu + s * torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    out = grid_nll(_gaussian_energy(mu, s), x)
    log_z = math.log(2 * math.pi * s * s)
    exact_nll = (x - mu).pow(2).sum(1).mean().item() / (2 * s * s) + log_z
    assert out["log_z"].item() == pytest.approx(log_z, abs=1e-3)
    assert out["nll"].item() == pytest.approx(exact_nll, abs=1e-3)
    assert out["nll_2L"].item() == pytest.approx(exact_nll, abs=1e-3)
    assert out["mass_escape"].item() < 1e-3
    assert set(out) == {"nll", "log_z", "nll_2L", "log_z_2L", "mass_escape"}


def test_mass_outside_the_box_is_reported():
    # E = 0.01‖x‖ does not normalise on a box of any reasonable size: doubling L changes log Z a lot.
    out = grid_nll(lambda x: 0.01 * x.norm(dim=1), torch.zeros(4, 2), n=100)
    assert out["mass_escape"].item() > 1.0
    assert out["log_z_2L"] > out["log_z"]


def test_log_partition_of_a_module_and_of_a_uniform_box():
    # E = 0 on [-L, L]^2 has log Z = log(4 L^2) exactly, at any n.
    assert grid_log_partition(lambda x: torch.zeros(x.shape[0]), limit=3.0, n=7).item() == pytest.approx(
        math.log(36.0), abs=1e-9
    )

    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(2.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale * x.pow(2).sum(1)  # N(0, I/4): log Z = log(pi / 2)

    energy = Quadratic()
    assert grid_log_partition(energy, chunk=1234).item() == pytest.approx(math.log(math.pi / 2), abs=1e-3)
    assert energy.scale.grad is None  # evaluated without building a graph


def test_energy_grid_layout():
    xs, ys, e = energy_grid(lambda x: x[:, 0] + 10 * x[:, 1], limit=2.0, n=4)
    torch.testing.assert_close(xs, torch.tensor([-1.5, -0.5, 0.5, 1.5]))
    assert e.shape == (4, 4)
    torch.testing.assert_close(e, xs[None, :] + 10 * ys[:, None])


def test_grid_errors():
    energy = _gaussian_energy(torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        grid_nll(energy, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="limit"):
        grid_log_partition(energy, limit=-1.0)
    with pytest.raises(ValueError, match="n must"):
        grid_log_partition(energy, n=0)
    with pytest.raises(ValueError, match="one energy per point"):
        grid_log_partition(lambda x: x, n=10)
    nan_energy = lambda x: torch.full((x.shape[0],), float("nan"))  # noqa: E731
    assert torch.isnan(grid_log_partition(nan_energy, n=10))

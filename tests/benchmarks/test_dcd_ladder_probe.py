"""benchmarks/dcd_ladder_probe.py: annealing from data noised to each start level, on a Gaussian ladder whose
energies are exact (every start level then returns the data law) and on one whose top energy is wrong (only the
rows that start above the broken level are off)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from types import ModuleType

import pytest
import torch
from torch import Tensor, nn

from lit_gen.mcmc import MALA
from lit_gen.models import DCDModule
from lit_gen.nn import EnergyMLP, TimeEnergyMLP

MU, V0 = 1.0, 0.5


class LadderEnergy(nn.Module):
    """The exact marginal energies ½‖x − m_t μ‖²/v_t of N(μ, v0 I) data, except a level ``broken`` whose energy is
    centred at −3 instead."""

    def __init__(self, means: Tensor, variances: list[float], broken: int | None) -> None:
        super().__init__()
        centres = [(-3.0 if t == broken else float(means[t]) * MU) for t in range(len(variances))]
        self.register_buffer("centres", torch.tensor(centres))
        self.register_buffer("variances", torch.tensor(variances))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        idx = t.round().long()
        return 0.5 * (x - self.centres[idx, None]).pow(2).sum(1) / self.variances[idx]


def _module(broken: int | None) -> DCDModule:
    module = DCDModule(partial(TimeEnergyMLP, hidden=8, depth=1), kernel="vp", noise=0.3, num_levels=3,
                       max_noise=0.7, sample_sampler=MALA(), step_scale=0.3, sample_steps=150, init_low=-3.0,
                       init_high=3.0)
    means, stds = module.marginal_mean, module.marginal_std
    variances = [float(means[t] ** 2 * V0 + stds[t] ** 2) for t in range(3)]
    module.energy_net = LadderEnergy(means, variances, broken)
    module.data_mean.fill_(MU)
    module.data_std.fill_(math.sqrt(V0))
    return module


def _score(x: Tensor) -> dict[str, float]:
    return {"mean": float(x.mean()), "var": float(x.var(0).mean())}


@pytest.fixture
def probe(import_benchmark: Callable[[str], ModuleType]) -> Callable[..., list]:
    return import_benchmark("dcd_ladder_probe").probe


def test_exact_ladder_gives_the_data_law_from_every_level(probe: Callable[..., list]) -> None:
    n = 2000
    x0 = MU + math.sqrt(V0) * torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    rows = probe(_module(None), x0, [3, 2, 1], None, _score)
    assert [name for name, _, _ in rows] == ["data noised to level 3", "data noised to level 2",
                                             "data noised to level 1", "Gaussian at level 3 (generation)"]
    for _, report, _ in rows:  # mean SE sqrt(v0 / 2n) over 2n coordinates; 5 SE
        assert report["mean"] == pytest.approx(MU, abs=5 * math.sqrt(V0 / (2 * n)))


def test_a_broken_level_shows_only_in_the_rows_above_it(probe: Callable[..., list]) -> None:
    n = 2000
    x0 = MU + math.sqrt(V0) * torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    rows = {name: report for name, report, _ in probe(_module(2), x0, [3, 2, 1], None, _score)}
    tol = 5 * math.sqrt(V0 / (2 * n))
    assert rows["data noised to level 2"]["mean"] == pytest.approx(MU, abs=tol)  # level 2 is not run from 2
    assert rows["data noised to level 1"]["mean"] == pytest.approx(MU, abs=tol)
    # from level 3 the chains pass through the broken posterior of level 2, pulled towards −3
    assert rows["data noised to level 3"]["mean"] < MU - 20 * tol
    assert rows["Gaussian at level 3 (generation)"]["mean"] < MU - 20 * tol


def test_a_ladder_is_required(probe: Callable[..., list]) -> None:
    module = DCDModule(partial(EnergyMLP, hidden=8, depth=1), init_low=-1.0, init_high=1.0)
    with pytest.raises(ValueError, match="noise ladder"):
        probe(module, torch.zeros(4, 2), [1], None, _score)

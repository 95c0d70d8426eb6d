"""The energy-map criterion: which of the 25 mode centres are peaks of exp(−E)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import Tensor, nn

from lit_gen.data import GaussianMixture, toy_mixture
from lit_gen.ddaebm import GeneratorMLP, PosteriorMLP, mode_peak_report
from lit_gen.models import DDAEBMModule

MIX = toy_mixture("25gaussians")
CENTRES = MIX.means.float()
RADIUS = 0.15  # ≈ 4 mode std (0.0354), under half the half-cell (0.354)


def _true_energy(x: Tensor) -> Tensor:
    return -MIX.log_prob(x.double()).float()


def test_true_and_tempered_mixture_energies_peak_at_every_mode() -> None:
    for scale in (1.0, 0.1):  # −log q and the flatter −0.1 log q have the same maxima
        rep = mode_peak_report(lambda x, s=scale: s * _true_energy(x), CENTRES, RADIUS)
        assert rep.fraction == 1.0
        assert float(rep.offset.max()) == 0.0  # the centre is a grid point and the exact maximum
        # at the edge (0.354 from the centre, ≈ 10 std) −log q rises by ≥ 0.354²/(2·0.0354²) = 50 nats
        assert float(rep.contrast.min()) > 0.9 * scale * 50


def test_monotone_shifted_and_partial_maps_are_not_counted() -> None:
    assert mode_peak_report(lambda x: x @ torch.tensor([1.0, 0.3]), CENTRES, RADIUS).fraction == 0.0
    # peaks 0.25 away from every centre: outside the 0.15 radius
    shifted = GaussianMixture(torch.ones(25), MIX.means + 0.25, MIX.stds)
    assert mode_peak_report(lambda x: -shifted.log_prob(x.double()).float(), CENTRES, RADIUS).fraction == 0.0
    # a mixture on the first 12 centres only: the other 13 cells rise towards a neighbour, no interior peak
    partial_mix = GaussianMixture(torch.ones(12), MIX.means[:12], MIX.stds[:12])
    rep = mode_peak_report(lambda x: -partial_mix.log_prob(x.double()).float(), CENTRES, RADIUS)
    assert rep.fraction == pytest.approx(12 / 25)
    # a 0.2-nat bump at the centre is an interior maximum but under the default 0.5-nat contrast
    bump = mode_peak_report(lambda x: -0.2 * torch.exp(-((x - CENTRES[12]) ** 2).sum(1) / 0.01), CENTRES[10:15],
                            RADIUS)
    assert bump.fraction == 0.0 and float(bump.contrast[2]) == pytest.approx(0.2, abs=1e-3)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="radius"):
        mode_peak_report(_true_energy, CENTRES, 0.5)
    with pytest.raises(ValueError, match="odd"):
        mode_peak_report(_true_energy, CENTRES, RADIUS, n=40)
    with pytest.raises(ValueError, match=r"\(K >= 2, 2\)"):
        mode_peak_report(_true_energy, CENTRES[:1], RADIUS)
    with pytest.raises(ValueError, match="not finite"):
        mode_peak_report(lambda x: torch.full((len(x),), float("nan")), CENTRES, RADIUS)


class _MixtureEnergy(nn.Module):
    """``E(x, t) = −log q(x)`` at t = 0 and a slope elsewhere: the map must read level 0, unconditioned."""

    def __init__(self, data_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        level0 = _true_energy(x) + self.dummy
        return torch.where(t == 0, level0, x.sum(1))


def test_module_energy_for_plot_is_the_level_0_energy() -> None:
    m = DDAEBMModule(_MixtureEnergy, partial(GeneratorMLP, hidden=8, depth=1), partial(PosteriorMLP, hidden=8,
                     depth=1), eval_metrics=False)
    assert mode_peak_report(m.energy_for_plot, CENTRES, RADIUS).fraction == 1.0
    assert mode_peak_report(lambda x: m.energy(x, 1), CENTRES, RADIUS).fraction == 0.0

"""The AIS NLL bracket of the test report, on an energy whose normaliser is known."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from lit_gen.evaluation import AISLikelihood, GridNLL
from lit_gen.models import EBMModule
from lit_gen.nn import EnergyMLP


def test_the_bracket_holds_the_true_nll_of_a_gaussian_energy() -> None:
    d, s = 6, 1.5
    module = SimpleNamespace(
        energy=lambda x: 0.5 * x.pow(2).sum(1) / s**2, data_shape=(d,), device=torch.device("cpu"),
        data_mean=torch.zeros(d), data_std=torch.ones(d),
    )
    x = s * torch.randn(200, d, generator=torch.Generator().manual_seed(0))
    ev = AISLikelihood(num_chains=128, num_steps=200, step_size=0.3, max_points=200)
    for batch in x.split(64):
        ev.update(module, batch, 0, "test")
    report = ev.report(module)
    log_z = 0.5 * d * math.log(2 * math.pi * s**2)
    true_nll = float(0.5 * x.pow(2).sum(1).mean() / s**2) + log_z
    assert report["ais_n_points"] == 200 and report["ais_num_chains"] == 128
    # both estimates within 4 of their reported standard errors; each bound on its side of the truth up to them
    se_f, se_r = report["ais_log_z_stderr"], report["ais_log_z_reverse_stderr"]
    assert abs(report["ais_log_z"] - log_z) < 4 * se_f and abs(report["ais_log_z_reverse"] - log_z) < 4 * se_r
    assert report["ais_nll_lower"] <= true_nll + 4 * se_f and report["ais_nll_upper"] >= true_nll - 4 * se_r
    assert report["ais_nll_upper"] - report["ais_nll_lower"] < 0.3
    assert 0 < report["ais_ess"] <= 128
    assert ev.report(module) == {}  # the points are consumed


def test_images_are_scored_on_their_cube_even_when_the_energy_is_not_normalisable_outside() -> None:
    """E(x) = −a·Σx grows without bound along +x, so ∫_{R^D} exp(−E) = ∞; on the cube [−1, 1]^D it is
    Π_i ∫_{−1}^{1} e^{a x} dx = (2 sinh(a) / a)^D, and the bits/dim bracket must hold that model's NLL."""
    shape, a = (1, 2, 2), 1.5
    d = 4
    module = SimpleNamespace(
        energy=lambda x: -a * x.flatten(1).sum(1), data_shape=shape, device=torch.device("cpu"),
        data_mean=torch.zeros(shape), data_std=torch.full(shape, 0.5),
    )
    # pixels on 256 levels in [-1, 1]
    x = torch.randint(0, 256, (200, *shape), generator=torch.Generator().manual_seed(0)).float() / 127.5 - 1.0
    ev = AISLikelihood(num_chains=128, num_steps=200, step_size=1.0, max_points=200)
    ev.update(module, x, 0, "test")
    report = ev.report(module)
    log_z = d * math.log(2 * math.sinh(a) / a)
    se_f, se_r = report["ais_log_z_stderr"], report["ais_log_z_reverse_stderr"]
    assert abs(report["ais_log_z"] - log_z) < 4 * se_f + 0.02
    assert abs(report["ais_log_z_reverse"] - log_z) < 4 * se_r + 0.02
    # the NLL of the dequantised points (mean of a·Σx' is a·Σx up to the dequantisation, ±a/256 per pixel) + log Z,
    # in bits per dimension with the dequantisation's D log(2/256) term
    nll = float(-a * x.flatten(1).sum(1).mean()) + log_z
    bpd = (nll - d * math.log(2 / 256)) / (d * math.log(2))
    slack = (a * d / 128 + 4 * max(se_f, se_r) + 0.02) / (d * math.log(2))
    assert report["ais_bpd_lower"] - slack <= bpd <= report["ais_bpd_upper"] + slack


def test_a_bracket_whose_moves_are_all_rejected_warns_and_names_the_step_size() -> None:
    """A steep energy (E = 10⁴·|x|²/2) with a whitened step of 1: every MALA proposal overshoots by orders of
    magnitude, so no move is accepted and the bracket would be the base's; the report must say so."""
    d = 8
    module = SimpleNamespace(
        energy=lambda x: 0.5e4 * x.pow(2).sum(1), data_shape=(d,), device=torch.device("cpu"),
        data_mean=torch.zeros(d), data_std=torch.ones(d),
    )
    ev = AISLikelihood(num_chains=16, num_steps=20, step_size=1.0, max_points=16)
    ev.update(module, 0.01 * torch.randn(16, d, generator=torch.Generator().manual_seed(0)), 0, "test")
    with pytest.warns(UserWarning, match=r"accepted 0\.00% .*step_size=1"):
        report = ev.report(module)
    assert report["ais_acceptance"] == 0.0


def test_energy_modules_bracket_beyond_2d_and_keep_the_grid_in_2d() -> None:
    ebm64 = EBMModule(energy_net=EnergyMLP, data_shape=(64,), ais_chains=8, ais_steps=5)
    assert any(isinstance(ev, AISLikelihood) and ev.num_steps == 5 for ev in ebm64.evaluators)
    assert not any(isinstance(ev, AISLikelihood) for ev in EBMModule(energy_net=EnergyMLP, data_shape=(64,),
                                                                        ais_steps=0).evaluators)
    ebm2 = EBMModule(energy_net=EnergyMLP, data_shape=(2,))
    kinds = {type(ev) for ev in ebm2.evaluators}
    assert GridNLL in kinds and AISLikelihood not in kinds

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
    assert 0 < report["ais_ess"] <= 128 and report["ais_bracket_inverted"] == 0.0
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


def test_a_fixed_step_whose_moves_are_all_rejected_warns_and_the_tuned_step_recovers_the_bracket() -> None:
    """A steep energy (E = 10⁴·|x|²/2) with a whitened step of 1: with tune=False every MALA proposal overshoots by
    orders of magnitude, no move is accepted and the bracket would be the base's, so the report must say so. With
    the per-temperature tuning (the default) the same start reaches the target acceptance and the bracket holds the
    known NLL, log Z = (d/2) log(2π/10⁴)."""
    d, k = 8, 1e4
    module = SimpleNamespace(
        energy=lambda x: 0.5 * k * x.pow(2).sum(1), data_shape=(d,), device=torch.device("cpu"),
        data_mean=torch.zeros(d), data_std=torch.ones(d),
    )
    x = torch.randn(64, d, generator=torch.Generator().manual_seed(0)) / math.sqrt(k)
    fixed = AISLikelihood(num_chains=64, num_steps=200, step_size=1.0, max_points=64, tune=False)
    fixed.update(module, x, 0, "test")
    with pytest.warns(UserWarning, match=r"accepted 0\.00% .*step_size=1"):
        untuned = fixed.report(module)
    assert untuned["ais_acceptance"] == 0.0 and "ais_pilot_acceptance" not in untuned

    tuned = AISLikelihood(num_chains=64, num_steps=200, step_size=1.0, max_points=64)
    tuned.update(module, x, 0, "test")
    report = tuned.report(module)
    assert 0.4 < report["ais_acceptance"] < 0.75 and abs(report["ais_pilot_acceptance"] - 0.57) < 0.1
    # the tuned steps end near the optimal MALA scale of the target, ~1/k, far below the whitened start of 1
    assert report["ais_step_size_min"] < 10 / k
    log_z = 0.5 * d * math.log(2 * math.pi / k)
    true_nll = float(0.5 * k * x.pow(2).sum(1).mean()) + log_z
    se = max(report["ais_log_z_stderr"], report["ais_log_z_reverse_stderr"])
    assert report["ais_nll_lower"] - 4 * se <= true_nll <= report["ais_nll_upper"] + 4 * se
    # base N(0, 1) against a target 100 times narrower: a hard path, but moving chains narrow the bracket severalfold
    # against the chains frozen at their starts (plain importance sampling each way)
    gap = report["ais_nll_upper"] - report["ais_nll_lower"]
    assert gap < 0.25 * (untuned["ais_nll_upper"] - untuned["ais_nll_lower"])


def test_test_points_far_from_the_model_invert_the_bracket_and_the_report_says_only_the_lower_side_holds() -> None:
    """E = |x|²/(2s²), s = 0.1, scored on points near x = 3 (energy ≈ 3600 nats above the model's typical set): the
    reverse chains start far from model samples, their estimate of log Z falls below the forward one, and the report
    must flag it (the forward side, a lower bound of the NLL, still holds)."""
    d, s = 8, 0.1
    module = SimpleNamespace(
        energy=lambda x: 0.5 * x.pow(2).sum(1) / s**2, data_shape=(d,), device=torch.device("cpu"),
        data_mean=torch.zeros(d), data_std=torch.ones(d),
    )
    x = 3.0 + 0.1 * torch.randn(32, d, generator=torch.Generator().manual_seed(0))
    ev = AISLikelihood(num_chains=64, num_steps=200, step_size=0.3, max_points=32)
    ev.update(module, x, 0, "test")
    with pytest.warns(UserWarning, match="reverse .*does not hold"):
        report = ev.report(module)
    assert report["ais_bracket_inverted"] == 1.0
    log_z = 0.5 * d * math.log(2 * math.pi * s**2)
    true_nll = float(0.5 * x.pow(2).sum(1).mean() / s**2) + log_z
    assert report["ais_nll_lower"] <= true_nll + 4 * report["ais_log_z_stderr"] + 0.05
    assert report["ais_nll_upper"] < report["ais_nll_lower"]


def test_mnist_shaped_images_near_the_cube_face_get_a_bracket_that_holds_the_true_bpd() -> None:
    """E(x) = a·Σx with a = 20 on [−1, 1]^784 puts each pixel within ~1/a of the face x = −1, as MNIST's background
    is: every MALA move in x crosses the face somewhere and was rejected. Annealed in u = atanh(x) with tuned steps,
    the bracket must hold the exact NLL, log Z = 784·log(2 sinh(a)/a), of exact model draws."""
    a, shape = 20.0, (1, 28, 28)
    d = 784
    module = SimpleNamespace(
        energy=lambda x: a * x.flatten(1).sum(1), data_shape=shape, device=torch.device("cpu"),
        data_mean=torch.zeros(shape), data_std=torch.full(shape, 0.5),
    )
    # exact draws of the model by its inverse CDF, p(x) ∝ e^{−a x} on [−1, 1], then put on 256 levels
    v = torch.rand(64, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = -torch.log(math.exp(a) - v * (math.exp(a) - math.exp(-a))) / a
    x = (torch.round((x + 1) * 127.5) / 127.5 - 1).float()
    ev = AISLikelihood(num_chains=32, num_steps=1000, step_size=0.05, max_points=64)
    ev.update(module, x, 0, "test")
    report = ev.report(module)
    assert 0.45 < report["ais_acceptance"] < 0.7
    log_z = d * math.log(2 * math.sinh(a) / a)
    # the dequantised points' mean energy is a·Σx + a·(mean offset within the bin, 1/256 per pixel)
    nll = float(a * x.flatten(1).sum(1).mean()) + a * d / 256 + log_z
    bpd = (nll - d * math.log(2 / 256)) / (d * math.log(2))
    # slack: 4 standard errors of the mean dequantisation offset over 64·784 pixels, and of each AIS estimate
    se = max(report["ais_log_z_stderr"], report["ais_log_z_reverse_stderr"])
    slack = (4 * a * (2 / 256) / math.sqrt(12) * math.sqrt(d / 64) + 4 * se) / (d * math.log(2))
    assert report["ais_bpd_lower"] - slack <= bpd <= report["ais_bpd_upper"] + slack
    # the bracket is informative: well under a bit per dimension wide (its width shrinks as 1/num_steps)
    assert report["ais_bpd_upper"] - report["ais_bpd_lower"] < 1.0


def test_energy_modules_bracket_beyond_2d_and_keep_the_grid_in_2d() -> None:
    ebm64 = EBMModule(energy_net=EnergyMLP, data_shape=(64,), ais_chains=8, ais_steps=5)
    assert any(isinstance(ev, AISLikelihood) and ev.num_steps == 5 for ev in ebm64.evaluators)
    assert not any(isinstance(ev, AISLikelihood) for ev in EBMModule(energy_net=EnergyMLP, data_shape=(64,),
                                                                        ais_steps=0).evaluators)
    ebm2 = EBMModule(energy_net=EnergyMLP, data_shape=(2,))
    kinds = {type(ev) for ev in ebm2.evaluators}
    assert GridNLL in kinds and AISLikelihood not in kinds

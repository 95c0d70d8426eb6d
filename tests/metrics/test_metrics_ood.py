"""OOD AUROC: 1 on a separable toy case, 0 when the score is reversed, 1/2 on ties; the standard image OOD sets."""

from __future__ import annotations

import pytest
import torch

from lit_gen.metrics import image_ood_sets, ood_auroc, ood_report


def test_auroc_is_one_when_separable_zero_when_reversed_and_half_on_ties() -> None:
    g = torch.Generator().manual_seed(0)
    inside = torch.rand(200, generator=g) + 2.0  # in-distribution scores all above every OOD score
    outside = torch.rand(300, generator=g) - 2.0
    assert ood_auroc(inside, outside) == 1.0
    assert ood_auroc(outside, inside) == 0.0
    assert ood_auroc(torch.zeros(50), torch.zeros(50)) == pytest.approx(0.5)


def test_ood_report_of_a_norm_score_separates_images_from_noise() -> None:
    g = torch.Generator().manual_seed(0)
    # "images": every pixel near 0; score −‖x‖² ranks them above uniform noise with certainty
    x = 0.01 * torch.randn(64, 1, 8, 8, generator=g)
    report = ood_report(lambda b: -b.flatten(1).square().sum(1), x)
    assert set(report) == {"auroc_uniform", "auroc_gaussian", "auroc_vflip"}
    assert report["auroc_uniform"] == 1.0 and report["auroc_gaussian"] == 1.0
    # vflip keeps pixel statistics, so a norm score cannot tell: the same norms (up to the float rounding of a sum
    # taken in another order, which breaks some ties either way) give AUROC 1/2
    assert report["auroc_vflip"] == pytest.approx(0.5, abs=0.01)
    sets = image_ood_sets(x, torch.Generator().manual_seed(1))
    assert all(s.shape == x.shape and s.abs().max() <= 1 for s in sets.values())


def test_auroc_of_scores_far_outside_unit_interval_keeps_their_order() -> None:
    """Energies in the hundreds (negative or positive) must not all tie at 0.5 (sigmoid saturation)."""
    inside, outside = torch.tensor([-125.0, -130.0, -135.0]), torch.tensor([-360.0, -365.0, -370.0])
    assert ood_auroc(inside, outside) == 1.0
    assert ood_auroc(outside, inside) == 0.0
    assert ood_auroc(inside + 500.0, outside + 500.0) == 1.0
    # -129 outside beats -130 and -135 inside: 7 of the 9 pairs are ranked right
    assert ood_auroc(inside, torch.tensor([-129.0, -365.0, -370.0])) == pytest.approx(7 / 9)
    # a tie counts one half
    assert ood_auroc(torch.tensor([200.0, 300.0]), torch.tensor([200.0, 100.0])) == pytest.approx(3.5 / 4)


def test_auroc_refuses_non_finite_scores() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        ood_auroc(torch.tensor([1.0, float("nan")]), torch.tensor([0.0]))

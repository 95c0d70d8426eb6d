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
    # vflip keeps pixel statistics, so a norm score cannot tell: exactly the same norms give AUROC 1/2
    assert report["auroc_vflip"] == pytest.approx(0.5)
    sets = image_ood_sets(x, torch.Generator().manual_seed(1))
    assert all(s.shape == x.shape and s.abs().max() <= 1 for s in sets.values())

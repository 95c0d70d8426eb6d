"""DenoisingPSNR: one denoiser callable, the same noisy images for every model, and energy_denoiser."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from lit_gen.denoise import denoise
from lit_gen.evaluation import DenoisingPSNR, energy_denoiser


def _quadratic(x: Tensor) -> Tensor:
    return 0.5 * x.flatten(1).pow(2).sum(1) / 0.3**2  # a N(0, 0.3² I) prior


def _run(evaluator: DenoisingPSNR, x: Tensor) -> dict[str, float]:
    evaluator.start(None, "test")
    evaluator.update(None, x, 0, "test")
    return evaluator.report(None)


def test_energy_denoiser_is_denoise_on_the_energy() -> None:
    y = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    got = energy_denoiser(_quadratic, "map", steps=200, step_scale=0.2)(y, 0.2, torch.Generator().manual_seed(1))
    want = denoise(_quadratic, y, 0.2, method="map", steps=200, step_scale=0.2)
    assert torch.equal(got, want)
    # the MAP of a Gaussian prior N(0, τ²) under noise σ is the Wiener shrinkage y τ²/(τ² + σ²)
    assert torch.allclose(got, y * 0.09 / (0.09 + 0.04), atol=1e-4)


def test_report_scores_the_denoiser_on_shared_noisy_images() -> None:
    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    identity = _run(DenoisingPSNR((0.1, 0.3), 16, lambda y, sigma, g: y), x)
    zeros = _run(DenoisingPSNR((0.1, 0.3), 16, lambda y, sigma, g: torch.zeros_like(y)), x)
    for sigma in ("0.1", "0.3"):
        # the identity scores the noisy input, up to the clamp to [-1, 1] (which can only help)
        assert identity[f"psnr_denoised_s{sigma}"] >= identity[f"psnr_noisy_s{sigma}"] - 1e-4
        assert zeros[f"psnr_noisy_s{sigma}"] == pytest.approx(identity[f"psnr_noisy_s{sigma}"])  # same noise
        assert zeros[f"psnr_gain_s{sigma}"] == pytest.approx(
            zeros[f"psnr_denoised_s{sigma}"] - zeros[f"psnr_noisy_s{sigma}"])
    # noise of std σ on range 2: PSNR ≈ 10 log10(4/σ²); the mean of 256 squared normals has relative SE
    # sqrt(2/256), i.e. (10/ln 10) sqrt(2/256) dB; 5 SE
    assert identity["psnr_noisy_s0.1"] == pytest.approx(10 * math.log10(4 / 0.01),
                                                        abs=5 * 10 / math.log(10) * math.sqrt(2 / 256))


def test_denoiser_must_be_callable() -> None:
    with pytest.raises(TypeError, match="denoiser must be a callable"):
        DenoisingPSNR((0.1,), 4, "map")  # type: ignore[arg-type]

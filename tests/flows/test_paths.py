"""Probability paths: end points, the target velocity as the time derivative of x_t at fixed (x0, x1, ε)
(central differences), and the named constructors."""

from __future__ import annotations

import pytest
import torch

from lit_gen.flows import BrownianBridgePath, LinearPath, VPCosinePath, build_path

PATHS = [LinearPath(), LinearPath(sigma_min=0.05), LinearPath(sigma=0.3), VPCosinePath(), BrownianBridgePath(0.4)]
IDS = ["rectified", "sigma_min", "icfm", "vp_cosine", "bridge"]


def _xt(path, x0, x1, t, seed):  # noqa: ANN001, ANN202
    return path.sample_xt(x0, x1, t, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_target_velocity_is_the_time_derivative_of_the_path(path) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 3, generator=g, dtype=torch.float64), torch.randn(64, 3, generator=g, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(64, generator=g, dtype=torch.float64)
    h = 1e-6
    x_t = _xt(path, x0, x1, t, 7)
    numeric = (_xt(path, x0, x1, t + h, 7) - _xt(path, x0, x1, t - h, 7)) / (2 * h)
    assert torch.allclose(path.target_velocity(x0, x1, t, x_t), numeric, atol=1e-6)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_end_points(path) -> None:  # noqa: ANN001
    x0, x1 = torch.randn(8, 1, 2, 2), torch.randn(8, 1, 2, 2)  # any data shape
    zeros, ones = torch.zeros(8), torch.ones(8)
    if getattr(path, "sigma", 0.0) and isinstance(path, LinearPath):
        return  # constant noise: the end points are blurred by design
    assert torch.allclose(path.sample_xt(x0, x1, zeros), x0, atol=1e-6)
    top = x1 + getattr(path, "sigma_min", 0.0) * x0
    assert torch.allclose(path.sample_xt(x0, x1, ones), top, atol=1e-6)


def test_build_path_names_and_errors() -> None:
    assert isinstance(build_path("linear", sigma=0.1), LinearPath)
    assert isinstance(build_path("vp_cosine"), VPCosinePath)
    assert build_path("brownian_bridge", sigma=0.2).sigma == 0.2  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="choose one of"):
        build_path("straight")
    with pytest.raises(ValueError, match="sigma > 0"):
        build_path("brownian_bridge")
    with pytest.raises(ValueError, match="sigma_min"):
        LinearPath(sigma_min=1.0)
    with pytest.raises(ValueError, match="same shape"):
        LinearPath().sample_xt(torch.zeros(2, 2), torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        LinearPath().sample_xt(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(3))

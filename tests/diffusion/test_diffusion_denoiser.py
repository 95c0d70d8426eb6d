"""Denoisers: the network wrapper and the exact Gaussian posterior mean."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor

from lit_gen.diffusion import (
    CosineSchedule,
    Denoiser,
    GaussianDenoiser,
    LinearSchedule,
    NetworkDenoiser,
    convert,
)

MU = torch.tensor([1.0, -2.0])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])


def test_gaussian_denoiser_matches_direct_solve() -> None:
    sched = CosineSchedule()
    den = GaussianDenoiser(MU, COV, sched)
    gen = torch.Generator().manual_seed(0)
    x_t = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    t = torch.tensor([0.0, 10.5, 400.0, 900.0, 999.0], dtype=torch.float64)
    got = den(x_t, t)
    mu, cov = MU.double(), COV.double()
    for i in range(5):
        ab = sched.alpha_bar(t[i : i + 1]).item()
        m = ab * cov + (1 - ab) * torch.eye(2, dtype=torch.float64)
        ref = mu + ab**0.5 * cov @ torch.linalg.solve(m, x_t[i] - ab**0.5 * mu)
        torch.testing.assert_close(got[i], ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(den.cov, COV.double(), rtol=0, atol=1e-12)


def test_gaussian_denoiser_limits() -> None:
    sched = LinearSchedule()
    den = GaussianDenoiser(MU, COV, sched)
    x_t = torch.randn(10, 2, dtype=torch.float64)
    # Almost pure noise: the posterior mean is the prior mean.
    torch.testing.assert_close(den(x_t, torch.full((10,), 999.0)), MU.double().expand(10, 2), atol=0.02, rtol=0)
    # Almost no noise: x̂0 ≈ x_t / sqrt(ᾱ), shrunk towards μ by about (1 − ᾱ)/λ_min = 1e-4/0.1 of |x_t − μ| ≲ 6.
    t0 = torch.zeros(10, dtype=torch.float64)
    torch.testing.assert_close(den(x_t, t0), x_t / sched.alpha_bar(t0).sqrt()[:, None], atol=6e-3, rtol=0)


def test_gaussian_denoiser_image_shaped_and_singular_cov() -> None:
    sched = LinearSchedule()
    # A degenerate Gaussian: all mass on the line x1 = x0 (rank-1 covariance) in a (1, 2, 1) data shape.
    den = GaussianDenoiser(torch.zeros(2), torch.tensor([[1.0, 1.0], [1.0, 1.0]]), sched)
    x_t = torch.randn(7, 1, 2, 1)
    out = den(x_t, torch.full((7,), 50.0))
    assert out.shape == x_t.shape and out.dtype == x_t.dtype
    torch.testing.assert_close(out[:, 0, 0, 0], out[:, 0, 1, 0])


def test_gaussian_denoiser_rejects_bad_covariance() -> None:
    sched = LinearSchedule()
    with pytest.raises(ValueError, match="shape"):
        GaussianDenoiser(torch.zeros(2), torch.eye(3), sched)
    with pytest.raises(ValueError, match="symmetric"):
        GaussianDenoiser(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]), sched)
    with pytest.raises(ValueError, match="semi-definite"):
        GaussianDenoiser(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]), sched)
    with pytest.raises(ValueError, match="dimensions"):
        GaussianDenoiser(torch.zeros(2), torch.eye(2), sched)(torch.zeros(3, 4), torch.zeros(3))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_network_denoiser_reads_every_prediction_as_x0(prediction: str) -> None:
    sched = LinearSchedule()
    exact = GaussianDenoiser(MU, COV, sched)

    def net(x_t: Tensor, t: Tensor) -> Tensor:
        return convert(exact(x_t, t), x_t, sched.alpha_bar(t), "x0", prediction)

    wrapped = NetworkDenoiser(net, sched, prediction)
    assert isinstance(wrapped, Denoiser)
    x_t = torch.randn(6, 2)
    t = torch.tensor([0.0, 1.0, 50.0, 500.0, 950.0, 999.0])
    torch.testing.assert_close(wrapped(x_t, t), exact(x_t, t), rtol=1e-4, atol=1e-4)


def test_network_denoiser_clip_and_errors() -> None:
    sched = LinearSchedule()
    den = NetworkDenoiser(lambda x, t: 3 * torch.ones_like(x), sched, "x0", clip=(-1.0, 1.0))
    assert torch.equal(den(torch.zeros(2, 2), torch.zeros(2)), torch.ones(2, 2))
    with pytest.raises(ValueError, match="clip"):
        NetworkDenoiser(lambda x, t: x, sched, "x0", clip=(1.0, -1.0))
    with pytest.raises(ValueError, match="prediction"):
        NetworkDenoiser(lambda x, t: x, sched, "score")
    with pytest.raises(ValueError, match="shape"):
        NetworkDenoiser(lambda x, t: x[:, :1], sched, "eps")(torch.zeros(2, 2), torch.zeros(2))


def test_eps_prediction_on_zero_terminal_snr_schedule_warns() -> None:
    with pytest.warns(UserWarning, match="prediction='v'"):
        NetworkDenoiser(lambda x, t: x, CosineSchedule(), "eps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NetworkDenoiser(lambda x, t: x, CosineSchedule(), "v")
        NetworkDenoiser(lambda x, t: x, CosineSchedule(), "eps", clip=(-1.0, 1.0))
        NetworkDenoiser(lambda x, t: x, LinearSchedule(), "eps")

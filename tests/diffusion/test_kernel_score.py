"""Kernel score: analytic for one and two training points, chunk-invariant, the torus version matches a
brute-force wrapped kernel, wraps correctly, and its samples stay in the box; the kernel config samples
without a checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import Tensor

from lit_gen.cli import build_cli
from lit_gen.diffusion import CosineSchedule, LinearSchedule
from lit_gen.diffusion.kernel_score import KernelDenoiser, TorusKernelDenoiser, wrap_to_torus
from lit_gen.models import KernelDiffusionModule

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "diffusion" / "kernel_toy2d.yaml"
T = torch.tensor([0.0, 5.0, 50.0, 200.0, 500.0, 900.0], dtype=torch.float64)


def _x_t(n: int = 6, seed: int = 0) -> Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


def test_one_point_data_gives_that_point_and_its_gaussian_score() -> None:
    schedule = LinearSchedule().double()
    point = torch.tensor([[0.7, -1.2]], dtype=torch.float64)
    x_t = _x_t()
    d = KernelDenoiser(point, schedule)(x_t, T)
    torch.testing.assert_close(d, point.expand(6, 2))
    # the score (sqrt(ᾱ) x̂0 − x_t)/(1 − ᾱ) is that of N(sqrt(ᾱ) x_j, (1 − ᾱ) I), checked by autograd
    ab = schedule.alpha_bar(T)[:, None]
    x = x_t.clone().requires_grad_(True)
    logp = (-(x - ab.sqrt() * point).square() / (2 * (1 - ab))).sum()
    (grad,) = torch.autograd.grad(logp, x)
    torch.testing.assert_close((ab.sqrt() * d - x_t) / (1 - ab), grad)


def test_two_point_data_matches_the_analytic_posterior_mean() -> None:
    schedule = CosineSchedule().double()
    pts = torch.tensor([[1.0, 0.0], [-1.0, 0.5]], dtype=torch.float64)
    x_t = _x_t(seed=1)
    ab = schedule.alpha_bar(T)[:, None]
    # two-point posterior: w_1 = σ(ℓ_1 − ℓ_2), ℓ_j = −‖x_t − sqrt(ᾱ) x_j‖² / (2(1 − ᾱ))
    ell = [-(x_t - ab.sqrt() * p).square().sum(1, keepdim=True) / (2 * (1 - ab)) for p in pts]
    w1 = torch.sigmoid(ell[0] - ell[1])
    want = w1 * pts[0] + (1 - w1) * pts[1]
    torch.testing.assert_close(KernelDenoiser(pts, schedule)(x_t, T), want)


def test_chunked_evaluation_equals_one_pass() -> None:
    schedule = CosineSchedule().double()
    data = torch.randn(301, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x_t = _x_t(seed=3)
    one = KernelDenoiser(data, schedule, chunk_size=4096)(x_t, T)
    torch.testing.assert_close(KernelDenoiser(data, schedule, chunk_size=7)(x_t, T), one)
    torus = TorusKernelDenoiser(data, schedule, chunk_size=4096)(x_t, T)
    torch.testing.assert_close(TorusKernelDenoiser(data, schedule, chunk_size=7)(x_t, T), torus)
    with pytest.raises(ValueError, match="NaN"):
        KernelDenoiser(torch.full((3, 2), math.nan), schedule)


def _brute_torus_score(y: Tensor, data: Tensor, sigma: Tensor) -> Tensor:
    """∇ log mean_j Π_i Σ_{|k|≤60} N(y_i − x_ji + 2πk; 0, σ²) by autograd (float64, many images)."""
    y = y.clone().requires_grad_(True)
    k = 2 * math.pi * torch.arange(-60, 61, dtype=torch.float64)
    diff = y[:, None, :, None] - data[None, :, :, None] + k  # (B, N, d, K)
    s2 = sigma.reshape(-1, 1, 1, 1) ** 2
    log_k = torch.logsumexp(-diff.square() / (2 * s2), -1) - 0.5 * torch.log(2 * math.pi * s2[..., 0])
    logp = torch.logsumexp(log_k.sum(-1), 1).sum()
    (grad,) = torch.autograd.grad(logp, y)
    return grad


def test_torus_score_matches_brute_force_and_is_periodic() -> None:
    schedule = CosineSchedule().double()
    g = torch.Generator().manual_seed(4)
    data = torch.rand(40, 2, generator=g, dtype=torch.float64) * 2 * math.pi - math.pi
    den = TorusKernelDenoiser(data, schedule)
    # σ from 0.05 to 20 covers both evaluation branches (images below 1.5, Fourier series above)
    sigma = torch.tensor([0.05, 0.3, 1.0, 1.49, 1.51, 3.0, 20.0], dtype=torch.float64)
    y = torch.rand(7, 2, generator=g, dtype=torch.float64) * 6 - 3
    torch.testing.assert_close(den.score(y, sigma), _brute_torus_score(y, data, sigma), rtol=1e-7, atol=1e-9)
    # D(y + 2πk) = D(y) + 2πk: the lifted denoiser commutes with the lattice, so samplers may run on the lift
    x_t = _x_t(seed=5)
    shift = torch.tensor([2 * math.pi, -4 * math.pi], dtype=torch.float64)
    a = schedule.alpha_bar(T).sqrt()[:, None]
    torch.testing.assert_close(den(x_t + a * shift, T), den(x_t, T) + shift)
    # training points outside the box are wrapped in, so ±2π copies of the data give the same model
    twin = TorusKernelDenoiser(data + 2 * math.pi, schedule)
    torch.testing.assert_close(twin(x_t, T), den(x_t, T))
    torch.testing.assert_close(wrap_to_torus(torch.tensor([math.pi, -math.pi, 3 * math.pi + 0.5])),
                               torch.tensor([-math.pi, -math.pi, -math.pi + 0.5]))


@pytest.mark.parametrize("sampler", ["ddim", "heun", "ddpm", "euler_maruyama"])
def test_torus_module_samples_stay_in_the_box_and_follow_the_data(sampler: str) -> None:
    from lit_gen.data import sample_toy2d

    train = sample_toy2d("wrapped_gaussians", 400, torch.Generator().manual_seed(0))
    module = KernelDiffusionModule(manifold="torus", schedule=CosineSchedule(), sampler=sampler, sampler_steps=10)
    x = module.fit_data(train).sample(300, generator=torch.Generator().manual_seed(1))
    assert x.shape == (300, 2)
    assert bool(((x >= -math.pi) & (x < math.pi)).all())
    # a kernel model reproduces its training set: every sample lies near a training point (data std 0.35);
    # the seam components stay whole across ±π only because distances are taken on the torus
    nearest = wrap_to_torus(x[:, None] - train[None]).norm(dim=-1).min(1).values
    assert nearest.median() < 0.1
    with pytest.raises(NotImplementedError, match="euclidean"):
        module.log_prob(x[:4])


def test_kernel_config_tests_without_a_checkpoint(tmp_path: Path) -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["data"]["init_args"].update(n_train=500, n_val=200, n_test=200, batch_size=200)
    cfg["model"]["init_args"].update(sampler_steps=10, test_nll_samples=50, test_nll_steps=4)
    cfg["trainer"]["default_root_dir"] = str(tmp_path)
    path = tmp_path / "kernel.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cli = build_cli(["test", "--config", str(path)])
    report = cli.model.last_test_report
    assert report["nll_nfe"] == 16 and math.isfinite(report["nll"])
    # exact score of the smoothed training set: its samples are as close to the test points as the training
    # points are (SW1 within 2× the data-vs-data floor; a collapsed or shifted sampler is many times off)
    assert report["sw1"] < 2 * report["sw1_floor"], report

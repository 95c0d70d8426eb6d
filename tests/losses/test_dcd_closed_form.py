"""Closed forms of DCD for a quadratic energy E(x) = ½ xᵀAx (Gaussian recovery posterior), and the kernels."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gen.losses.dcd import (
    DiffusionKernel,
    kernel_ladder,
    ladder_marginals,
    quadratic_dcd_gradient,
    quadratic_recovery_second_moment,
    recovery_energy,
    scaled_sampler,
)
from lit_gen.mcmc import HMC, MALA, Langevin


def _scalar_root(fn, lo: float, hi: float) -> float:
    """Bisection for a sign change of ``fn`` on [lo, hi]."""
    f_lo = fn(lo)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if (fn(mid) > 0) == (f_lo > 0):
            lo, f_lo = mid, fn(mid)
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _grad_1d(a_theta: float, v: float, kernel: DiffusionKernel, **kw) -> float:
    return float(quadratic_dcd_gradient(torch.tensor([[a_theta]]), kernel, torch.tensor([[v]]), **kw)[0, 0])


@pytest.mark.parametrize("kernel", [DiffusionKernel.ve(0.5), DiffusionKernel.vp(0.2)], ids=["ve", "vp"])
def test_exact_dcd_gradient_vanishes_at_the_data_precision(kernel: DiffusionKernel) -> None:
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    grad = quadratic_dcd_gradient(torch.linalg.inv(cov), kernel, cov)
    assert grad.abs().max() < 1e-12
    # and points the right way elsewhere: too broad a model (A too small) gets a positive gradient on A
    assert float(quadratic_dcd_gradient(0.5 * torch.linalg.inv(cov), kernel, cov).trace()) < 0


def test_many_langevin_steps_converge_to_the_exact_posterior() -> None:
    kernel = DiffusionKernel.vp(0.1)
    A = torch.tensor([[1.5, 0.2], [0.2, 0.7]], dtype=torch.float64)
    S = torch.tensor([[1.0, 0.3], [0.3, 2.0]], dtype=torch.float64)
    exact = quadratic_recovery_second_moment(A, kernel, S)
    eta = 1e-3 * kernel.posterior_scale**2
    chain = quadratic_recovery_second_moment(A, kernel, S, steps=20000, step_size=eta)
    # ULA's stationary covariance is off by O(η) relative to the posterior's: η P ≈ 1e-3 here
    assert torch.allclose(chain, exact, rtol=3e-3, atol=0)


def test_one_exact_langevin_step_is_tempered_and_the_noise_free_step_is_consistent() -> None:
    """The module docstring's caveat: for small s, K = 1 with exact noise has its zero at a_θ v = 1 + 1/(2c)."""
    v, s = 1.0, 0.02
    kernel = DiffusionKernel.ve(s)
    for c in (0.1, 0.25):
        root = _scalar_root(lambda a, c=c: _grad_1d(a, v, kernel, steps=1, step_size=c * s**2), 0.1, 50.0)
        assert root * v == pytest.approx(1 + 1 / (2 * c), rel=0.01)
    # gradient descent with η = s²/2 (noise-free one-step estimator): zero at the data precision, to O(s²)
    root = _scalar_root(lambda a: _grad_1d(a, v, kernel, steps=1, step_size=0.5 * s**2, noise=False), 0.1, 50.0)
    assert root * v == pytest.approx(1.0, abs=0.01)
    # the exact posterior (K → ∞): exactly at the data precision
    assert _scalar_root(lambda a: _grad_1d(a, v, kernel), 0.1, 50.0) == pytest.approx(1.0, abs=1e-6)


def test_k1_and_k5_agree_as_the_step_shrinks() -> None:
    """The gap between the K = 1 and K = 5 expected gradients is O(η): halving c halves it."""
    kernel = DiffusionKernel.ve(0.3)
    A = torch.tensor([[0.8, 0.1], [0.1, 0.3]], dtype=torch.float64)
    S = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)

    def gap(c: float) -> float:
        eta = c * kernel.s**2
        g1 = quadratic_dcd_gradient(A, kernel, S, steps=1, step_size=eta)
        g5 = quadratic_dcd_gradient(A, kernel, S, steps=5, step_size=eta)
        return float((g1 - g5).abs().max())

    gaps = [gap(c) for c in (0.1, 0.05, 0.025, 0.0125)]
    assert gaps[0] > 1e-3
    for big, small in zip(gaps[:-1], gaps[1:], strict=True):
        assert small / big == pytest.approx(0.5, abs=0.06)


def test_kernels_and_ladder() -> None:
    vp = DiffusionKernel.vp(0.19)
    assert vp.a == pytest.approx(0.9) and vp.s == pytest.approx(math.sqrt(0.19))
    assert DiffusionKernel.from_noise("vp", 0.3).s == pytest.approx(0.3)
    ladder = kernel_ladder("ve", 4, 0.1, 0.8)
    means, stds = ladder_marginals(ladder)
    assert means == [1.0] * 5
    assert stds[1:] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    vp_ladder = kernel_ladder("vp", 3, 0.1, 0.5)
    means, stds = ladder_marginals(vp_ladder)
    for m, sd in zip(means, stds, strict=True):  # variance preserving: m_t² + σ_t² = 1
        assert m**2 + sd**2 == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(20000, 2)
    xt = vp.sample(x + 1.0, generator=g)
    assert xt.mean().item() == pytest.approx(0.9, abs=4 * vp.s / math.sqrt(40000))
    with pytest.raises(ValueError, match="0 < beta < 1"):
        DiffusionKernel.vp(1.0)
    with pytest.raises(ValueError, match="noise_min < noise_max"):
        kernel_ladder("ve", 3, 0.5, 0.5)
    with pytest.raises(ValueError, match="'ve' or 'vp'"):
        kernel_ladder("vx", 1, 0.5, 0.5)  # type: ignore[arg-type]


def test_recovery_energy_and_scaled_samplers() -> None:
    kernel = DiffusionKernel.vp(0.36)  # a = 0.8, s = 0.6
    x_tilde = torch.tensor([[0.8, 1.6]])
    u = recovery_energy(lambda z: z.pow(2).sum(1), x_tilde, kernel)
    # at x' = x̃/a the likelihood term vanishes
    assert float(u(torch.tensor([[1.0, 2.0]]))) == pytest.approx(5.0)
    assert float(u(torch.zeros(1, 2))) == pytest.approx((0.64 + 2.56) / (2 * 0.36))
    with pytest.raises(ValueError, match="shape"):
        u(torch.zeros(2, 2))
    width2 = (0.6 / 0.8) ** 2
    assert scaled_sampler(Langevin(), kernel, 0.1).step_size == pytest.approx(0.1 * width2)
    assert scaled_sampler(MALA(), kernel, 0.2).step_size == pytest.approx(0.2 * width2)
    assert scaled_sampler(HMC(), kernel, 0.1).step_size == pytest.approx(math.sqrt(0.2 * width2))
    gd = scaled_sampler(Langevin(noise_scale=0.0), kernel, 0.5)
    assert gd.noise_scale == 0.0 and gd.step_size == pytest.approx(0.5 * width2)
    original = Langevin(step_size=0.3)
    assert scaled_sampler(original, kernel, None) is original and original.step_size == 0.3
    with pytest.raises(ValueError, match="tempered"):
        scaled_sampler(Langevin(step_size=10.0, noise_scale=0.005), kernel, 0.1)

"""The shared Gaussian noise kernel: transition density, Gaussian posterior, recovery energy, and its users."""

from __future__ import annotations

import torch

from lit_gen.denoise import denoising_energy
from lit_gen.diffusion import DDAEBMSchedule, LinearSchedule, NoiseSchedule
from lit_gen.diffusion.kernels import (
    GaussianKernel,
    posterior_coefficients,
    recovery_energy,
    transition_log_prob,
)


def test_log_prob_is_the_gaussian_density() -> None:
    k = GaussianKernel.vp(0.2)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    y = k.sample(x, torch.Generator().manual_seed(0))
    ref = torch.distributions.Normal(k.a * x, k.s).log_prob(y).flatten(1).sum(1)
    torch.testing.assert_close(k.log_prob(y, x), ref)
    var = torch.full((5, 1, 1), k.s**2, dtype=torch.float64)
    torch.testing.assert_close(transition_log_prob(y, x, k.a, var), ref)


def test_posterior_coefficients_are_bayes_rule() -> None:
    m, v, a, s2 = (torch.tensor(c, dtype=torch.float64) for c in (0.8, 0.36, 0.9, 0.19))
    c0, c1, var = posterior_coefficients(m, v, a, s2)
    x0, x_next = torch.tensor(0.7, dtype=torch.float64), torch.tensor(-0.4, dtype=torch.float64)
    precision = 1.0 / v + a**2 / s2
    torch.testing.assert_close(var, 1.0 / precision)
    torch.testing.assert_close(c0 * x0 + c1 * x_next, (m * x0 / v + a * x_next / s2) / precision)


def test_denoising_energy_is_the_ve_recovery_energy() -> None:
    def energy(z: torch.Tensor) -> torch.Tensor:
        return z.flatten(1).pow(4).sum(1)

    y, z = torch.randn(4, 3), torch.randn(4, 3)
    sigma = 0.3
    expected = energy(z) + (y - z).pow(2).sum(1) / (2 * sigma**2)
    torch.testing.assert_close(denoising_energy(energy, y, sigma)(z), expected)
    assert torch.equal(denoising_energy(energy, y, sigma)(z), recovery_energy(energy, y, GaussianKernel.ve(sigma))(z))


def test_ddaebm_schedule_is_a_noise_schedule_with_one_posterior() -> None:
    s = DDAEBMSchedule(4)
    assert isinstance(s, NoiseSchedule) and s.num_timesteps == 4 and s.num_levels == 5
    torch.testing.assert_close(s.log_alpha_bar(torch.arange(5)).exp(), s.alpha_bars)
    x0, x_next, t = torch.randn(4, 3), torch.randn(4, 3), torch.arange(4)
    mean, var = s.posterior_mean_var(x0, x_next, t)
    mean_base, var_base, _ = s.posterior(x_next, x0, t + 1.0, t.float())
    torch.testing.assert_close(mean, mean_base, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(var.flatten(), var_base, rtol=1e-5, atol=1e-9)


def test_schedule_posterior_matches_the_kernel_posterior() -> None:
    s = LinearSchedule(100).double()
    t, prev = torch.tensor([10.0, 50.0]), torch.tensor([4.0, 49.0])
    x_t, x0 = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    mean, var, _ = s.posterior(x_t, x0, t, prev)
    ab_t, ab_s = s.alpha_bar(t), s.alpha_bar(prev)
    c0, c1, ref_var = posterior_coefficients(ab_s.sqrt(), 1 - ab_s, (ab_t / ab_s).sqrt(), 1 - ab_t / ab_s)
    torch.testing.assert_close(var, ref_var)
    torch.testing.assert_close(mean, c0[:, None] * x0 + c1[:, None] * x_t)

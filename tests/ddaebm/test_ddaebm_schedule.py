"""DDAEBMSchedule: closed-form values, forward pairs, the DDPM posterior and the T-call sampler."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gen.ddaebm import DDAEBMSchedule, ddaebm_sample, vp_variance


def test_alpha_bar_matches_closed_form() -> None:
    s = DDAEBMSchedule(4, beta_min=0.1, beta_max=20.0)
    tau = torch.tensor([0.001, 0.25075, 0.5005, 0.75025, 1.0], dtype=torch.float64)
    closed = torch.exp(-0.5 * tau**2 * 19.9 - 0.1 * tau)  # 1 − var(τ), no β clipped at these settings
    torch.testing.assert_close(s.alpha_bars.double(), closed, rtol=1e-5, atol=1e-9)
    # the coefficient of x_0, sqrt(ᾱ): the values quoted in the issue
    torch.testing.assert_close(s.alpha_bars.sqrt(), torch.tensor([0.99995, 0.7223, 0.2805, 0.0586, 0.00657]),
                               rtol=2e-3, atol=0)
    torch.testing.assert_close(s.betas[0].double(), vp_variance(tau[:1], 0.1, 20.0)[0], rtol=1e-5, atol=0)
    assert s.sigma(torch.tensor([4]))[0] > 0.9999  # the last level is N(0, I) to within 1e-4 in scale


def test_betas_clipped_and_alpha_bar_is_their_product() -> None:
    s = DDAEBMSchedule(2, beta_min=0.1, beta_max=200.0)
    assert s.betas.max() <= 0.999 + 1e-7 and s.betas[-1] == pytest.approx(0.999)
    torch.testing.assert_close(s.alpha_bars, torch.cumprod(1 - s.betas, 0))


def test_pairs_have_the_forward_marginals() -> None:
    s = DDAEBMSchedule(4)
    n, x0 = 40000, 1.5
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        t = torch.full((n,), step)
        x_t, x_next = s.q_pair(torch.full((n, 1), x0), t, generator=g)
        for x, level in ((x_t, step), (x_next, step + 1)):
            ab = float(s.alpha_bars[level])
            se = math.sqrt((1 - ab) / n)
            assert abs(float(x.mean()) - math.sqrt(ab) * x0) < 5 * se + 1e-6
            assert float(x.var()) == pytest.approx(1 - ab, rel=0.05, abs=1e-5)


def test_posterior_mean_and_variance_match_bayes_rule() -> None:
    s = DDAEBMSchedule(4, beta_min=0.1, beta_max=20.0)
    ab = s.alpha_bars.double()
    beta = s.betas.double()
    x0 = torch.tensor([[0.7, -1.2]], dtype=torch.float64)
    x_next = torch.tensor([[0.3, 0.4]], dtype=torch.float64)
    for step in range(4):
        # prior x_t ~ N(sqrt(ab_t) x0, 1 − ab_t), likelihood x_{t+1} ~ N(a x_t, β): conjugate Gaussian update
        prior_var, a, b = 1 - ab[step], torch.sqrt(1 - beta[step + 1]), beta[step + 1]
        post_var = 1.0 / (1.0 / prior_var + a**2 / b)
        post_mean = post_var * (torch.sqrt(ab[step]) * x0 / prior_var + a * x_next / b)
        mean, var = s.posterior_mean_var(x0.float(), x_next.float(), torch.tensor([step]))
        torch.testing.assert_close(mean.double(), post_mean, rtol=1e-4, atol=1e-6)
        # the reference reads the float32-stored ᾱ_0 ≈ 0.9999, so 1 − ᾱ_0 keeps only ~4 digits
        torch.testing.assert_close(var.double().flatten(), post_var.reshape(1), rtol=1e-3, atol=1e-9)


def test_posterior_sample_has_no_noise_at_t0_and_log_probs_are_gaussian() -> None:
    s = DDAEBMSchedule(4)
    x0, x_next = torch.randn(6, 3), torch.randn(6, 3)
    t = torch.tensor([0, 0, 1, 2, 3, 3])
    noise = torch.randn(6, 3)
    out = s.posterior_sample(x0, x_next, t, noise)
    mean, var = s.posterior_mean_var(x0, x_next, t)
    torch.testing.assert_close(out[:2], mean[:2])
    torch.testing.assert_close(out[2:], mean[2:] + var[2:].sqrt() * noise[2:])
    x_t = torch.randn(6, 3)
    beta = s.betas[t + 1][:, None]
    ref = torch.distributions.Normal((1 - beta).sqrt() * x_t, beta.sqrt()).log_prob(x_next).sum(1)
    torch.testing.assert_close(s.transition_log_prob(x_next, x_t, t), ref)
    ref_q = torch.distributions.Normal(mean, var.clamp(min=1e-2).sqrt()).log_prob(x_t).sum(1)
    torch.testing.assert_close(s.posterior_log_prob(x_t, x0, x_next, t, var_floor=1e-2), ref_q)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_timesteps"):
        DDAEBMSchedule(0)
    with pytest.raises(ValueError, match="beta_min"):
        DDAEBMSchedule(4, beta_min=1.0, beta_max=0.5)
    s = DDAEBMSchedule(4)
    with pytest.raises(ValueError, match=r"integers in \[0, 3\]"):
        s.q_step(torch.zeros(2, 2), torch.tensor([0, 4]), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="shape"):
        s.alpha_bar(torch.tensor(1))


class _CountingGenerator(torch.nn.Module):
    """Returns a fixed point c as x̂_0 (the exact denoiser of point-mass data) and counts its calls."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.c, self.calls, self.times = c, 0, []

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.times.append(int(t[0]))
        assert z.shape == (x.shape[0], 3)
        return self.c.expand_as(x)


def test_sampler_uses_T_calls_is_seeded_and_exact_for_the_true_denoiser() -> None:
    s = DDAEBMSchedule(4)
    c = torch.tensor([1.0, -2.0])
    gen = _CountingGenerator(c)
    x = ddaebm_sample(gen, s, (4000, 2), latent_dim=3, generator=torch.Generator().manual_seed(0))
    assert gen.calls == 4 and gen.times == [3, 2, 1, 0]
    again = ddaebm_sample(gen, s, (4000, 2), latent_dim=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    # with x̂_0 = c every posterior step is exact, so the last (mean-only) step is E[x_0 | x_1, c]:
    # mean sqrt(ᾱ_0) c, spread sqrt(coef² (1 − ᾱ_1)) ≈ 0.01
    ab0 = float(s.alpha_bars[0])
    torch.testing.assert_close(x.mean(0), ab0**0.5 * c, atol=1e-3, rtol=0)
    assert float(x.std(0).max()) < 0.02

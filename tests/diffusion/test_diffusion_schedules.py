"""Noise schedules against their closed forms, and the properties the samplers rely on."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gen.diffusion.schedules import (
    SCHEDULES,
    CosineSchedule,
    LinearSchedule,
    NoiseSchedule,
    SigmoidSchedule,
    VPSchedule,
    get_schedule,
)

T = 1000
ALL = sorted(SCHEDULES)


def integer_t(n: int = T) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float64)


# ----------------------------------------------------------------------------- closed forms
def test_linear_matches_product_of_one_minus_beta() -> None:
    sched = LinearSchedule(T, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    expected = torch.cumprod(1 - betas, 0)
    torch.testing.assert_close(sched.alpha_bar(integer_t()), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(sched.betas.double(), betas, rtol=1e-4, atol=1e-9)


def test_cosine_matches_nichol_dhariwal_with_clipping() -> None:
    s = 0.008
    sched = CosineSchedule(T, s=s, max_beta=0.999)

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    t = integer_t()
    expected = f(t + 1) / f(torch.zeros(()))
    got = sched.alpha_bar(t)
    # Unclipped steps follow f(t+1)/f(0) exactly; only the last step's β (→ 1 at τ = 1) hits the clip.
    torch.testing.assert_close(got[:-1], expected[:-1], rtol=1e-5, atol=1e-12)
    assert sched.betas[-1].item() == pytest.approx(0.999, rel=1e-6)
    assert (sched.betas[:-1] < 0.999).all()
    assert got[-1].item() == pytest.approx(expected[-2].item() * (1 - 0.999), rel=1e-5)


def test_sigmoid_matches_chen_2023() -> None:
    start, end, tau = -3.0, 3.0, 1.0
    sched = SigmoidSchedule(T, start=start, end=end, tau=tau)

    def g(x: torch.Tensor) -> torch.Tensor:
        v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
        v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
        return (v_end - torch.sigmoid((x * (end - start) + start) / tau)) / (v_end - v_start)

    t = integer_t()
    expected = g((t + 1) / T) / g(torch.zeros((), dtype=torch.float64))
    torch.testing.assert_close(sched.alpha_bar(t)[:-1], expected[:-1], rtol=1e-5, atol=1e-12)
    assert sched.betas[-1].item() == pytest.approx(0.999, rel=1e-6)


@pytest.mark.parametrize("t", [0.0, 0.37, 1.0, 17.5, 500.25, 998.9, 999.0])
def test_vp_closed_form_at_integer_and_fractional_t(t: float) -> None:
    sched = VPSchedule(T, beta_min=0.1, beta_max=20.0)
    tau = (t + 1) / T
    expected = math.exp(-0.5 * tau**2 * (20.0 - 0.1) - tau * 0.1)
    got = sched.alpha_bar(torch.tensor([t], dtype=torch.float64)).item()
    assert got == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- shared properties
@pytest.mark.parametrize("name", ALL)
def test_alpha_bar_strictly_decreasing_in_range(name: str) -> None:
    sched = get_schedule(name)
    t = torch.linspace(0, T - 1, 20 * T, dtype=torch.float64)
    ab = sched.alpha_bar(t)
    assert (ab.diff() < 0).all()
    assert 0.99 < ab[0].item() < 1.0
    assert 0.0 < ab[-1].item() < 1e-3  # sampling from N(0, I) at T-1 is accurate


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_fractional_t_interpolates_log_alpha_bar(name: str) -> None:
    sched = get_schedule(name)
    t = integer_t()
    la = sched.log_alpha_bar(t)
    torch.testing.assert_close(la, sched.log_alpha_bars.double(), rtol=0, atol=0)
    mid = sched.log_alpha_bar(t[:-1] + 0.25)
    torch.testing.assert_close(mid, 0.75 * la[:-1] + 0.25 * la[1:], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_derived_quantities_are_consistent(name: str) -> None:
    sched = get_schedule(name)
    t = torch.linspace(0, T - 1, 777, dtype=torch.float64)
    ab = sched.alpha_bar(t)
    torch.testing.assert_close(sched.sigma(t) ** 2 + ab, torch.ones_like(ab), rtol=0, atol=1e-12)
    torch.testing.assert_close(sched.snr(t), ab / (1 - ab), rtol=1e-6, atol=0)
    torch.testing.assert_close(sched.edm_sigma(t) ** 2, (1 - ab) / ab, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_edm_sigma_round_trip(name: str) -> None:
    sched = get_schedule(name)
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(2000, generator=gen, dtype=torch.float64) * (T - 1)
    t = torch.cat([t, torch.tensor([0.0, 0.5, T - 1.5, T - 1.0], dtype=torch.float64)])
    back = sched.t_from_edm_sigma(sched.edm_sigma(t))
    torch.testing.assert_close(back, t, rtol=0, atol=1e-6)
    # float32 throughout: still well within one step.
    back32 = sched.t_from_edm_sigma(sched.edm_sigma(t.float()))
    assert (back32.double() - t).abs().max().item() < 0.02


@pytest.mark.parametrize("name", ALL)
def test_t_from_edm_sigma_clamps_outside_range(name: str) -> None:
    sched = get_schedule(name)
    out = sched.t_from_edm_sigma(torch.tensor([0.0, 1e-8, 1e12], dtype=torch.float64))
    assert out.tolist() == [0.0, 0.0, float(T - 1)]


def test_t_from_edm_sigma_is_monotone() -> None:
    sched = CosineSchedule()
    sig = torch.logspace(-4, 5, 3000, dtype=torch.float64)
    assert (sched.t_from_edm_sigma(sig).diff() >= 0).all()


def test_small_noise_end_is_accurate_in_float32() -> None:
    # 1 − ᾱ_0 = 1e-4: computed from log ᾱ, not as 1 − (float32 ᾱ), it keeps float32 relative accuracy.
    sched = LinearSchedule()
    got = sched.sigma(torch.zeros(1)).item() ** 2
    assert got == pytest.approx(1e-4, rel=1e-5)


# ----------------------------------------------------------------------------- forward process and posterior
def test_q_sample_broadcasts_over_image_dims() -> None:
    sched = LinearSchedule()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 2, 4, 4, generator=gen)
    noise = torch.randn(3, 2, 4, 4, generator=gen)
    t = torch.tensor([0.0, 400.0, 999.0])
    out = sched.q_sample(x0, t, noise)
    for i in range(3):
        ab = sched.alpha_bar(t[i : i + 1])
        torch.testing.assert_close(out[i], ab.sqrt() * x0[i] + (1 - ab).sqrt() * noise[i])


@pytest.mark.parametrize("name", ALL)
def test_posterior_consecutive_steps_match_ho_et_al(name: str) -> None:
    sched = get_schedule(name).double()
    gen = torch.Generator().manual_seed(2)
    t_int = torch.tensor([1, 2, 10, 500, 998, 999])
    t, s = t_int.double(), (t_int - 1).double()
    x0 = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    xt = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    mean, var, beta_ts = sched.posterior(xt, x0, t, s)

    ab = torch.cumprod(1 - sched.betas, 0)
    beta, ab_t, ab_prev = sched.betas[t_int], ab[t_int], ab[t_int - 1]
    torch.testing.assert_close(beta_ts, beta, rtol=1e-9, atol=0)
    torch.testing.assert_close(var, (1 - ab_prev) / (1 - ab_t) * beta, rtol=1e-9, atol=0)
    coef_x0 = ab_prev.sqrt() * beta / (1 - ab_t)
    coef_xt = (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab_t)
    torch.testing.assert_close(mean, coef_x0[:, None] * x0 + coef_xt[:, None] * xt, rtol=1e-9, atol=1e-12)


def test_posterior_strided_matches_gaussian_conditioning() -> None:
    # Independent derivation: x_s = a_s x0 + b_s ε1, x_t = sqrt(ᾱ_t/ᾱ_s) x_s + sqrt(1 − ᾱ_t/ᾱ_s) ε2; condition
    # the jointly Gaussian (x_s, x_t) given x0 on x_t.
    sched = CosineSchedule().double()
    t = torch.tensor([20.0, 700.0, 999.0, 3.5], dtype=torch.float64)
    s = torch.tensor([5.0, 300.0, 979.0, 0.25], dtype=torch.float64)
    x0 = torch.tensor([[0.3], [-1.0], [2.0], [0.7]], dtype=torch.float64)
    xt = torch.tensor([[1.1], [0.2], [-0.5], [0.9]], dtype=torch.float64)
    ab_t, ab_s = sched.alpha_bar(t), sched.alpha_bar(s)
    cov_st = (ab_t / ab_s).sqrt() * (1 - ab_s)
    mean_ref = ab_s.sqrt()[:, None] * x0 + (cov_st / (1 - ab_t))[:, None] * (xt - ab_t.sqrt()[:, None] * x0)
    var_ref = (1 - ab_s) - cov_st**2 / (1 - ab_t)
    mean, var, _ = sched.posterior(xt, x0, t, s)
    torch.testing.assert_close(mean, mean_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(var, var_ref, rtol=1e-7, atol=1e-15)


def test_posterior_to_clean_data_is_x0_without_noise() -> None:
    sched = LinearSchedule()
    x0, xt = torch.randn(4, 2), torch.randn(4, 2)
    t = torch.tensor([0.0, 3.0, 100.0, 999.0])
    mean, var, beta_ts = sched.posterior(xt, x0, t, torch.full((4,), -1.0))
    torch.testing.assert_close(mean, x0, rtol=1e-5, atol=1e-5)
    assert (var == 0).all()
    torch.testing.assert_close(beta_ts, sched.sigma(t) ** 2)


# ----------------------------------------------------------------------------- module behaviour and errors
def test_buffers_are_non_persistent_float32_and_follow_casts() -> None:
    sched = LinearSchedule()
    assert sched.state_dict() == {}
    assert sched.log_alpha_bars.dtype == torch.float32
    exact = torch.cumsum(torch.log1p(-torch.linspace(1e-4, 0.02, T, dtype=torch.float64)), 0)
    assert torch.equal(sched.double().log_alpha_bars, exact)
    # A half-precision cast of a parent module must not round the table through bfloat16.
    sched.to(torch.bfloat16)
    assert sched.log_alpha_bars.dtype == torch.float32
    assert sched.sigma(torch.zeros(1)).item() ** 2 == pytest.approx(1e-4, rel=1e-5)


def test_integer_t_is_accepted() -> None:
    sched = LinearSchedule()
    torch.testing.assert_close(sched.alpha_bar(torch.tensor([5])), sched.alpha_bar(torch.tensor([5.0])))


@pytest.mark.parametrize("bad", [-0.5, 999.5, float("nan"), 1e6])
def test_out_of_range_t_raises(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, T-1\]"):
        LinearSchedule().alpha_bar(torch.tensor([1.0, bad]))


def test_posterior_needs_s_before_t() -> None:
    sched = LinearSchedule()
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="s < t"):
        sched.posterior(x, x, torch.tensor([5.0, 5.0]), torch.tensor([4.0, 5.0]))


def test_get_schedule_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="cosine.*linear.*sigmoid.*vp"):
        get_schedule("quadratic")
    assert isinstance(get_schedule("vp", num_timesteps=10), VPSchedule)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: LinearSchedule(beta_start=0.02, beta_end=1e-4),
        lambda: LinearSchedule(num_timesteps=1),
        lambda: CosineSchedule(s=-1.0),
        lambda: SigmoidSchedule(start=3.0, end=-3.0),
        lambda: VPSchedule(beta_min=0.0),
    ],
)
def test_bad_parameters_raise(factory) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        factory()


def test_custom_subclass_only_needs_a_table() -> None:
    class Geometric(NoiseSchedule):
        def __init__(self) -> None:
            super().__init__(10)
            self._build()

        def _log_alpha_bar_table(self) -> torch.Tensor:
            return -0.5 * torch.arange(1, 11, dtype=torch.float64)

    sched = Geometric()
    assert sched.alpha_bar(torch.tensor([2.0])).item() == pytest.approx(math.exp(-1.5), rel=1e-6)
    assert sched.t_from_edm_sigma(sched.edm_sigma(torch.tensor([4.5]))).item() == pytest.approx(4.5, abs=1e-4)

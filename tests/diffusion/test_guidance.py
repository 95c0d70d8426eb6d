"""Classifier-free guidance (``lit_gen.diffusion.guidance``) against a two-class Gaussian toy with exact denoisers.

The toy: classes c ∈ {0, 1} with equal prior, ``x_0 | c ~ N(μ_c, s² I)`` in 2-D. Under ``x_t = a x_0 + b ε``
(``a = sqrt(ᾱ)``, ``b = sqrt(1 − ᾱ)``) the class posterior mean is Gaussian conditioning,
``E[x_0 | x_t, c] = μ_c + g (x_t − a μ_c)`` with ``g = a s² / (a² s² + b²)``, and the unconditional one is the
mixture ``Σ_c π_c(x_t) E[x_0 | x_t, c]`` with ``π_c ∝ N(x_t; a μ_c, (a² s² + b²) I)``.

What "the known guided distribution" is. Both classes have the same covariance, so ``D(·, y) − D(·, ∅)`` points along
``u = (μ_1 − μ_0)/‖μ_1 − μ_0‖`` and depends on x only through ``u·x``: the component orthogonal to u is the same
Gaussian ``N(μ_⊥, s²)`` for every w, and the parallel one follows a 1-D guided probability-flow ODE. Deterministic
DDIM (η = 0) is Euler's method on that ODE, ``dy/dσ = (y − D_w(y/sqrt(1 + σ²), σ))/σ`` with ``y = x/sqrt(ᾱ)`` and
σ the EDM noise level (Song et al. 2021; Karras et al. 2022), so the distribution guided DDIM targets is the
push-forward of ``x_T ~ N(0, 1)`` by that ODE. It is *not* the tilted density ``p(x|c)^w p(x)^{1−w}`` at w > 1
(Chidambaram et al. 2024, "What does guidance do? A fine-grained analysis in a simple setting"): here, for class 1
at w = 3, the ODE gives mean 1.543 and variance 0.099 along u, the tilted density 1.063 and 0.216. The reference is
therefore a high-accuracy run of the same ODE: RK4 in log σ (200 steps; 400 and 3000 steps agree to 1e-7) on a
grid of 1001 starting points, with the moments integrated against the N(0, 1) density (4001 points agree to
1e-12). At w = 0 and w = 1 it reproduces the closed-form mixture and Gaussian (up to the N(0, I) start, which
ignores the data's share ``a μ`` of x_T: an error of about ``|u·μ| s / σ_max`` ≈ 0.003 in the mean).

Tolerances follow ``test_diffusion_samplers.py``: 4 standard errors of the sample moments (from the reference's
second and fourth moments) plus DDIM's own discretisation bias at 200 steps, which is stated per case and checked
exactly, by running DDIM on the same grid of starting points (DDIM is a deterministic map of x_T).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import Tensor

from lit_gen.diffusion import (
    LinearSchedule,
    NetworkDenoiser,
    ddim_sample,
    ddpm_sample,
    heun_sample,
    to_x0,
)
from lit_gen.diffusion.guidance import ConditionalNetworkDenoiser, GuidedDenoiser, drop_labels
from lit_gen.nn import TimeMLP

MU = torch.tensor([[-1.0, 0.5], [1.0, -0.25]], dtype=torch.float64)
S = 0.5
U = (MU[1] - MU[0]) / (MU[1] - MU[0]).norm()
U_PERP = torch.stack([-U[1], U[0]])
STEPS = 200
N_PER_CLASS = 5000
SCHEDULE = LinearSchedule(1000).double()

# DDIM-200's discretisation bias along u (mean, variance) for class 1 (class 0 is its mirror image), measured on the
# grid of starting points against the reference: first order, it halves with twice the steps.
DDIM_BIAS = {0.0: (0.0, -0.0172), 1.0: (0.0, -0.0072), 3.0: (-0.0023, -0.0036)}


def _posterior(x: Tensor, a: Tensor, c: int) -> Tensor:
    a = a[:, None]
    g = a * S**2 / (a**2 * S**2 + 1 - a**2)
    return MU[c] + g * (x - a * MU[c])


def toy_denoiser(x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
    """Exact ``E[x_0 | x_t, y]``; ``y = None`` or the null class 2 give the mixture ``E[x_0 | x_t]``."""
    alpha_bar = SCHEDULE.alpha_bar(t).to(x_t.dtype)
    a = alpha_bar.sqrt()
    var = alpha_bar * S**2 + 1 - alpha_bar
    per_class = torch.stack([_posterior(x_t, a, c) for c in (0, 1)])
    log_w = torch.stack([-(x_t - a[:, None] * MU[c]).square().sum(1) / (2 * var) for c in (0, 1)])
    mixture = (log_w.softmax(0)[:, :, None] * per_class).sum(0)
    if y is None:
        return mixture
    out = torch.where((y == 0)[:, None], per_class[0], per_class[1])
    return torch.where((y == 2)[:, None], mixture, out)


def _guided_1d(xp: Tensor, sigma: float, w: float, c: int) -> Tensor:
    """The guided x̂_0 along u at EDM noise level σ, written independently of the library."""
    a2 = 1.0 / (1.0 + sigma**2)
    a, var = math.sqrt(a2), a2 * S**2 + 1.0 - a2
    m = MU @ U
    cond = [m[k] + a * S**2 / var * (xp - a * m[k]) for k in (0, 1)]
    pi = torch.stack([-(xp - a * m[k]) ** 2 / (2 * var) for k in (0, 1)]).softmax(0)
    uncond = pi[0] * cond[0] + pi[1] * cond[1]
    return uncond + w * (cond[c] - uncond)


def _grid() -> tuple[Tensor, Tensor]:
    """1001 points on [−8, 8] and their trapezoidal N(0, 1) quadrature weights."""
    z = torch.linspace(-8.0, 8.0, 1001, dtype=torch.float64)
    weights = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    weights[0] /= 2
    weights[-1] /= 2
    return z, weights


def _moments(values: Tensor, weights: Tensor) -> tuple[float, float, float]:
    mean = (weights * values).sum()
    centred = values - mean
    return mean.item(), (weights * centred**2).sum().item(), (weights * centred**4).sum().item()


@functools.cache
def reference_moments(w: float, c: int, steps: int = 200) -> tuple[float, float, float]:
    """Mean, variance and 4th central moment along u of the guided PF-ODE's push-forward of N(0, 1)."""
    z, weights = _grid()
    s_max = SCHEDULE.edm_sigma(torch.tensor([999.0])).item()
    s_min = SCHEDULE.edm_sigma(torch.tensor([0.0])).item()
    y = z * math.sqrt(1.0 + s_max**2)  # x_T = z at t = T − 1, in the variable y = x / sqrt(ᾱ)

    def f(y: Tensor, log_sigma: float) -> Tensor:  # dy/d(log σ) = y − D_w
        sigma = math.exp(log_sigma)
        return y - _guided_1d(y / math.sqrt(1.0 + sigma**2), sigma, w, c)

    grid = torch.linspace(math.log(s_max), math.log(s_min), steps + 1, dtype=torch.float64).tolist()
    for u0, u1 in zip(grid[:-1], grid[1:], strict=True):
        h = u1 - u0
        k1 = f(y, u0)
        k2 = f(y + 0.5 * h * k1, u0 + 0.5 * h)
        k3 = f(y + 0.5 * h * k2, u0 + 0.5 * h)
        k4 = f(y + h * k3, u1)
        y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    x0 = _guided_1d(y / math.sqrt(1.0 + s_min**2), s_min, w, c)  # DDIM's last step also returns x̂_0
    return _moments(x0, weights)


def tilted_moments(w: float, c: int) -> tuple[float, float]:
    """Mean and variance along u of ``p(x|c)^w p(x)^{1−w}`` (normalised on a grid)."""
    x = torch.linspace(-8.0, 8.0, 160001, dtype=torch.float64)
    m = MU @ U
    log_p = [-((x - m[k]) ** 2) / (2 * S**2) for k in (0, 1)]
    log_mix = torch.logsumexp(torch.stack(log_p), 0)
    p = (w * log_p[c] + (1 - w) * log_mix).softmax(0)
    mean = (p * x).sum()
    return mean.item(), (p * (x - mean) ** 2).sum().item()


# --------------------------------------------------------------------------------------------- the guided distribution
def test_reference_reproduces_the_closed_forms_and_differs_from_the_tilted_density() -> None:
    m = (MU @ U).tolist()
    for c in (0, 1):
        mean, var, _ = reference_moments(1.0, c)  # w = 1: N(u·μ_c, s²)
        assert abs(mean - m[c]) < 0.005 and abs(var - S**2) < 1e-3
        mean, var, _ = reference_moments(0.0, c)  # w = 0: the mixture, whatever c
        assert abs(mean - (m[0] + m[1]) / 2) < 0.005 and abs(var - (S**2 + (m[1] - m[0]) ** 2 / 4)) < 1e-3
    assert reference_moments(3.0, 1, steps=400)[:2] == pytest.approx(reference_moments(3.0, 1)[:2], abs=1e-6)
    # w = 3: the PF-ODE sharpens far beyond the tilted density p(x|c)^w p(x)^(1−w).
    mean, var, _ = reference_moments(3.0, 1)
    t_mean, t_var = tilted_moments(3.0, 1)
    assert mean == pytest.approx(1.543, abs=2e-3) and var == pytest.approx(0.0986, abs=1e-3)
    assert t_mean == pytest.approx(1.063, abs=2e-3) and t_var == pytest.approx(0.216, abs=2e-3)
    assert tilted_moments(1.0, 1)[1] == pytest.approx(S**2, abs=1e-6)


@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_guided_ddim_samples_the_guided_distribution(w: float) -> None:
    z, weights = _grid()
    gen = torch.Generator().manual_seed(7)
    n = N_PER_CLASS
    x_rand = torch.randn(2 * n, 2, generator=gen, dtype=torch.float64)
    # Both classes in one batch, and the quadrature grid along u, started at (z u) so its u-part is exactly z.
    x_T = torch.cat([x_rand, z[:, None] * U, z[:, None] * U])
    labels = torch.cat([torch.zeros(n), torch.ones(n), torch.zeros(len(z)), torch.ones(len(z))]).long()
    guided = GuidedDenoiser(toy_denoiser, labels, w, num_classes=2)
    x = ddim_sample(guided, SCHEDULE, x_T.shape, STEPS, x_T=x_T, dtype=torch.float64).x

    for c in (0, 1):
        ref_mean, ref_var, ref_m4 = reference_moments(w, c)
        # DDIM's exact output moments (its deterministic map integrated over the grid): reference + stated bias.
        grid_part = x[2 * n + c * len(z): 2 * n + (c + 1) * len(z)] @ U
        d_mean, d_var, _ = _moments(grid_part, weights)
        sign = 1.0 if c == 1 else -1.0  # class 0 mirrors class 1 through the midpoint along u
        bias_mean, bias_var = sign * DDIM_BIAS[w][0], DDIM_BIAS[w][1]
        assert d_mean - ref_mean == pytest.approx(bias_mean, abs=5e-4), (c, d_mean - ref_mean)
        assert d_var - ref_var == pytest.approx(bias_var, abs=5e-4), (c, d_var - ref_var)

        # The samples: mean and covariance in the (u, u_perp) frame against the reference's.
        sample = x[c * n:(c + 1) * n]
        par, perp = sample @ U, sample @ U_PERP
        perp_mean = (MU[0] @ U_PERP).item()  # the same for both classes
        se_mean_par, se_mean_perp = math.sqrt(ref_var / n), math.sqrt(S**2 / n)
        se_var_par, se_var_perp = math.sqrt((ref_m4 - ref_var**2) / n), S**2 * math.sqrt(2 / n)
        se_cov = math.sqrt(ref_var * S**2 / n)
        cov = torch.cov(torch.stack([par, perp]))
        margin = 1e-3  # the reference's own error (RK4 and quadrature: < 1e-6) and DDIM's bias across u_perp
        assert abs(par.mean().item() - ref_mean) <= 4 * se_mean_par + abs(bias_mean) + margin
        assert abs(cov[0, 0].item() - ref_var) <= 4 * se_var_par + abs(bias_var) + margin
        assert abs(perp.mean().item() - perp_mean) <= 4 * se_mean_perp + margin
        assert abs(cov[1, 1].item() - S**2) <= 4 * se_var_perp + abs(DDIM_BIAS[1.0][1]) + margin
        assert abs(cov[0, 1].item()) <= 4 * se_cov + margin


# --------------------------------------------------------------------------------------------- w = 0 and w = 1 exactly
def _small_net(num_classes: int = 3) -> TimeMLP:
    torch.manual_seed(0)
    return TimeMLP((2,), hidden=16, depth=2, time_dim=8, num_classes=num_classes)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_w0_is_bit_for_bit_the_unguided_ddim_sample(eta: float) -> None:
    labels = torch.tensor([0, 1] * 200)
    guided = GuidedDenoiser(toy_denoiser, labels, 0.0, num_classes=2)
    a = ddim_sample(guided, SCHEDULE, (400, 2), 50, eta=eta, generator=torch.Generator().manual_seed(3)).x
    b = ddim_sample(lambda x, t: toy_denoiser(x, t), SCHEDULE, (400, 2), 50, eta=eta,
                    generator=torch.Generator().manual_seed(3)).x
    assert torch.equal(a, b)


@pytest.mark.parametrize("sampler", [ddim_sample, ddpm_sample, heun_sample])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_w0_and_w1_from_a_network_are_bit_for_bit_the_plain_denoisers(sampler, prediction) -> None:
    net = _small_net()
    sched = LinearSchedule(100)
    y = torch.tensor([0, 2, 1, 1, 0, 2])

    def run(denoiser):
        return sampler(denoiser, sched, (6, 2), 10, generator=torch.Generator().manual_seed(5)).x

    clip = (-1.5, 1.5)
    with torch.no_grad():
        plain = run(NetworkDenoiser(net, sched, prediction, clip=clip))
        w0 = run(GuidedDenoiser.from_network(net, sched, y, 0.0, prediction=prediction, clip=clip))
        cond = run(NetworkDenoiser(functools.partial(net, y=y), sched, prediction, clip=clip))
        w1 = run(GuidedDenoiser.from_network(net, sched, y, 1.0, prediction=prediction, clip=clip))
    assert torch.equal(w0, plain)
    assert torch.equal(w1, cond)
    assert not torch.allclose(w0, w1)


def test_an_unconditional_network_samples_at_w0_and_refuses_labels_otherwise() -> None:
    net = _small_net(num_classes=0)
    sched = LinearSchedule(100)
    with torch.no_grad():
        a = ddim_sample(GuidedDenoiser.from_network(net, sched, 1, 0.0), sched, (4, 2), 5,
                        generator=torch.Generator().manual_seed(0)).x
        b = ddim_sample(NetworkDenoiser(net, sched), sched, (4, 2), 5, generator=torch.Generator().manual_seed(0)).x
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="built without num_classes"):
        GuidedDenoiser.from_network(net, sched, 1, 2.0)


class _Counting:
    """A conditional denoiser that records the batch size and labels of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, Tensor | None]] = []

    def __call__(self, x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        self.calls.append((x_t.shape[0], None if y is None else y.clone()))
        return toy_denoiser(x_t, t, y)


def test_guidance_combines_in_x0_space_batched_in_one_call() -> None:
    x = torch.randn(6, 2, dtype=torch.float64)
    t = torch.full((6,), 300.0, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    counting = _Counting()
    out = GuidedDenoiser(counting, y, 2.5, num_classes=2)(x, t)
    assert [(n, lab.tolist()) for n, lab in counting.calls] == [(12, y.tolist() + [2] * 6)]  # one call of 2B
    cond, uncond = toy_denoiser(x, t, y), toy_denoiser(x, t)
    torch.testing.assert_close(out, uncond + 2.5 * (cond - uncond))
    # Without the null class: two calls, same result.
    counting = _Counting()
    torch.testing.assert_close(GuidedDenoiser(counting, y, 2.5)(x, t), out)
    assert [n for n, _ in counting.calls] == [6, 6] and counting.calls[1][1] is None
    # w = 0 and w = 1 make a single call of size B.
    for w, expected in ((0.0, None), (1.0, y.tolist())):
        counting = _Counting()
        GuidedDenoiser(counting, y, w, num_classes=2)(x, t)
        assert len(counting.calls) == 1 and counting.calls[0][0] == 6
        assert (counting.calls[0][1] is None) if expected is None else counting.calls[0][1].tolist() == expected


def test_guiding_x0_is_guiding_eps() -> None:
    net = _small_net()
    sched = LinearSchedule(100).double()
    net = net.double()
    x = torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor([3.0, 20.0, 50.0, 80.0, 99.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    w = 3.0
    with torch.no_grad():
        eps = net(x, t) + w * (net(x, t, y=y) - net(x, t))  # Ho & Salimans: (1 + s) ε(y) − s ε(∅), s = w − 1
        expected = to_x0(eps, x, sched.alpha_bar(t), "eps")
        got = GuidedDenoiser.from_network(net, sched, y, w)(x, t)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_guidance_interval_applies_w_only_inside() -> None:
    sched = SCHEDULE
    t = torch.tensor([10.0, 300.0, 600.0, 900.0], dtype=torch.float64)
    sigma = sched.edm_sigma(t)
    lo, hi = 0.5 * (sigma[0] + sigma[1]).item(), 0.5 * (sigma[2] + sigma[3]).item()  # t = 300 and 600 inside
    x = torch.randn(4, 2, dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 0])
    w = 4.0
    out = GuidedDenoiser(toy_denoiser, y, w, num_classes=2, schedule=sched, interval=(lo, hi))(x, t)
    guided = GuidedDenoiser(toy_denoiser, y, w, num_classes=2)(x, t)
    cond = toy_denoiser(x, t, y)
    torch.testing.assert_close(out[1:3], guided[1:3])
    torch.testing.assert_close(out[[0, 3]], cond[[0, 3]])
    # Outside the interval for the whole batch (as in a sampler step): one conditional call only.
    counting = _Counting()
    t_out = torch.full((4,), 900.0, dtype=torch.float64)
    res = GuidedDenoiser(counting, y, w, num_classes=2, schedule=sched, interval=(lo, hi))(x, t_out)
    assert len(counting.calls) == 1 and counting.calls[0][1].tolist() == y.tolist()
    torch.testing.assert_close(res, toy_denoiser(x, t_out, y))
    # In a DDIM run: the interval [σ_lo, ∞) equals full guidance for the steps above σ_lo and w = 1 below.
    s_lo = sched.edm_sigma(torch.tensor([400.0])).item()
    full = GuidedDenoiser(toy_denoiser, 1, w, num_classes=2)
    part = GuidedDenoiser(toy_denoiser, 1, w, num_classes=2, schedule=sched, interval=(s_lo, math.inf))
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = ddim_sample(full, sched, x_T.shape, 20, x_T=x_T, dtype=torch.float64).x
    b = ddim_sample(part, sched, x_T.shape, 20, x_T=x_T, dtype=torch.float64).x
    c = ddim_sample(GuidedDenoiser(toy_denoiser, 1, 1.0), sched, x_T.shape, 20, x_T=x_T, dtype=torch.float64).x
    assert not torch.allclose(a, b) and not torch.allclose(b, c)
    assert (b @ U).mean() > (c @ U).mean()  # guidance at high noise still pushes class 1 away from class 0


# --------------------------------------------------------------------------------------------- label dropout, errors
def test_drop_labels() -> None:
    y = torch.randint(0, 10, (20000,), generator=torch.Generator().manual_seed(0))
    assert drop_labels(y, 0.0, 10) is y
    assert (drop_labels(y, 1.0, 10) == 10).all()
    a = drop_labels(y, 0.1, 10, generator=torch.Generator().manual_seed(1))
    b = drop_labels(y, 0.1, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.long
    dropped = a == 10
    # Binomial(20000, 0.1): standard deviation of the fraction sqrt(0.09 / 20000) = 0.0021; allow 4 of them.
    assert abs(dropped.float().mean().item() - 0.1) < 4 * math.sqrt(0.09 / 20000)
    assert torch.equal(a[~dropped], y[~dropped])
    with pytest.raises(ValueError, match="out of range"):
        drop_labels(torch.tensor([0, 10]), 0.1, 10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        drop_labels(y, 1.5, 10)
    with pytest.raises(ValueError, match="integer tensor"):
        drop_labels(y.float(), 0.1, 10)


def test_guided_denoiser_errors() -> None:
    with pytest.raises(ValueError, match="class label 5 is out of range for num_classes=2"):
        GuidedDenoiser(toy_denoiser, torch.tensor([0, 5]), 2.0, num_classes=2)
    with pytest.raises(ValueError, match="guidance_scale"):
        GuidedDenoiser(toy_denoiser, 0, -1.0)
    with pytest.raises(ValueError, match="needs the schedule"):
        GuidedDenoiser(toy_denoiser, 0, 2.0, interval=(0.1, 1.0))
    with pytest.raises(ValueError, match="σ_lo < σ_hi"):
        GuidedDenoiser(toy_denoiser, 0, 2.0, schedule=SCHEDULE, interval=(1.0, 0.1))
    guided = GuidedDenoiser(toy_denoiser, torch.tensor([0, 1, 0]), 2.0, num_classes=2)
    with pytest.raises(ValueError, match="3 labels but the sampler's batch has 4"):
        guided(torch.zeros(4, 2, dtype=torch.float64), torch.full((4,), 10.0))
    net = _small_net()
    with pytest.raises(ValueError, match="class label 3 is out of range for num_classes=3"):
        GuidedDenoiser.from_network(net, LinearSchedule(100), 3, 2.0)


def test_conditional_network_denoiser_reads_the_prediction() -> None:
    net = _small_net()
    sched = LinearSchedule(100)
    den = ConditionalNetworkDenoiser(net, sched, "v")
    assert den.num_classes == 3
    x, t, y = torch.randn(4, 2), torch.full((4,), 50.0), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        torch.testing.assert_close(den(x, t, y), to_x0(net(x, t, y=y), x, sched.alpha_bar(t), "v"))
        assert torch.equal(den(x, t), NetworkDenoiser(net, sched, "v")(x, t))

"""DCDModule: Monte Carlo gradient against the closed form, the ladder, denoising, training on 8gaussians."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor, nn

from lit_gen.data import DigitsDataModule, Toy2DDataModule
from lit_gen.denoise import denoise
from lit_gen.losses.dcd import DiffusionKernel, quadratic_dcd_gradient
from lit_gen.mcmc import MALA, Langevin
from lit_gen.models import DCDModule
from lit_gen.nn import ConvEnergyNet, EnergyMLP, TimeEnergyMLP


class QuadraticEnergy(nn.Module):
    """``E(x) = ½ xᵀAx`` with ``A = L Lᵀ + 0.5 I`` (symmetric positive definite for any L)."""

    def __init__(self, data_shape: tuple[int, ...] = (2,)) -> None:
        super().__init__()
        self.L = nn.Parameter(torch.tensor([[1.0, 0.0], [0.4, 0.6]]))

    def A(self) -> Tensor:
        return self.L @ self.L.T + 0.5 * torch.eye(2)

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * torch.einsum("bi,ij,bj->b", x, self.A(), x)


class GaussianLadderEnergy(nn.Module):
    """The exact marginal energies ``E(x, t) = ½ ‖x − m_t μ‖² / v_t`` of Gaussian data on a ladder."""

    def __init__(self, mean: float, variances: list[float], means: list[float]) -> None:
        super().__init__()
        self.mean = mean
        self.register_buffer("v", torch.tensor(variances))
        self.register_buffer("m", torch.tensor(means))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        k = t.round().long()
        centred = x - (self.m[k] * self.mean)[:, None]
        return 0.5 * centred.pow(2).sum(1) / self.v[k]


def _trainer(**kw) -> L.Trainer:
    args = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, inference_mode=False, limit_val_batches=0)
    args.update(kw)
    return L.Trainer(**args)


def _mc_and_closed_form(kernel: str, noise: float, sampler, steps: int, closed_kw: dict) -> tuple[Tensor, ...]:
    torch.manual_seed(0)
    n = 20000
    chol = torch.tensor([[1.5, 0.0], [0.8, 0.7]])
    x = torch.randn(n, 2) @ chol.T + torch.tensor([0.3, -0.2])
    module = DCDModule(QuadraticEnergy(), kernel=kernel, noise=noise, sampler=sampler, mcmc_steps=steps,
                       step_scale=0.1, alpha=0.0, eval_metrics=False)
    net = module.energy_net
    loss = module.training_step(x, 0)
    (mc,) = torch.autograd.grad(loss, net.L)
    k = module.kernels[0]
    S = (x.T @ x / n).double()
    A = net.A().detach().double()
    closed_A = quadratic_dcd_gradient(A, k, S, **closed_kw)
    # chain rule through A = L Lᵀ + 0.5 I:  ∂<G, A>/∂L = (G + Gᵀ) L
    L_ = net.L.detach().double()
    closed = (closed_A + closed_A.T) @ L_
    # standard error of the recovery term −mean (x'x'ᵀ) L, x' Gaussian with second moment Σ':
    # Var(u v) = E[u²] E[v²] + E[uv]² for u = x'_j, v = (Lᵀx')_k
    from lit_gen.losses.dcd import quadratic_recovery_second_moment

    sigma = quadratic_recovery_second_moment(A, k, S, **closed_kw)
    var = torch.diag(sigma)[:, None] * torch.diag(L_.T @ sigma @ L_)[None, :] + (sigma @ L_) ** 2
    se = (var / n).sqrt()
    return mc.double(), closed, se


@pytest.mark.parametrize("kernel,noise", [("ve", 0.5), ("vp", 0.4)])
def test_mc_gradient_matches_exact_dcd_gradient_with_mala(kernel: str, noise: float) -> None:
    """Well-mixed MALA chains sample the Gaussian recovery posterior: the module's gradient is the exact DCD one."""
    mc, closed, se = _mc_and_closed_form(kernel, noise, MALA(), 60, {})
    assert closed.abs().max() > 20 * se.max()  # the gradient is far from zero at this A: the check has teeth
    assert ((mc - closed).abs() < 4.5 * se).all(), (mc, closed, se)


@pytest.mark.parametrize("kernel,noise", [("ve", 0.5), ("vp", 0.4)])
@pytest.mark.parametrize("steps", [1, 4])
def test_mc_gradient_matches_k_step_langevin_closed_form(kernel: str, noise: float, steps: int) -> None:
    """K exact-Langevin steps from x̃/a: the module's gradient matches the Gaussian recursion's expectation."""
    kernel_obj = DiffusionKernel.from_noise(kernel, noise)
    eta = 0.1 * kernel_obj.posterior_scale**2
    mc, closed, se = _mc_and_closed_form(kernel, noise, Langevin(), steps, {"steps": steps, "step_size": eta})
    assert ((mc - closed).abs() < 4.5 * se).all(), (mc, closed, se)
    # and differs from the exact posterior's, so the two checks are not the same check
    _, exact, _ = _mc_and_closed_form(kernel, noise, MALA(), 1, {})
    assert ((closed - exact).abs() > 10 * se).any()


def test_k1_and_k5_module_gradients_agree_at_small_step() -> None:
    """As the Langevin step shrinks, K = 1 and K = 5 give the same expected gradient (both → the x̃/a estimator)."""
    grads = []
    for steps in (1, 5):
        torch.manual_seed(1)
        x = torch.randn(20000, 2) * torch.tensor([1.5, 0.8])
        module = DCDModule(QuadraticEnergy(), noise=0.5, mcmc_steps=steps, step_scale=0.002, alpha=0.0,
                           eval_metrics=False)
        (g,) = torch.autograd.grad(module.training_step(x, 0), module.energy_net.L)
        grads.append(g)
    # same seed → same data and kernel noise; the chains differ by O(K η) moves of size sqrt(2η) = 0.03
    assert torch.allclose(grads[0], grads[1], atol=0.03)


def _exact_gaussian_ladder(num_levels: int, mu: float, v0: float) -> tuple[DCDModule, list[float]]:
    """A VP ladder (sqrt(β) 0.3 → 0.7, MALA generation) whose energies are the exact marginals of N(μ, v0 I) data,
    and the level variances ``m_t² v0 + σ_t²``."""
    module = DCDModule(partial(TimeEnergyMLP, hidden=16, depth=1), kernel="vp", noise=0.3, num_levels=num_levels,
                       max_noise=0.7, sample_sampler=MALA(), step_scale=0.3, init_low=-3.0, init_high=3.0)
    means, stds = module.marginal_mean, module.marginal_std
    variances = [means[t] ** 2 * v0 + stds[t] ** 2 for t in range(num_levels)]
    module.energy_net = GaussianLadderEnergy(mu, variances, means[:num_levels])
    module.data_mean.fill_(mu)
    module.data_std.fill_(math.sqrt(v0))
    return module, variances


def test_annealed_generation_down_the_ladder_recovers_gaussian_data() -> None:
    v0, mu = 0.5, 1.0
    module, _ = _exact_gaussian_ladder(3, mu, v0)
    n = 4000
    x = module.sample(n, steps=150, generator=torch.Generator().manual_seed(0))
    assert x.shape == (n, 2)
    # Var(x) SE = v0 sqrt(2/n); mean SE = sqrt(v0/n); 5 SE
    assert x.mean(0) == pytest.approx(torch.full((2,), mu), abs=5 * math.sqrt(v0 / n))
    assert x.var(0) == pytest.approx(torch.full((2,), v0), abs=5 * v0 * math.sqrt(2 / n))


def test_annealing_from_a_middle_level_with_its_true_marginal() -> None:
    """start_level = s with init ~ the level-s marginal runs only the levels below s and returns the data law."""
    v0, mu = 0.5, 1.0
    module, variances = _exact_gaussian_ladder(4, mu, v0)
    n, start = 4000, 2
    g = torch.Generator().manual_seed(0)
    init = module.marginal_mean[start] * mu + math.sqrt(variances[start]) * torch.randn(n, 2, generator=g)
    calls: list[int] = []
    energy = module.energy

    def spy(x: Tensor, t: Tensor | int = 0, y: Tensor | None = None) -> Tensor:
        calls.append(int(t) if isinstance(t, int) else int(t[0]))
        return energy(x, t, y)

    module.energy = spy  # type: ignore[method-assign]
    x = module.sample(n, steps=150, generator=g, init=init, start_level=start)
    assert set(calls) == {0, 1}  # the levels below the start only
    assert x.mean(0) == pytest.approx(torch.full((2,), mu), abs=5 * math.sqrt(v0 / n))
    assert x.var(0) == pytest.approx(torch.full((2,), v0), abs=5 * v0 * math.sqrt(2 / n))
    for bad in (0, 5, 1.5, True):
        with pytest.raises(ValueError, match="start_level must be a level of the ladder in 1..4"):
            module.sample(4, init=init[:4], start_level=bad)  # type: ignore[arg-type]
    flat = DCDModule(partial(EnergyMLP, hidden=8, depth=1), init_low=-1.0, init_high=1.0)
    with pytest.raises(ValueError, match="start_level needs a noise ladder"):
        flat.sample(4, start_level=1)


def test_ladder_trains_and_samples(tmp_path: Path) -> None:
    L.seed_everything(0)
    dm = Toy2DDataModule(name="8gaussians", n_train=512, n_val=64, n_test=256, batch_size=64)
    module = DCDModule(partial(TimeEnergyMLP, hidden=32, depth=2), kernel="ve", noise=0.2, num_levels=4,
                       max_noise=2.0, mcmc_steps=3, sample_steps=5)
    _trainer(max_steps=8).fit(module, dm)
    assert module.data_mean.abs().max() < 0.5 and module.data_std.min() > 1.5  # 8gaussians: radius ~2.8
    assert module.sample(10).shape == (10, 2)
    state = module.state_dict()
    fresh = DCDModule(partial(TimeEnergyMLP, hidden=32, depth=2), kernel="ve", noise=0.2, num_levels=4, max_noise=2.0)
    fresh.load_state_dict(state)
    assert bool(fresh.stats_ready) and torch.equal(fresh.box_low, module.box_low)


def test_level_weights_set_how_often_each_level_trains() -> None:
    net = partial(TimeEnergyMLP, hidden=8, depth=1)
    module = DCDModule(net, kernel="ve", noise=0.2, num_levels=3, max_noise=2.0, level_weights=[0.0, 3.0, 1.0])
    torch.manual_seed(0)
    n = 4000
    draws = torch.tensor([module.draw_level() for _ in range(n)])
    assert int((draws == 0).sum()) == 0  # weight 0: never trained
    # share of level 1 is 3/4; binomial SE sqrt(p(1 − p)/n), 5 SE
    assert float((draws == 1).float().mean()) == pytest.approx(0.75, abs=5 * math.sqrt(0.75 * 0.25 / n))
    uniform = DCDModule(net, kernel="ve", noise=0.2, num_levels=3, max_noise=2.0)
    torch.manual_seed(0)
    first = [uniform.draw_level() for _ in range(20)]
    torch.manual_seed(0)
    assert first == [int(torch.randint(3, ())) for _ in range(20)]  # no weights: the uniform draw of before


def test_training_uses_only_the_weighted_levels() -> None:
    L.seed_everything(0)
    dm = Toy2DDataModule(name="8gaussians", n_train=256, n_val=64, n_test=64, batch_size=64)
    module = DCDModule(partial(TimeEnergyMLP, hidden=16, depth=1), kernel="ve", noise=0.2, num_levels=4,
                       max_noise=2.0, mcmc_steps=2, sample_steps=2, level_weights=[0, 0, 0, 1])
    seen: set[int] = set()
    energy = module.energy

    def spy(x: Tensor, t: Tensor | int = 0, y: Tensor | None = None) -> Tensor:
        seen.update({int(t)} if isinstance(t, int) else set(t.round().long().tolist()))
        return energy(x, t, y)

    module.energy = spy  # type: ignore[method-assign]
    _trainer(max_steps=6).fit(module, dm)
    assert seen == {3}


def test_bad_level_weights_are_named() -> None:
    net = partial(TimeEnergyMLP, hidden=8, depth=1)
    for weights, match in (([1.0, 1.0], "one weight per level"), ([1.0, -1.0, 1.0], "non-negative"),
                           ([0.0, 0.0, 0.0], "positive sum"), ([1.0, float("nan"), 1.0], "finite")):
        with pytest.raises(ValueError, match=match):
            DCDModule(net, kernel="ve", noise=0.2, num_levels=3, max_noise=2.0, level_weights=weights)


def _nll_gap(steps: int) -> float:
    L.seed_everything(0)
    dm = Toy2DDataModule(name="8gaussians", n_train=20000, n_val=256, n_test=5000, batch_size=256)
    module = DCDModule(partial(EnergyMLP, hidden=128, depth=3), noise=0.3, mcmc_steps=5, step_scale=0.1, alpha=0.1,
                       optimizer=partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.999)), eval_metrics=False)
    trainer = _trainer(max_steps=steps, gradient_clip_val=1.0)
    trainer.fit(module, dm)
    trainer.test(module, dm, verbose=False)
    report = module.last_test_report
    assert report["mass_escape"] < 0.01
    return report["nll_gap"]


def test_dcd_on_8gaussians_gets_close_to_the_true_nll() -> None:
    """1000 steps (~25 s): within 0.3 nats of the true NLL (measured 0.1x; a single Gaussian fit is ~1.1 off)."""
    assert _nll_gap(1000) < 0.3


@pytest.mark.slow
def test_dcd_on_8gaussians_reference_run() -> None:
    """The DCD reference run (docs/algorithms.md#diffusion-contrastive-divergence): 2000 steps reach a gap below
    0.15 nats (measured 0.06)."""
    assert _nll_gap(2000) < 0.15


def test_denoise_matches_the_gaussian_posterior() -> None:
    v, sigma = 0.25, 0.3
    g = torch.Generator().manual_seed(0)
    y = torch.randn(4000, 3, generator=g)

    def energy(x: Tensor) -> Tensor:
        return 0.5 * x.pow(2).sum(1) / v

    shrink = v / (v + sigma**2)  # posterior mean = mode = v/(v+σ²) y, posterior variance vσ²/(v+σ²)
    x_map = denoise(energy, y, sigma, method="map", steps=200, step_scale=0.5)
    assert torch.allclose(x_map, shrink * y, atol=1e-5)
    x_mean = denoise(energy, y, sigma, method="mean", steps=200, step_scale=0.3, generator=g)
    post_sd = math.sqrt(v * sigma**2 / (v + sigma**2))
    # ULA on this Gaussian is AR(1) with ρ = 1 − ηP = 0.6 (P = 1/v + 1/σ²): autocorrelation time (1+ρ)/(1−ρ) = 4,
    # so the average of 100 states has error sd ≈ post_sd / 5 (its mean is unbiased)
    assert (x_mean - shrink * y).std() < 0.3 * post_sd
    x_sample = denoise(energy, y, sigma, method="sample", steps=200, step_scale=0.05, generator=g)
    assert (x_sample - shrink * y).std() == pytest.approx(post_sd, rel=0.1)  # ULA bias O(η) + 5 SE
    assert denoise(energy, y, sigma, clamp=(-0.1, 0.1)).abs().max() <= 0.1
    with pytest.raises(ValueError, match="sigma"):
        denoise(energy, y, 0.0)
    with pytest.raises(ValueError, match="method"):
        denoise(energy, y, 0.1, method="median")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shape"):
        denoise(energy, torch.zeros(3), 0.1)


def test_digits_test_report_has_psnr_next_to_the_noisy_input() -> None:
    L.seed_everything(0)
    dm = DigitsDataModule(batch_size=64)
    module = DCDModule(partial(ConvEnergyNet, channels=8, channel_mult=(1,)), (1, 8, 8), noise=0.1, mcmc_steps=2,
                       sample_steps=2, denoise_steps=10)
    trainer = _trainer(max_steps=3)
    trainer.fit(module, dm)
    trainer.test(module, dm, verbose=False)
    report = module.last_test_report
    for sigma in (0.1, 0.2, 0.3):
        # noisy input: MSE = σ² → PSNR = 10 log10(2² / σ²); ~11k pixels put the SE of the MSE at ~1.3% (0.06 dB)
        assert report[f"psnr_noisy_s{sigma:g}"] == pytest.approx(10 * math.log10(4 / sigma**2), abs=0.3)
        assert math.isfinite(report[f"psnr_denoised_s{sigma:g}"])
        assert report[f"psnr_gain_s{sigma:g}"] == pytest.approx(
            report[f"psnr_denoised_s{sigma:g}"] - report[f"psnr_noisy_s{sigma:g}"])
    assert "auroc_uniform" in report


def test_bad_arguments_are_named() -> None:
    net = partial(EnergyMLP, hidden=8, depth=1)
    with pytest.raises(ValueError, match="kernel"):
        DCDModule(net, kernel="vx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_noise"):
        DCDModule(net, num_levels=3)
    with pytest.raises(ValueError, match="mcmc_steps"):
        DCDModule(net, mcmc_steps=0)
    with pytest.raises(ValueError, match="tempered"):
        DCDModule(net, sampler=Langevin(step_size=10.0, noise_scale=0.005))
    with pytest.raises(ValueError, match="init_low"):
        DCDModule(net, init_low=-1.0)
    with pytest.raises(RuntimeError, match="fit the model"):
        DCDModule(net).sample(3)


def test_divergence_guard_names_the_problem() -> None:
    module = DCDModule(partial(EnergyMLP, hidden=8, depth=1), energy_bound=1.0, eval_metrics=False)
    with torch.no_grad():
        module.energy_net.net[-1].bias.fill_(50.0)
    with pytest.raises(FloatingPointError, match="energy_bound"):
        module.training_step(torch.randn(16, 2), 0)


class FlatLadderEnergy(nn.Module):
    """``E(x, t) = 0``: the recovery posterior is the kernel's own Gaussian ``N(x̃/a, (s/a)² I)``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.w * x.flatten(1).sum(1)


@pytest.mark.parametrize("steps,scale", [(5, 0.05), (5, 0.5)])
def test_recovery_spread_is_in_units_of_the_posterior_radius(steps: int, scale: float) -> None:
    """Under a flat energy, K Langevin steps of step c (s/a)² from x̃/a spread the chains to the variance
    (s/a)² · 2/(2 − c) · (1 − (1 − c)^(2K)) per coordinate (the discretised Ornstein–Uhlenbeck recursion), whatever
    the level, so the logged ``train/recovery_spread`` is sqrt of that factor; ``train/level`` names the level."""
    torch.manual_seed(0)
    module = DCDModule(FlatLadderEnergy(), kernel="vp", noise=0.1, num_levels=4, max_noise=0.7,
                       mcmc_steps=steps, step_scale=scale, eval_metrics=False, data_shape=(400,))
    logged: dict[str, float] = {}
    module.log_dict = lambda values, **kw: logged.update({k: float(v) for k, v in values.items()})  # type: ignore[method-assign]
    module.log = lambda name, value, **kw: None  # type: ignore[method-assign]
    expected = math.sqrt(2.0 / (2.0 - scale) * (1.0 - (1.0 - scale) ** (2 * steps)))
    levels = set()
    for _ in range(12):
        module.training_step(torch.rand(256, 400) * 2 - 1, 0)
        levels.add(int(logged["train/level"]))
        # norm of a 400-d Gaussian: relative spread about 1/sqrt(2·400) per chain, /sqrt(256) on the batch mean
        assert logged["train/recovery_spread"] == pytest.approx(expected, rel=0.01)
    assert len(levels) > 1  # the factor is the same on every level while the raw shift is not


def test_level_scaling_weights_each_level_by_its_posterior_precision() -> None:
    """E(x, t) = net(x, t) / ρ_t² with ρ_t = s/a of level t's kernel, so the Langevin drift η_t ∇E(·, t) = c ∇net
    is the same on every level; without it, the drift of the same network grows as ρ_t²."""
    torch.manual_seed(0)
    kw = dict(kernel="vp", noise=0.1, num_levels=6, max_noise=0.7, step_scale=0.05, eval_metrics=False)
    scaled = DCDModule(partial(TimeEnergyMLP, hidden=16, depth=1), level_scaling=True, **kw)
    plain = DCDModule(partial(TimeEnergyMLP, hidden=16, depth=1), **kw)
    plain.load_state_dict(scaled.state_dict())  # the weights are a non-persistent buffer: same checkpoints
    x = torch.randn(8, 2, requires_grad=True)
    rho = torch.tensor([k.posterior_scale for k in scaled.kernels])
    assert (rho[-1] / rho[0]) ** 2 == pytest.approx(95.1, abs=0.1)
    for t in range(6):
        net = plain.energy(x, t)
        assert torch.allclose(scaled.energy(x, t), net / rho[t] ** 2, rtol=1e-5)
        step = scaled.level_samplers[t].step_size
        assert step == pytest.approx(0.05 * float(rho[t]) ** 2, rel=1e-5)
        (g_scaled,) = torch.autograd.grad(scaled.energy(x, t).sum(), x)
        (g_net,) = torch.autograd.grad(net.sum(), x)
        assert torch.allclose(step * g_scaled, 0.05 * g_net, rtol=1e-4, atol=1e-8)
    # a (B,) float level tensor picks each row's weight
    t_rows = torch.tensor([0.0, 5.0] * 4)
    expected = plain.energy_net(x, t_rows) / rho[t_rows.long()] ** 2
    assert torch.allclose(scaled.energy(x, t_rows), expected, rtol=1e-5)


def _gaussian_ladder_module(v0: float, mu: float, **kw) -> DCDModule:
    """A ladder whose energies are the exact marginals of Gaussian data N(μ, v0 I) in 2-D."""
    args = dict(kernel="vp", noise=0.1, num_levels=6, max_noise=0.7, init_low=-3.0, init_high=3.0,
                eval_metrics=False)
    args.update(kw)
    module = DCDModule(partial(TimeEnergyMLP, hidden=8, depth=1), **args)
    means, stds = module.marginal_mean, module.marginal_std
    levels = module.num_levels
    module.energy_net = GaussianLadderEnergy(mu, [means[t] ** 2 * v0 + stds[t] ** 2 for t in range(levels)],
                                             means[:levels])
    module.data_mean.fill_(mu)
    module.data_std.fill_(math.sqrt(v0))
    return module


def test_tweedie_denoiser_is_the_exact_posterior_mean_on_a_gaussian_ladder() -> None:
    """With the exact level energies, y − σ² ∇_y E(m_t y, t) = μ + v0/(v0 + σ²)(y − μ) at σ = σ_t/m_t (Tweedie);
    the level is the one whose noise is nearest σ."""
    v0, mu = 0.5, 0.3
    module = _gaussian_ladder_module(v0, mu, denoise_method="tweedie")
    y = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    noise = [float(s) / float(m) for s, m in zip(module.marginal_std, module.marginal_mean, strict=True)]
    for t in range(1, 6):
        assert module.denoise_level(noise[t]) == t
        assert module.denoise_level(noise[t] * 1.05) == t
        sigma = noise[t]
        expected = mu + v0 / (v0 + sigma**2) * (y - mu)
        assert torch.allclose(module.denoise_images(y, sigma), expected, atol=1e-5)
    assert module.denoise_level(10.0) == 5 and module.denoise_level(1e-3) == 1
    # the plain function on the noisy marginal's energy: the same formula
    sigma = 0.3
    x_hat = denoise(lambda z: 0.5 * (z - mu).pow(2).sum(1) / (v0 + sigma**2), y, sigma, method="tweedie")
    assert torch.allclose(x_hat, mu + v0 / (v0 + sigma**2) * (y - mu), atol=1e-6)
    with pytest.raises(ValueError, match="num_levels > 1"):
        DCDModule(partial(EnergyMLP, hidden=8, depth=1), denoise_method="tweedie")
    with pytest.raises(ValueError, match="denoise_method"):
        DCDModule(partial(EnergyMLP, hidden=8, depth=1), denoise_method="median")  # type: ignore[arg-type]


def test_map_denoising_step_follows_the_level_scaled_curvature() -> None:
    """Under level scaling the level-0 energy is net/ρ_0²: the MAP step c σ²/(1 + σ²/ρ_0²) keeps gradient descent on
    net/ρ_0² + ‖x − y‖²/(2σ²) stable and reaches the posterior mode; the unscaled step c σ² diverges (c·P·σ² ≈ 8)."""
    v0, mu, sigma = 1.0, 0.0, 0.3
    module = _gaussian_ladder_module(v0, mu, level_scaling=True, denoise_method="map", denoise_steps=60,
                                     denoise_step_scale=0.8)
    rho0 = module.kernels[0].posterior_scale
    prior_precision = 1.0 / (module.energy_net.v[0].item() * rho0**2)
    y = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    mode = (y / sigma**2) / (prior_precision + 1.0 / sigma**2)
    assert torch.allclose(module.denoise_images(y, sigma), mode, atol=1e-4)
    with pytest.raises(FloatingPointError, match="non-finite"):  # the step that ignores the 1/ρ_0² factor
        denoise(module.energy, y, sigma, method="map", steps=60, step_scale=0.8)


def test_final_denoise_ends_generation_with_the_posterior_mean() -> None:
    """final_denoise returns E[x_0 | x_1] = μ + m_1 v0/v_1 (x_1 − m_1 μ) of the annealed x_1: for Gaussian data its
    law is N(μ, m_1² v0²/v_1), narrower than the data's v0 by the posterior variance."""
    v0, mu = 0.5, 1.0
    module = _gaussian_ladder_module(v0, mu, noise=0.3, num_levels=3, max_noise=0.7, sample_sampler=MALA(),
                                     step_scale=0.3, final_denoise=True)
    m1, s1 = float(module.marginal_mean[1]), float(module.marginal_std[1])
    v1 = m1**2 * v0 + s1**2
    n = 4000
    x = module.sample(n, steps=150, generator=torch.Generator().manual_seed(0))
    var = m1**2 * v0**2 / v1
    assert var < 0.85 * v0  # the test separates the two laws
    assert x.mean(0) == pytest.approx(torch.full((2,), mu), abs=5 * math.sqrt(var / n))
    assert x.var(0) == pytest.approx(torch.full((2,), var), abs=5 * var * math.sqrt(2 / n))
    with pytest.raises(ValueError, match="num_levels > 1"):
        DCDModule(partial(EnergyMLP, hidden=8, depth=1), final_denoise=True)


def test_test_report_denoises_through_the_model_denoiser() -> None:
    """DenoisingPSNR calls the model's own denoiser when given one: a denoiser returning zeros scores
    10 log10(4 / mean x²); DCDModule hands it denoise_images."""
    from lit_gen.evaluation import DenoisingPSNR

    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    evaluator = DenoisingPSNR((0.2,), 16, lambda y, sigma, g: torch.zeros_like(y))
    evaluator.start(None, "test")
    evaluator.update(None, x, 0, "test")
    report = evaluator.report(None)
    assert report["psnr_denoised_s0.2"] == pytest.approx(10 * math.log10(4 / x.pow(2).mean().item()), rel=1e-5)
    module = DCDModule(partial(ConvEnergyNet, channels=4, channel_mult=(1,)), (1, 8, 8), noise=0.1)
    (psnr_eval,) = [e for e in module.energy_evaluators() if isinstance(e, DenoisingPSNR)]
    assert psnr_eval.denoiser == module.denoise_images

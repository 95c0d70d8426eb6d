"""Denoising score-matching loss and min-SNR weights."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lit_gen.diffusion import GaussianDenoiser, LinearSchedule, convert, dsm_loss, min_snr_weight

SNR = torch.tensor([0.5, 5.0, 20.0])


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("eps", [1.0, 1.0, 0.25]),
        ("x0", [0.5, 5.0, 5.0]),
        ("v", [0.5 / 1.5, 5.0 / 6.0, 5.0 / 21.0]),
    ],
)
def test_min_snr_weight_hand_values(prediction: str, expected: list[float]) -> None:
    torch.testing.assert_close(min_snr_weight(SNR, prediction, gamma=5.0), torch.tensor(expected))


def test_min_snr_weight_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="gamma"):
        min_snr_weight(SNR, "eps", gamma=0.0)
    with pytest.raises(ValueError, match="prediction"):
        min_snr_weight(SNR, "score")


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("weighting", ["none", "min_snr"])
def test_oracle_on_single_point_data_has_zero_loss(prediction: str, weighting: str) -> None:
    # With all data at one point c, x0 = c is known exactly, so the ideal network is exact for every target.
    sched = LinearSchedule().double()
    c = torch.tensor([0.7, -1.3], dtype=torch.float64)

    def oracle(x_t: Tensor, t: Tensor) -> Tensor:
        return convert(c.expand_as(x_t), x_t, sched.alpha_bar(t), "x0", prediction)

    x0 = c.expand(256, 2).clone()
    gen = torch.Generator().manual_seed(0)
    loss = dsm_loss(oracle, sched, x0, prediction, weighting, generator=gen)
    assert loss.item() < 1e-16
    # The same sampled (t, ε) with a wrong c gives a clearly positive loss: the zero above is not vacuous.
    gen = torch.Generator().manual_seed(0)
    wrong = dsm_loss(oracle, sched, x0 + 0.1, prediction, weighting, generator=gen)
    assert wrong.item() > 1e-4


def test_loss_matches_manual_computation() -> None:
    sched = LinearSchedule()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 2, 3, generator=gen)
    noise = torch.randn(8, 2, 3, generator=gen)
    t = torch.tensor([0.0, 1.0, 10.0, 100.0, 300.0, 600.0, 900.0, 999.0])

    def net(x: Tensor, tt: Tensor) -> Tensor:
        return 0.5 * x + tt[:, None, None] / 1000

    ab = sched.alpha_bar(t)[:, None, None]
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    v = ab.sqrt() * noise - (1 - ab).sqrt() * x0
    per = (net(x_t, t) - v).square().mean(dim=(1, 2))
    snr = ab.flatten() / (1 - ab.flatten())
    w = snr.clamp(max=5.0) / (snr + 1)
    got = dsm_loss(net, sched, x0, "v", "min_snr", t=t, noise=noise)
    torch.testing.assert_close(got, (w * per).mean())
    got_plain = dsm_loss(net, sched, x0, "v", "none", t=t, noise=noise)
    torch.testing.assert_close(got_plain, per.mean())


def test_bayes_optimal_eps_net_attains_posterior_variance() -> None:
    # Gaussian data: the best ε-predictor is E[ε | x_t] and its expected loss is tr Cov(ε | x_t)/d, with
    # Cov(ε | x_t) = (ᾱ/(1−ᾱ)) Cov(x0 | x_t) and Cov(x0 | x_t) = Σ − ᾱ Σ (ᾱΣ + (1−ᾱ)I)^{-1} Σ.
    sched = LinearSchedule().double()
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    denoiser = GaussianDenoiser(mu, cov, sched)

    def best(x_t: Tensor, t: Tensor) -> Tensor:
        return convert(denoiser(x_t, t), x_t, sched.alpha_bar(t), "x0", "eps")

    n, t_val = 20000, 150.0
    gen = torch.Generator().manual_seed(3)
    x0 = mu + torch.randn(n, 2, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    t = torch.full((n,), t_val, dtype=torch.float64)
    noise = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    ab = sched.alpha_bar(t[:1]).item()
    post = cov - ab * cov @ torch.linalg.solve(ab * cov + (1 - ab) * torch.eye(2, dtype=torch.float64), cov)
    expected = (ab / (1 - ab)) * torch.trace(post).item() / 2

    per_sample = (best(sched.q_sample(x0, t, noise), t) - noise).square().mean(1)
    se = per_sample.std().item() / n**0.5
    loss = dsm_loss(best, sched, x0, "eps", t=t, noise=noise)
    assert abs(loss.item() - expected) < 4 * se
    # Shifting the optimum by 0.2 costs 0.2² = 0.04 in expectation (on the same draws: ± a few 1e-3).
    worse = dsm_loss(lambda x, tt: best(x, tt) + 0.2, sched, x0, "eps", t=t, noise=noise)
    assert worse.item() - loss.item() == pytest.approx(0.04, abs=0.01)


def test_random_draws_are_reproducible_and_integer_times() -> None:
    sched = LinearSchedule(num_timesteps=50)
    seen: list[Tensor] = []

    def net(x: Tensor, t: Tensor) -> Tensor:
        seen.append(t)
        return torch.zeros_like(x)

    x0 = torch.randn(512, 2)
    a = dsm_loss(net, sched, x0, generator=torch.Generator().manual_seed(5))
    b = dsm_loss(net, sched, x0, generator=torch.Generator().manual_seed(5))
    c = dsm_loss(net, sched, x0, generator=torch.Generator().manual_seed(6))
    assert a.item() == b.item() != c.item()
    t = seen[0]
    assert t.dtype == torch.float32 and t.shape == (512,)
    assert torch.equal(t, t.round()) and t.min() >= 0 and t.max() <= 49
    assert len(t.unique()) > 40  # covers the range


def test_gradients_reach_the_network() -> None:
    net = nn.Linear(2, 2)
    loss = dsm_loss(lambda x, t: net(x), LinearSchedule(), torch.randn(16, 2), "eps", "min_snr")
    loss.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


def test_bad_arguments_raise() -> None:
    sched = LinearSchedule()
    x0 = torch.randn(4, 2)
    with pytest.raises(ValueError, match="shape of its input"):
        dsm_loss(lambda x, t: x[:, :1], sched, x0)
    with pytest.raises(ValueError, match="weighting"):
        dsm_loss(lambda x, t: x, sched, x0, weighting="snr")
    with pytest.raises(ValueError, match=r"t must have shape"):
        dsm_loss(lambda x, t: x, sched, x0, t=torch.zeros(3))
    with pytest.raises(ValueError, match="prediction"):
        dsm_loss(lambda x, t: x, sched, x0, prediction="noise")
    with pytest.raises(ValueError, match="noise must have the shape"):
        dsm_loss(lambda x, t: x, sched, x0, noise=torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\[0, T-1\]"):
        dsm_loss(lambda x, t: x, sched, x0, t=torch.full((4,), 1000.0))

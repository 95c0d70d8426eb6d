"""Conditional energies for MCMC (``lit_gen.mcmc.conditional``) on analytic targets.

Tolerances as in ``_mcmc_targets.py``: the chains are independent, so after burn-in the final states are n
independent draws and a moment is accepted within 4 standard errors, ``SE(mean) = sd/sqrt(n)``,
``SE(var) = var sqrt(2/n)``, ``SE(cov_ij) = sqrt(Σ_ii Σ_jj / n)`` for a diagonal Σ. MALA has no step-size bias;
its burn-in contracts the distance to the mean by about ``1 − η/s²`` per step (0.6 here), so 150 steps from
N(0, 4 I) leave no trace of the start.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from lit_gen.mcmc import MALA
from lit_gen.mcmc.conditional import (
    conditional_energy,
    guided_energy,
    jem_accuracy,
    jem_class_energy,
    jem_energy,
    product_of_experts,
)
from lit_gen.nn import EnergyMLP

K_SE = 4.0
MU = torch.tensor([[-2.0, 1.0], [1.5, 0.5], [0.0, -2.0]], dtype=torch.float64)
S = 0.5


def class_gaussian_energy(x: Tensor, y: Tensor | None = None) -> Tensor:
    """``E(x, y) = ½ ‖x − μ_y‖² / s²``, so ``p(x | y) = N(μ_y, s² I)``."""
    assert y is not None
    return 0.5 * (x - MU[y]).square().sum(1) / S**2


def _run(energy, n: int, step: float, seed: int, steps: int = 150) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    x0 = 2.0 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    out = MALA(step_size=step).run(energy, x0, steps, generator=gen)
    assert 0.5 < out.stats["acceptance_rate"] < 1.0
    return out.x


def _assert_gaussian_moments(x: Tensor, mean: Tensor, var: float) -> None:
    n = x.shape[0]
    sd = math.sqrt(var)
    assert ((x.mean(0) - mean).abs() <= K_SE * sd / math.sqrt(n)).all(), (x.mean(0), mean)
    cov = torch.cov(x.T)
    assert ((cov.diagonal() - var).abs() <= K_SE * var * math.sqrt(2 / n)).all(), (cov, var)
    assert abs(cov[0, 1].item()) <= K_SE * var / math.sqrt(n), cov


def test_conditional_mala_reproduces_each_class() -> None:
    n = 3000
    labels = torch.arange(3).repeat_interleave(n)  # one label per chain, all classes in one run
    x = _run(conditional_energy(class_gaussian_energy, labels), 3 * n, step=0.1, seed=0)
    for c in range(3):
        _assert_gaussian_moments(x[labels == c], MU[c], S**2)
    # One int for every chain.
    _assert_gaussian_moments(_run(conditional_energy(class_gaussian_energy, 2), n, 0.1, seed=1), MU[2], S**2)


def test_product_of_experts_samples_the_product_gaussian() -> None:
    # E(x) = ½‖x − m‖²/s0², E(x, y) = ½‖x − μ_y‖²/s1²:  p(x) q_y(x)^w = N((m/s0² + w μ_y/s1²)/λ, I/λ),
    # λ = 1/s0² + w/s1².
    m, s0, s1, w, c = torch.tensor([1.0, 1.0], dtype=torch.float64), 1.0, 0.8, 2.0, 0

    def uncond(x: Tensor) -> Tensor:
        return 0.5 * (x - m).square().sum(1) / s0**2

    def cond(x: Tensor, y: Tensor | None = None) -> Tensor:
        return 0.5 * (x - MU[y]).square().sum(1) / s1**2

    lam = 1 / s0**2 + w / s1**2
    x = _run(product_of_experts(uncond, cond, c, weight=w), 4000, step=0.1, seed=2)
    _assert_gaussian_moments(x, (m / s0**2 + w * MU[c] / s1**2) / lam, 1 / lam)
    # weight 0 is the unconditional expert alone
    x_t = torch.randn(5, 2, dtype=torch.float64)
    assert torch.equal(product_of_experts(uncond, cond, c, weight=0.0)(x_t), uncond(x_t))


def test_guided_energy_samples_the_cfg_gaussian() -> None:
    # One network with a null class: E(x, ∅) = ½‖x − m‖²/s0², E(x, y) = ½‖x − μ_y‖²/s1². The guided energy
    # (1 − w) E(x, ∅) + w E(x, y) is Gaussian with precision λ = (1 − w)/s0² + w/s1² (> 0 here at w = 2) and mean
    # ((1 − w) m/s0² + w μ_y/s1²)/λ.
    m, s0, s1, w, c = torch.tensor([0.5, -0.5], dtype=torch.float64), 1.0, 0.5, 2.0, 1

    def net(x: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            return 0.5 * (x - m).square().sum(1) / s0**2
        return 0.5 * (x - MU[y]).square().sum(1) / s1**2

    lam = (1 - w) / s0**2 + w / s1**2
    x = _run(guided_energy(net, c, w), 4000, step=0.05, seed=4)
    _assert_gaussian_moments(x, ((1 - w) * m / s0**2 + w * MU[c] / s1**2) / lam, 1 / lam)
    x_t = torch.randn(5, 2, dtype=torch.float64)
    assert torch.equal(guided_energy(net, c, 0.0)(x_t), net(x_t))
    assert torch.equal(guided_energy(net, c, 1.0)(x_t), net(x_t, torch.full((5,), c)))


def _quadratic_logits(x: Tensor) -> Tensor:
    """``f(x)[k] = −½ ‖x − μ_k‖²/s² + b_k``: JEM's ``p(x | y)`` is N(μ_y, s² I)."""
    b = torch.tensor([0.0, 0.3, -0.2], dtype=x.dtype)
    return -0.5 * (x[:, None, :] - MU[None]).square().sum(-1) / S**2 + b


def test_jem_energies_and_accuracy_on_hand_built_logits() -> None:
    x = torch.randn(7, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    f = _quadratic_logits(x)
    torch.testing.assert_close(jem_energy(_quadratic_logits)(x), -torch.logsumexp(f, 1))
    torch.testing.assert_close(jem_class_energy(_quadratic_logits, y)(x), -f[torch.arange(7), y])
    # E(x, y) − E(x) = −log p(y | x), p(y | x) = softmax f(x)
    torch.testing.assert_close(
        jem_class_energy(_quadratic_logits, y)(x) - jem_energy(_quadratic_logits)(x),
        -f.log_softmax(1)[torch.arange(7), y],
    )
    # Points at the class centres are classified as their class; a third of the labels wrong → accuracy 2/3.
    centres = MU.repeat(10, 1) + 0.01 * torch.randn(30, 2, dtype=torch.float64)
    truth = torch.arange(3).repeat(10)
    assert jem_accuracy(_quadratic_logits, centres, truth) == 1.0
    wrong = truth.clone()
    wrong[:10] = (wrong[:10] + 1) % 3
    assert jem_accuracy(_quadratic_logits, centres, wrong, batch_size=7) == pytest.approx(20 / 30)
    # MALA on the JEM class energy samples p(x | y) = N(μ_y, s² I).
    _assert_gaussian_moments(_run(jem_class_energy(_quadratic_logits, 1), 3000, 0.1, seed=3), MU[1], S**2)


def test_jem_network_reading_matches_the_helpers() -> None:
    torch.manual_seed(0)
    net = EnergyMLP((2,), hidden=16, depth=2, num_classes=3, class_logits=True)
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(net(x, y), jem_class_energy(net.logits, y)(x))
    torch.testing.assert_close(net(x), jem_energy(net.logits)(x))
    assert net(x).requires_grad  # usable by the samplers
    out = MALA(step_size=0.01).run(conditional_energy(net, y), x, 3, generator=torch.Generator().manual_seed(0))
    assert out.x.shape == x.shape and torch.isfinite(out.x).all()


def test_conditional_energy_errors() -> None:
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="3 chains|4 chains"):
        conditional_energy(class_gaussian_energy, torch.tensor([0, 1, 2]))(x)
    with pytest.raises(ValueError, match="integer"):
        conditional_energy(class_gaussian_energy, torch.tensor([0.0, 1.0, 1.0, 0.0]))(x)
    with pytest.raises(ValueError, match="weight"):
        product_of_experts(lambda x: x.sum(1), class_gaussian_energy, 0, weight=-1.0)
    with pytest.raises(ValueError, match="class label 3 is out of range for the 3 logits"):
        jem_class_energy(_quadratic_logits, 3)(x)
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        jem_energy(lambda x: x.sum(1))(x)
    with pytest.raises(ValueError, match="shape"):
        jem_accuracy(_quadratic_logits, x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="built without num_classes"):
        conditional_energy(EnergyMLP((2,), hidden=8), 1)(torch.zeros(3, 2))

"""eps / x0 / v predictions and their conversions."""

from __future__ import annotations

import itertools

import pytest
import torch

from lit_gen.diffusion.parametrization import PREDICTIONS, convert, to_eps, to_v, to_x0, training_target


def _setup(shape: tuple[int, ...] = (64, 3, 2, 2)) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=gen, dtype=torch.float64)
    eps = torch.randn(shape, generator=gen, dtype=torch.float64)
    alpha_bar = torch.rand(shape[0], generator=gen, dtype=torch.float64) * 0.98 + 0.01
    a = alpha_bar.sqrt().reshape(-1, *([1] * (len(shape) - 1)))
    x_t = a * x0 + (1 - a**2).sqrt() * eps
    return x0, eps, alpha_bar, x_t


def test_v_target_definition() -> None:
    x0, eps, ab, _ = _setup((5, 2))
    v = training_target("v", x0, eps, ab)
    torch.testing.assert_close(v, ab.sqrt()[:, None] * eps - (1 - ab).sqrt()[:, None] * x0)
    assert training_target("eps", x0, eps, ab) is eps
    assert training_target("x0", x0, eps, ab) is x0


@pytest.mark.parametrize("src", PREDICTIONS)
def test_every_prediction_recovers_x0_and_eps(src: str) -> None:
    x0, eps, ab, x_t = _setup()
    pred = training_target(src, x0, eps, ab)
    torch.testing.assert_close(to_x0(pred, x_t, ab, src), x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(to_eps(pred, x_t, ab, src), eps, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(to_v(pred, x_t, ab, src), training_target("v", x0, eps, ab), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(PREDICTIONS, PREDICTIONS)))
def test_convert_all_pairs_and_round_trip(src: str, dst: str) -> None:
    x0, eps, ab, x_t = _setup()
    pred = training_target(src, x0, eps, ab)
    out = convert(pred, x_t, ab, src, dst)
    torch.testing.assert_close(out, training_target(dst, x0, eps, ab), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(convert(out, x_t, ab, dst, src), pred, rtol=1e-9, atol=1e-9)


def test_scalar_alpha_bar_broadcasts() -> None:
    x0, eps, _, _ = _setup((4, 2))
    ab = torch.tensor(0.3, dtype=torch.float64)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    torch.testing.assert_close(to_x0(eps, x_t, ab, "eps"), x0)


def test_unknown_prediction_lists_valid_ones() -> None:
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"\['eps', 'x0', 'v'\]"):
        to_x0(x, x, torch.ones(2) * 0.5, "score")
    with pytest.raises(ValueError, match="dst"):
        convert(x, x, torch.ones(2) * 0.5, "eps", "noise")


def test_alpha_bar_batch_mismatch_raises() -> None:
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="one ᾱ per sample"):
        to_x0(x, x, torch.ones(2) * 0.5, "v")

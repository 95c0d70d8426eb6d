"""FourierTimeEnergyMLP: shapes, fixed seeded frequencies kept in checkpoints, time and input checks."""

from __future__ import annotations

import pytest
import torch

from lit_gen.ddaebm import FourierTimeEnergyMLP


def test_shape_time_dependence_and_seeded_frequencies() -> None:
    torch.manual_seed(0)
    e = FourierTimeEnergyMLP((2,), num_features=16, scale=3.0, hidden=16, depth=1)
    x = torch.randn(6, 2)
    out = e(x, torch.zeros(6))
    assert out.shape == (6,)
    assert not torch.allclose(out, e(x, torch.full((6,), 2.0)))  # the trunk sees t
    assert e.freqs.shape == (2, 16)
    # std of 32 N(0, 3²) draws: 3 within ±3·3/sqrt(2·31) ≈ ±1.1 (sampling sd of a std estimate × 3)
    assert abs(float(e.freqs.std()) - 3.0) < 1.2
    same = FourierTimeEnergyMLP((2,), num_features=16, scale=3.0, seed=0, hidden=16, depth=1)
    assert torch.equal(same.freqs, e.freqs) and not torch.equal(
        FourierTimeEnergyMLP((2,), num_features=16, scale=3.0, seed=1, hidden=16, depth=1).freqs, e.freqs)
    assert "freqs" in e.state_dict()  # a checkpoint reloads the same features
    torch.testing.assert_close(e(x[:2], 0.0), out[:2])  # no coupling across the batch


def test_high_frequency_is_reachable() -> None:
    # with scale 10 the features of two points 0.1 apart differ by O(1); a raw-coordinate input would not
    e = FourierTimeEnergyMLP((2,), num_features=64, scale=10.0, hidden=8, depth=1)
    a, b = torch.zeros(1, 2), torch.tensor([[0.1, 0.0]])
    fa, fb = (torch.cat([(p @ e.freqs).sin(), (p @ e.freqs).cos()], 1) for p in (a, b))
    assert float((fa - fb).norm()) > 2.0


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_features"):
        FourierTimeEnergyMLP((2,), num_features=0)
    with pytest.raises(ValueError, match="scale"):
        FourierTimeEnergyMLP((2,), scale=-1.0)
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        FourierTimeEnergyMLP((2,), hidden=8, depth=1)(torch.zeros(3, 3), 0.0)

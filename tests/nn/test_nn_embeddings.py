import math

import pytest
import torch

from lit_gen.nn import SinusoidalTimeEmbedding


def test_shape_and_known_values():
    emb = SinusoidalTimeEmbedding(16)
    t = torch.tensor([0.0, 1.0, 999.0, 3.5])
    out = emb(t)
    assert out.shape == (4, 16)
    # t = 0: all sines 0, all cosines 1.
    torch.testing.assert_close(out[0], torch.cat([torch.zeros(8), torch.ones(8)]))
    # The first frequency is 1: column 0 is sin(t), column 8 is cos(t).
    torch.testing.assert_close(out[:, 0], torch.sin(t))
    torch.testing.assert_close(out[:, 8], torch.cos(t))
    # The lowest frequency is max_period^(-7/8).
    w_last = 10000.0 ** (-7 / 8)
    assert out[2, 7].item() == pytest.approx(math.sin(999.0 * w_last), abs=1e-5)


def test_distinct_times_give_distinct_embeddings():
    emb = SinusoidalTimeEmbedding(32)
    t = torch.arange(0, 1000, dtype=torch.float32)
    out = emb(t)
    d = torch.cdist(out, out)
    d.fill_diagonal_(float("inf"))
    assert d.min() > 1e-2
    # Fractional times are supported and sit between integer neighbours.
    mid = emb(torch.tensor([10.5]))
    assert 0 < (mid - out[10]).norm() < (out[11] - out[10]).norm()


def test_odd_dim_and_bad_input():
    out = SinusoidalTimeEmbedding(7)(torch.tensor([1.0, 2.0]))
    assert out.shape == (2, 7)
    assert torch.all(out[:, -1] == 0)
    with pytest.raises(ValueError, match="dim"):
        SinusoidalTimeEmbedding(1)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        SinusoidalTimeEmbedding(8)(torch.zeros(2, 1))


def test_output_precision_is_at_least_float32():
    emb = SinusoidalTimeEmbedding(8)
    assert emb(torch.tensor([999.0], dtype=torch.float16)).dtype == torch.float32
    assert emb(torch.tensor([999], dtype=torch.int64)).dtype == torch.float32
    assert emb(torch.tensor([999.0], dtype=torch.float64)).dtype == torch.float64

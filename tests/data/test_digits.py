"""DigitsDataModule: bundled sklearn digits as (1, S, S) images in [-1, 1]."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from lit_gen.data import DigitsDataModule


def test_shape_range_split_and_batches() -> None:
    dm = DigitsDataModule(batch_size=64, val_fraction=0.1, test_fraction=0.1, seed=0)
    assert dm.data_shape == (1, 8, 8)
    parts = [dm.tensor(s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [1437, 180, 180]
    everything = torch.cat(parts)
    assert everything.shape == (1797, 1, 8, 8)
    assert float(everything.min()) == -1.0 and float(everything.max()) == 1.0
    # Values are x / 16 * 2 - 1 of sklearn's 0..16 pixels: same multiset of images.
    ref = torch.from_numpy(load_digits().images).float() / 8.0 - 1.0
    torch.testing.assert_close(everything.sum(0)[0], ref.sum(0))
    torch.testing.assert_close(everything.flatten().sort().values, ref.flatten().sort().values)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (64, 1, 8, 8) and batch.dtype == torch.float32
    low, high = dm.bounds()
    assert low.shape == (1, 8, 8) and (low == -1).all() and (high == 1).all()
    assert dm.data_range == (-1.0, 1.0)
    again = DigitsDataModule(seed=0)
    torch.testing.assert_close(again.tensor("test"), dm.tensor("test"))
    assert not torch.equal(DigitsDataModule(seed=1).tensor("test"), dm.tensor("test"))


def test_resize() -> None:
    dm = DigitsDataModule(image_size=16)
    assert dm.data_shape == (1, 16, 16)
    x = dm.tensor("train")
    assert x.shape[1:] == (1, 16, 16)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    # Bilinear upsampling preserves the mean brightness up to edge effects.
    small = DigitsDataModule(image_size=None).tensor("train")
    assert abs(float(x.mean()) - float(small.mean())) < 0.02


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        DigitsDataModule(image_size=0)
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must be < 1"):
        DigitsDataModule(val_fraction=0.5, test_fraction=0.5)

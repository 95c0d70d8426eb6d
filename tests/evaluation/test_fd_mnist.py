"""FD-MNIST in the test report: it applies to the original MNIST files only, and feeds the score the right sets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from fakes import write_mnist

import lit_gen.metrics as metrics
from lit_gen.data import FashionMNISTDataModule, MNISTDataModule
from lit_gen.evaluation import FDMNIST
from lit_gen.models import DiffusionModule
from lit_gen.nn import UNet


def test_only_the_original_mnist_files_get_fd_mnist(tmp_path) -> None:
    write_mnist(tmp_path, "MNIST")
    write_mnist(tmp_path, "FashionMNIST")
    assert MNISTDataModule(root=str(tmp_path)).mnist_root is None  # tiny fake files are not MNIST
    assert FashionMNISTDataModule(root=str(tmp_path)).mnist_root is None
    model = DiffusionModule(net=UNet, data_shape=(1, 28, 28), test_nll_samples=0)
    assert any(isinstance(ev, FDMNIST) for ev in model.evaluators)


def test_the_score_sees_n_samples_n_test_images_and_n_train_images(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {}
    monkeypatch.setattr(metrics, "load_mnist_arrays", lambda root: {"x_train": torch.zeros(50, 28, 28)})
    monkeypatch.setattr(metrics, "load_mnist_classifier", lambda root, log=None: "clf")

    def report(fake, test, train, clf):
        calls.update(fake=fake.shape, test=test.shape, train=train.shape, clf=clf)
        return {"fd_mnist": 1.0, "fd_mnist_floor": 0.5}

    monkeypatch.setattr(metrics, "mnist_sample_report", report)
    module = SimpleNamespace(_trainer=SimpleNamespace(datamodule=SimpleNamespace(mnist_root="/data")),
                             eval_sample=lambda n: torch.ones(n, 1, 28, 28))
    ev = FDMNIST(max_points=12, sample_batch=5)
    for _ in range(4):
        ev.update(module, torch.zeros(4, 1, 28, 28), 0, "test")
    assert ev.report(module) == {"fd_mnist": 1.0, "fd_mnist_floor": 0.5}
    assert calls == {"fake": (12, 1, 28, 28), "test": (12, 1, 28, 28), "train": (12, 28, 28), "clf": "clf"}
    module._trainer.datamodule.mnist_root = None
    ev.update(module, torch.zeros(4, 1, 28, 28), 0, "test")
    assert ev.report(module) == {}

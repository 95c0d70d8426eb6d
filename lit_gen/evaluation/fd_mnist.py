"""FD-MNIST in the test report: Fréchet distance (Heusel et al. 2017) on a small MNIST classifier's features.

For models trained on the original MNIST files (the data module's ``mnist_root``, see
``python -m lit_gen.data.mnist_prepare``): the first ``max_points`` test images against as many samples, the floor
FD(train subset, test) at the same count, the samples' class histogram (coverage, TV and KL to uniform) and the
classifier's mean confidence (:func:`lit_gen.metrics.mnist_sample_report`). The classifier is trained once on the
train split and cached beside the data (:func:`lit_gen.metrics.load_mnist_classifier`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lit_gen.contract import data_mnist_root
from lit_gen.evaluation.base import Evaluator

__all__ = ["FDMNIST"]


class FDMNIST(Evaluator):
    """``fd_mnist``, ``fd_mnist_floor`` and the class-histogram figures over ``max_points`` test images."""

    def __init__(self, max_points: int = 2000, sample_batch: int = 500) -> None:
        super().__init__()
        self.max_points = int(max_points)
        self.sample_batch = int(sample_batch)
        self._real: list[Tensor] = []

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        if data_mnist_root(module._trainer) is None:
            return
        held = sum(len(b) for b in self._real)
        if held < self.max_points:
            self._real.append(batch[: self.max_points - held].detach().float().cpu())

    def report(self, module: Any) -> dict[str, float]:
        real, self._real = self._real, []
        root = data_mnist_root(module._trainer)
        if root is None or sum(len(b) for b in real) < 2:
            return {}
        from lit_gen.metrics import load_mnist_arrays, load_mnist_classifier, mnist_sample_report

        test = torch.cat(real)
        n = len(test)
        fake = torch.cat([module.eval_sample(min(self.sample_batch, n - i)).detach().float().cpu()
                          for i in range(0, n, self.sample_batch)])
        arrays = load_mnist_arrays(root)
        g = torch.Generator().manual_seed(0)
        train = arrays["x_train"][torch.randperm(len(arrays["x_train"]), generator=g)[:n]]
        classifier = load_mnist_classifier(root, log=print)
        return mnist_sample_report(fake, test, train, classifier)

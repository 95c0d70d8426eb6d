"""Classification accuracy of a JEM energy: ``argmax_y f(x)[y]`` on the labelled test split.

An energy network built with ``class_logits=True`` reads its K outputs as the logits f(x) of a classifier
(Grathwohl et al. 2020, "Your classifier is secretly an energy based model"): ``E(x, y) = −f(x)[y]``,
``E(x) = −logsumexp_y f(x)[y]`` and ``p(y | x) = softmax f(x)``. The same network is then a classifier, and the
test report gives its accuracy (``jem_accuracy``) on the test images and labels, beside the generative figures.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.classification import MulticlassAccuracy

from lit_gen.evaluation.base import Evaluator

__all__ = ["JEMAccuracy"]


class JEMAccuracy(Evaluator):
    """Top-1 accuracy of ``argmax f(x)`` (``energy_net.logits``) over every labelled test batch.

    Args:
        num_classes: K, the number of logits.
    """

    needs_labels = True

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.accuracy = MulticlassAccuracy(num_classes=int(num_classes), average="micro")
        self._seen = 0

    def start(self, module: Any, split: str) -> None:
        self.accuracy.reset()
        self._seen = 0

    def update(self, module: Any, batch: Any, batch_idx: int, split: str) -> None:
        x, y = batch
        if y is None:
            return
        with torch.no_grad():
            logits = module.energy_net.logits(x)
        self.accuracy.update(logits.argmax(dim=1), y.to(logits.device))
        self._seen += len(y)

    def report(self, module: Any) -> dict[str, float]:
        if self._seen == 0:
            return {}
        out = {"jem_accuracy": float(self.accuracy.compute()), "jem_accuracy_n": float(self._seen)}
        self.accuracy.reset()
        self._seen = 0
        return out


def jem_logits_available(module: Any) -> bool:
    """Whether ``module``'s energy network reads its outputs as class logits (``class_logits=True``)."""
    return bool(getattr(getattr(module, "energy_net", None), "class_logits", False))

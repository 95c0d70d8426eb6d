"""FD-digits in the test report: Fréchet distance (Heusel et al. 2017) on a small digit classifier's features.

For grey images trained on the sklearn digits (the data module's ``digits_like``): the test images against as
many samples, and the floor FD(test, train) on as many train images (:mod:`lit_gen.metrics.digits_classifier`).
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from lit_gen.contract import data_digits_like, data_split
from lit_gen.evaluation.base import Evaluator

__all__ = ["FDDigits"]


class FDDigits(Evaluator):
    """``fd_digits`` and ``fd_digits_floor`` over at most ``max_points`` test images.

    ceil(cap / W) per DDP rank, in loader order (the digits splits are seeded random permutations); batches
    beyond are not sampled from. The two Fréchet metrics are plain attributes (not sub-modules), built at the
    first test batch, so they are never saved in checkpoints.
    """

    def __init__(self, max_points: int = 10000) -> None:
        super().__init__()
        self.max_points = max_points
        self._fd: dict[str, Any] | None = None

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        if not data_digits_like(module._trainer):
            return
        from lit_gen.metrics import FrechetDistance, load_digits_classifier
        from lit_gen.metrics.digits_classifier import FEATURES

        if self._fd is None:
            features = load_digits_classifier().features
            self._fd = {k: FrechetDistance(features, FEATURES) for k in ("model", "floor")}
        trainer = module._trainer
        world = int(trainer.world_size) if trainer is not None else 1
        room = math.ceil(self.max_points / world) - int(self._fd["model"].real_n)
        if room <= 0:
            return
        real = batch[:room].detach().float().cpu()
        fake = module.eval_sample(real.shape[0]).detach().float().cpu()
        self._fd["model"].update(real, real=True)
        self._fd["model"].update(fake, real=False)
        train = data_split(trainer, "train")
        start = int(self._fd["floor"].fake_n)
        if train is not None and start < len(train):
            self._fd["floor"].update(real, real=True)
            self._fd["floor"].update(train[start : start + real.shape[0]].float(), real=False)

    def report(self, module: Any) -> dict[str, float]:
        if self._fd is None:
            return {}
        out = {"fd_digits": float(self._fd["model"].compute())}
        if self._fd["floor"].fake_n >= 2:
            out["fd_digits_floor"] = float(self._fd["floor"].compute())
        self._fd = None
        return out

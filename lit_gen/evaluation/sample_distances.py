"""SW1 and MMD² between fresh samples and held-out data, with their data-vs-data floors.

Validation and test compare ``n`` fresh samples with ``n`` held-out points through the sliced Wasserstein-1
distance (Rabin et al. 2011; Bonneel et al. 2015) and the unbiased MMD² (Gretton et al. 2012), for vector data.
The test report adds the floor: the same metric between an equal-size seeded subsample of the train split and the
test points the model was scored on (what a perfect model would score, up to sampling noise). The sizes used are
reported as ``eval_n_sw1``, ``eval_n_mmd``, ``eval_n_floor`` (train points of the floor) and
``eval_n_test_split``. See :mod:`lit_gen.evaluation.subsample` for how the capped subsample is drawn.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lit_gen.contract import data_split
from lit_gen.evaluation.base import Evaluator
from lit_gen.evaluation.subsample import EvalSubsample, build_subsample, eval_seed, subsample_indices
from lit_gen.metrics import MaximumMeanDiscrepancy, SlicedWassersteinDistance, mmd2_unbiased, sliced_wasserstein

__all__ = ["SampleDistances"]


class SampleDistances(Evaluator):
    """SW1/MMD² of ``module.eval_sample`` against capped held-out data, in validation and test.

    Args:
        eval_max_points: test points (and as many samples) entering SW1 and its floor.
        mmd_max_points: the first that many of them also enter MMD² (O(n²) kernel evaluations).
        val_max_points: the cap in validation (sampling is paid per point every validation epoch).

    Logs ``val/sw1`` (progress bar) and ``val/mmd``; the test report gets ``sw1``, ``mmd``, ``sw1_floor``,
    ``mmd_floor`` and the sizes. Without an in-memory split, each rank takes at most ceil(cap / W) points in
    loader order; test batches beyond the cap are not sampled from at all.
    """

    splits = ("val", "test")

    def __init__(self, eval_max_points: int = 10000, mmd_max_points: int = 4000, val_max_points: int = 2000) -> None:
        super().__init__()
        self.eval_max_points = eval_max_points
        self.mmd_max_points = mmd_max_points
        self.val_max_points = val_max_points
        self.val_sw1 = SlicedWassersteinDistance()
        self.val_mmd = MaximumMeanDiscrepancy()
        self.test_sw1 = SlicedWassersteinDistance()
        self.test_mmd = MaximumMeanDiscrepancy()
        self._subsamples: dict[str, EvalSubsample] = {}

    def subsample(self, module: Any, split: str, batch_idx: int = 0) -> EvalSubsample:
        """This rank's share of the capped subsample of ``split`` ("val" or "test") for this epoch.

        Built at the epoch's first batch (``batch_idx == 0``) and kept until the next one.
        """
        sub = self._subsamples.get(split)
        if sub is None or batch_idx == 0:
            cap = self.val_max_points if split == "val" else self.eval_max_points
            sub = build_subsample(module._trainer, split, cap, self.mmd_max_points)
            self._subsamples[split] = sub
        return sub

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        sw1, mmd = (self.val_sw1, self.val_mmd) if split == "val" else (self.test_sw1, self.test_mmd)
        feed(module, batch, sw1, mmd, self.subsample(module, split, batch_idx))
        if split == "val":
            module.log("val/sw1", self.val_sw1, prog_bar=True)
            module.log("val/mmd", self.val_mmd)

    def report(self, module: Any) -> dict[str, float]:
        report: dict[str, float] = {"sw1": float(self.test_sw1.compute()), "mmd": float(self.test_mmd.compute())}
        # the test points the metrics saw, gathered from every rank: the floor uses exactly these
        real_sw1 = self.test_sw1.samples()[1]
        real_mmd = self.test_mmd.samples()[1]
        self.test_sw1.reset()
        self.test_mmd.reset()
        self._subsamples.pop("test", None)
        n = len(real_sw1)
        sizes: dict[str, int] = {"eval_n_sw1": n, "eval_n_mmd": len(real_mmd)}
        trainer = module._trainer
        train_data = data_split(trainer, "train")
        if train_data is not None and len(train_data) >= n:
            # a second independent draw of the data: an equal-size seeded subsample of train (its first points
            # for MMD², like the model's sets)
            ref = train_data[subsample_indices(len(train_data), n, eval_seed(trainer, "train"))]
            ref = ref.to(device=real_sw1.device, dtype=real_sw1.dtype)
            report["sw1_floor"] = float(sliced_wasserstein(ref, real_sw1))
            report["mmd_floor"] = float(mmd2_unbiased(ref[: len(real_mmd)], real_mmd))
            sizes["eval_n_floor"] = n
        test_data = data_split(trainer, "test")
        if test_data is not None:
            sizes["eval_n_test_split"] = len(test_data)
        report.update(sizes)
        return report


def feed(module: Any, batch: Tensor, sw1: Any, mmd: Any, sub: EvalSubsample | None = None) -> None:
    """Feed ``sw1`` and ``mmd`` with this step's share of the subsample ``sub`` and as many fresh samples.

    Without ``sub``, the whole batch. Once the share is used up, nothing is sampled (the step is free).
    """
    if sub is None:
        sub = EvalSubsample(None, batch.shape[0], batch.shape[0], None)
    start = sub.used
    k = min(batch.shape[0], sub.limit - start)
    if k <= 0:
        return
    if sub.rows is None:
        real = batch[:k]
    else:
        real = sub.rows[start : start + k].to(device=batch.device, dtype=batch.dtype)
    fake = module.eval_sample(k).to(batch.dtype)
    sub.used += k
    sw1.update(fake, real)
    m = min(k, sub.mmd_limit - start)
    if m > 0:
        mmd.update(fake[:m], real[:m])

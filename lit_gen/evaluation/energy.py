"""What an energy tells about the test data: OOD AUROCs (images) and grid NLL (2-D data).

* Images: AUROC of the score ``−E`` between test images and out-of-distribution sets
  (:func:`lit_gen.metrics.ood_report`).
* 2-D data: the NLL of the test points under ``exp(−E)`` normalised on a ``[−L, L]²`` grid
  (:func:`lit_gen.metrics.grid_nll`, ``docs/algorithms.md#grid-nll``), the probability mass outside the grid's inner
  box (``mass_escape``), and the gap to the data's exact NLL when the data module knows it.

Both read the whole test split from the data module (``tensor("test")``); without one they report nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from lit_gen.contract import data_split, data_true_nll
from lit_gen.evaluation.base import Evaluator

__all__ = ["EnergyOOD", "GridNLL"]


class EnergyOOD(Evaluator):
    """OOD AUROCs of ``module.ood_score`` (−E) on the test images against noise and distorted images."""

    def report(self, module: Any) -> dict[str, float]:
        test_data = data_split(module._trainer, "test")
        if test_data is None:
            return {}
        from lit_gen.metrics import ood_report

        with torch.inference_mode(False), torch.no_grad():
            return ood_report(module.ood_score, test_data.to(module.device))


class GridNLL(Evaluator):
    """Grid NLL of the test split under ``exp(−module.energy_for_plot)``.

    Args:
        limit: half-width ``L`` of the grid.
        cells: cells per side (``None``: :func:`~lit_gen.metrics.grid_nll`'s default).
        prefix: prefix of the report keys; ``""`` gives ``grid_nll``, ``grid_nll_2L``, ``mass_escape``,
            ``true_nll``, ``nll_gap``; any other prefix gives ``{prefix}nll`` and ``{prefix}mass_escape`` only
            (for energy maps that are not the model's exact marginal density, e.g. DDAEBM's).
    """

    def __init__(self, limit: float, cells: int | None = None, prefix: str = "") -> None:
        super().__init__()
        self.limit = float(limit)
        self.cells = cells
        self.prefix = prefix

    def report(self, module: Any) -> dict[str, float]:
        test_data = data_split(module._trainer, "test")
        if test_data is None:
            return {}
        from lit_gen.metrics import grid_nll

        kwargs = {} if self.cells is None else {"n": int(self.cells)}
        with torch.inference_mode(False), torch.no_grad():
            res = grid_nll(module.energy_for_plot, test_data.to(module.device), limit=self.limit,
                           device=module.device, **kwargs)
        if self.prefix:
            return {f"{self.prefix}nll": float(res["nll"]), f"{self.prefix}mass_escape": float(res["mass_escape"])}
        out = {"grid_nll": float(res["nll"]), "grid_nll_2L": float(res["nll_2L"]),
               "mass_escape": float(res["mass_escape"])}
        value = data_true_nll(module._trainer, "test")
        if value is not None:
            out["true_nll"] = float(value)
            out["nll_gap"] = out["grid_nll"] - out["true_nll"]
        return out

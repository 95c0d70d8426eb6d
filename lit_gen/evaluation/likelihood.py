"""Probability-flow NLL of the first test points (diffusion-type modules).

The module's ``log_prob(x, generator=...)`` integrates the probability-flow ODE (:mod:`lit_gen.diffusion.likelihood`,
``docs/algorithms.md``); this evaluator keeps the first ``num_points`` test points across batches and reports
``nll`` in nats (vectors, with the data's exact ``nll_true`` when the data module knows its density) or ``bpd``
(images, 8-bit uniform dequantisation), and ``nll_nfe``, the network evaluations per point.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lit_gen.contract import data_log_prob
from lit_gen.diffusion.likelihood import bits_per_dim, dequantize
from lit_gen.evaluation.base import Evaluator
from lit_gen.evaluation.progress import evaluation_progress

__all__ = ["FlowLikelihood"]


class FlowLikelihood(Evaluator):
    """Test NLL of ``num_points`` test points through ``module.log_prob`` (``nfe_per_point`` reported as NFE).

    Args:
        num_points: test points to score (0: off).
        nfe_per_point: network evaluations of one ``log_prob`` call, for the report (e.g. ``4 · steps`` for RK4).
    """

    #: points per ``log_prob`` call: the progress bar's unit of work
    image_chunk: int = 32
    vector_chunk: int = 512

    def __init__(self, num_points: int, nfe_per_point: int) -> None:
        super().__init__()
        self.num_points = int(num_points)
        self.nfe_per_point = int(nfe_per_point)
        self._points: list[Tensor] = []

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        held = sum(len(p) for p in self._points)
        if held < self.num_points:
            self._points.append(batch[: self.num_points - held].detach())

    def _log_prob(self, module: Any, x: Tensor, generator: torch.Generator) -> Tensor:
        """``module.log_prob`` over ``x`` in chunks (:attr:`image_chunk` images or :attr:`vector_chunk` points), with
        a progress bar on a terminal."""
        out = []
        chunk = self.image_chunk if x.dim() == 4 else self.vector_chunk
        what = f"test NLL: probability-flow ODE of {len(x)} points ({self.nfe_per_point} NFE each)"
        with evaluation_progress(module, what, len(x)) as advance:
            for part in x.split(chunk):
                out.append(module.log_prob(part, generator=generator))
                advance(len(part))
        return torch.cat(out)

    def report(self, module: Any) -> dict[str, float]:
        points, self._points = self._points, []
        if self.num_points == 0 or not points:
            return {}
        x = torch.cat(points)
        gen = torch.Generator().manual_seed(0)
        report: dict[str, float] = {}
        if len(module.data_shape) == 3:
            x_deq = dequantize(x, generator=gen)
            report["bpd"] = float(bits_per_dim(self._log_prob(module, x_deq, gen), x[0].numel()).mean())
        else:
            report["nll"] = float(-self._log_prob(module, x, gen).mean())
            true_log_prob = data_log_prob(module._trainer)
            if true_log_prob is not None:
                report["nll_true"] = float(-true_log_prob(x.cpu()).double().mean())
        report["nll_nfe"] = float(self.nfe_per_point)
        return report

"""Exponential moving average of one network, built on ``torch.optim.swa_utils.AveragedModel``.

Polyak averaging of the weights, ``θ_ema ← d·θ_ema + (1 − d)·θ``, is what every diffusion paper samples
from (Ho et al. 2020 use d = 0.9999). Over short budgets a fixed d leaves the average dominated by the random
initialisation, so an optional warm-up uses ``d_n = min(d, (1 + n) / (10 + n))`` after n updates (the schedule of
Tarvainen & Valpola 2017, also used by TensorFlow's ``ExponentialMovingAverage(num_updates=...)``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def ema_decay_schedule(decay: float, num_updates: int, warmup: bool) -> float:
    """Decay used for update number ``num_updates`` (0-based): ``min(decay, (1+n)/(10+n))`` with warm-up."""
    if warmup:
        return min(decay, (1.0 + num_updates) / (10.0 + num_updates))
    return decay


class ExponentialMovingAverage(AveragedModel):
    """EMA copy of ``model`` whose ``update_parameters(model)`` applies the (warmed-up) EMA rule.

    The averaged copy, its buffers and the update counter ``n_averaged`` live in ``state_dict``, so resuming
    from a checkpoint continues the average exactly.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ema decay must lie in [0, 1], got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        super().__init__(model, multi_avg_fn=self._multi_avg, use_buffers=True)
        self.module.requires_grad_(False)  # an average, never trained (and not counted as trainable)

    def _multi_avg(self, averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        # n_averaged counts the updates already folded in (1 after the initial copy).
        d = ema_decay_schedule(self.decay, int(num_averaged.item()) - 1, self.warmup)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:
            avg_f, cur_f = zip(*floats, strict=True)
            torch._foreach_lerp_(list(avg_f), list(cur_f), 1.0 - d)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)

"""Learning-rate schedules that span the run: their length is the trainer's ``max_steps``, read at fit time.

A cosine schedule written as ``T_max: 6000`` beside ``max_steps: 6000`` stops following the run as soon as
``--trainer.max_steps`` is overridden: a shorter run ends at a high learning rate, a longer one climbs back up
the cosine. :class:`CosineToEndLR` leaves ``T_max`` out; every lit_gen module sets it to the run's number of
scheduler steps when it builds its optimizers (:func:`span_run`). Every lit_gen module's ``max_steps`` counts
data batches and every scheduler steps once per batch (DDAEBM's two included), so that number is ``max_steps``.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR

__all__ = ["CosineToEndLR", "span_run"]


class CosineToEndLR(CosineAnnealingLR):
    r"""Cosine annealing over the whole run (Loshchilov & Hutter 2017, SGDR, without restarts):

    .. math:: \eta_k = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min}) (1 + \cos(\pi k / K)),

    with :math:`K` = ``T_max``, by default ``None``: the module sets it to the trainer's ``max_steps`` at fit time,
    so the rate reaches ``eta_min`` at the last step whatever ``max_steps`` the command line gives. An explicit
    ``T_max`` is kept as it is.
    """

    spans_run = True

    def __init__(self, optimizer: Optimizer, eta_min: float = 0.0, T_max: int | None = None,  # noqa: N803
                 last_epoch: int = -1) -> None:
        if T_max is not None and (not isinstance(T_max, int) or isinstance(T_max, bool) or T_max < 1):
            raise ValueError(f"T_max must be a number of steps >= 1 or None (the run's max_steps), got {T_max!r}")
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min, last_epoch=last_epoch)  # type: ignore[arg-type]

    def set_run_length(self, steps: int) -> None:
        """Span ``steps`` scheduler steps (called by the module when ``T_max`` was left out)."""
        self.T_max = int(steps)


def span_run(scheduler: Any, max_steps: int | None, owner: str = "the module") -> None:
    """Give a schedule that spans the run (``spans_run``, length left out) the run's length ``max_steps``.

    Raises ValueError when the length is needed but the trainer has no ``max_steps`` (> 0) to give it."""
    if not getattr(scheduler, "spans_run", False) or getattr(scheduler, "T_max", 0) is not None:
        return
    if max_steps is None or max_steps <= 0:
        raise ValueError(
            f"{type(scheduler).__name__} of {owner} spans the run (T_max left out), but the trainer has no "
            f"max_steps ({max_steps}); set trainer.max_steps, or give the schedule's T_max explicitly"
        )
    scheduler.set_run_length(max_steps)

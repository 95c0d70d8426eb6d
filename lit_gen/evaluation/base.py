"""The interface of an evaluator: one piece of validation/test evaluation that a module composes.

A :class:`~lit_gen.models.GenerativeModule` builds its evaluators once, from
:meth:`~lit_gen.models.GenerativeModule.configure_evaluators` (the way torchgeo's tasks build their metrics in
``configure_metrics``), and calls them from its validation and test loops:

* ``start(module, split)`` at the start of every validation/test epoch,
* ``update(module, batch, batch_idx, split)`` on every batch of the splits named in :attr:`Evaluator.splits`,
* ``report(module)`` at the end of a test epoch: the figures it adds to the test report (and resets itself).

Evaluators are ``nn.Module`` s so that the torchmetrics metrics they hold move with the model and are synchronised
under DDP; their metric states are not persistent, so they add nothing to checkpoints. A method adds its own by
overriding ``configure_evaluators`` and appending to ``super().configure_evaluators()``
(``docs/adding_a_method.md``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["Evaluator"]


class Evaluator(nn.Module):
    """One evaluation run in validation and/or test; see the module docstring for the calling protocol.

    Attributes:
        splits: the splits whose batches :meth:`update` sees (``"val"``, ``"test"``).
        needs_labels: whether :meth:`update` receives ``(x, y)`` instead of ``x``.
    """

    splits: tuple[str, ...] = ("test",)
    #: :meth:`update` receives ``(x, y)`` with the batch's class labels ``y`` (``None`` for unlabelled data)
    needs_labels: bool = False

    def start(self, module: Any, split: str) -> None:
        """Called at the start of each epoch of ``split`` (default: nothing)."""

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        """Feed one checked batch of ``split`` (shape ``(B, *data_shape)``)."""

    def report(self, module: Any) -> dict[str, float]:
        """The figures of the finished test epoch (and reset the state for the next one)."""
        return {}

"""Every use of a Lightning internal, in one place.

lit_gen needs a few things Lightning (checked with 2.6) has no public API for: whether the loggers write this
step (to skip ``self.log`` work on other steps), how many batches of the current epoch were processed (to resume
a shuffled order mid-epoch), the fit loop's data loaders (to replay the RNG draws of an epoch start), and the
``LightningCLI`` hook that merges a checkpoint's hyper-parameters into the config. Each accessor below reads one
internal and raises :class:`LightningInternalsChanged` naming it when a Lightning upgrade moved it, instead of an
``AttributeError`` deep inside a training step; ``tests/test_compat.py`` runs every accessor against the installed
Lightning, so an upgrade that moves one fails there first.
"""

from __future__ import annotations

from typing import Any

import lightning
from lightning.pytorch.cli import LightningCLI

__all__ = [
    "LightningInternalsChanged",
    "batches_processed_this_epoch",
    "check_cli_ckpt_hook",
    "fit_dataloaders",
    "loggers_write_this_step",
]


class LightningInternalsChanged(RuntimeError):
    """A Lightning internal that lit_gen reads is not where it was (a Lightning upgrade moved it)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"lit_gen reads the Lightning internal {what}, which lightning {lightning.__version__} does not have: "
            "this Lightning version is not supported yet (lit_gen was checked with 2.6); install lightning 2.6.x "
            "or report it (the accessor is in lit_gen/compat.py)"
        )


def _attr_path(root: Any, path: str) -> Any:
    obj = root
    for name in path.split("."):
        if not hasattr(obj, name):
            raise LightningInternalsChanged(f"{type(root).__name__}.{path}")
        obj = getattr(obj, name)
    return obj


def loggers_write_this_step(trainer: Any) -> bool:
    """Whether the loggers write this training step's logged values (``trainer.log_every_n_steps`` cadence).

    Reads ``trainer._logger_connector.should_update_logs`` (Lightning's own ``LearningRateMonitor`` reads it too).
    """
    return bool(_attr_path(trainer, "_logger_connector.should_update_logs"))


def batches_processed_this_epoch(trainer: Any) -> int:
    """Training batches processed so far in the current epoch (restored from a checkpoint on resume).

    Reads ``trainer.fit_loop.epoch_loop.batch_progress.current.processed``.
    """
    return int(_attr_path(trainer, "fit_loop.epoch_loop.batch_progress.current.processed"))


def fit_dataloaders(trainer: Any) -> list[Any]:
    """The training data loaders the fit loop iterates (empty before they are set up).

    Reads ``trainer.fit_loop._combined_loader.flattened``.
    """
    loader = _attr_path(trainer, "fit_loop._combined_loader")
    if loader is None:
        return []
    return list(_attr_path(loader, "flattened"))


def check_cli_ckpt_hook() -> None:
    """``LightningCLI._parse_ckpt_path`` must exist: :class:`lit_gen.cli.LitGenCLI` overrides it to resolve and
    check ``--ckpt_path`` and to keep the command line's values on resume."""
    if not callable(getattr(LightningCLI, "_parse_ckpt_path", None)):
        raise LightningInternalsChanged("LightningCLI._parse_ckpt_path")

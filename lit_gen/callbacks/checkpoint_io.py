"""Checkpoints that survive a kill during a save: write beside the target, fsync, then rename.

Lightning's default writer saves through an fsspec transaction, whose temporary file comes from
``tempfile.mkstemp()`` (``$TMPDIR``); on commit ``shutil.move`` copies it into the destination when ``$TMPDIR``
is on another filesystem (a tmpfs, as on most clusters). A SIGKILL during that copy leaves ``last.ckpt``
truncated, the previous good one already overwritten, and the temporary file in ``$TMPDIR``.

:class:`AtomicCheckpointIO` writes ``.<name>.<random>.tmp`` in the destination folder, ``fsync``s it, replaces
the target with ``os.replace`` (atomic on POSIX within one filesystem) and ``fsync``s the folder: at any
instant the target is either the previous complete file or the new complete file. Every lit_gen config lists
it under ``trainer.plugins``; :class:`~lit_gen.models.GenerativeModule` also installs it in a trainer that
uses Lightning's plain default, so a user's own ``Trainer`` gets it too. Loading a file that is cut short
raises an error naming it and the newest loadable checkpoint beside it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_gen.utils.checkpoints import archive_problem, newest_loadable

__all__ = ["AtomicCheckpointIO", "BrokenCheckpointError", "broken_checkpoint_message", "use_atomic_checkpoints"]


class BrokenCheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded (truncated, empty, not a torch archive)."""


def broken_checkpoint_message(path: str | os.PathLike, problem: str) -> str:
    """The error text for an unloadable ``path``: what is wrong and the newest loadable checkpoint to use."""
    path = Path(path)
    folders = {path.parent, path.parent.parent}  # checkpoints/ and the run directory (hpc_ckpt_* files)
    good = newest_loadable(folders, exclude=[path])
    offer = (
        f"The newest loadable checkpoint beside it is {good}: resume with --ckpt_path {good}"
        if good is not None
        else "No loadable checkpoint was found beside it: start a new run (or give another --ckpt_path)"
    )
    return f"cannot resume from checkpoint {path}: {problem}. {offer}."


def _is_local(path: str | os.PathLike) -> bool:
    return get_filesystem(path).protocol in ("file", "local", ("file", "local"))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic (see the module docstring); remote paths as Lightning."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(os.fspath(path)).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        # temp files of earlier saves of this target that a kill interrupted (one writer per folder: rank zero)
        for stale in target.parent.glob(f".{target.name}.*.tmp"):
            stale.unlink(missing_ok=True)

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if _is_local(path) and Path(os.fspath(path)).is_file():
            problem = archive_problem(path)
            if problem is not None:
                raise BrokenCheckpointError(broken_checkpoint_message(path, problem))
        # never a full unpickle, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD says: a checkpoint is data, not code
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def use_atomic_checkpoints(trainer: Any) -> None:
    """Give ``trainer`` an :class:`AtomicCheckpointIO` when it uses Lightning's plain default writer.

    A writer the user chose (another ``CheckpointIO`` plugin, asynchronous or remote-storage writers, strategies
    with their own, such as FSDP's or DeepSpeed's) is left alone.
    """
    strategy = getattr(trainer, "strategy", None)
    if strategy is not None and type(getattr(strategy, "checkpoint_io", None)) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()

"""Find, check and prune checkpoint files on disk (pure torch; no Lightning import).

A checkpoint is *loadable* when it is a complete zip archive (``torch.save``'s format: the central directory
sits at the end of the file, so a file cut short by a kill fails this check) and ``torch.load`` with
``weights_only=True`` reads it. Loading uses ``mmap=True``, so checking a multi-GB file does not read its tensors.

Used by the atomic checkpoint writer (:class:`lit_gen.callbacks.AtomicCheckpointIO`), by ``lit-gen fit
--ckpt_path`` to name a broken file and offer the newest good one, and by the SLURM script::

    python -m lit_gen.utils.checkpoints newest RUN_DIR [--prune-hpc]

which prints the newest loadable checkpoint below ``RUN_DIR`` (nothing if there is none) and, with
``--prune-hpc``, deletes the ``hpc_ckpt_*.ckpt`` files older than the newest loadable one and renames
unloadable ones to ``unloadable-<name>`` (so Lightning's own SLURM resume never picks them).
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch

__all__ = [
    "archive_problem", "checkpoint_problem", "find_checkpoints", "loadable_checkpoints", "newest_loadable", "prune_hpc",
]

HPC_PREFIX = "hpc_ckpt_"
UNLOADABLE_PREFIX = "unloadable-"


def archive_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a complete ``torch.save`` archive (missing, empty, truncated), or ``None``.

    Reads only the zip directory, not the tensors: cheap for any file size.
    """
    path = Path(path)
    if not path.exists():
        return f"{path} does not exist"
    if path.is_dir():
        return f"{path} is a directory, not a checkpoint file"
    size = path.stat().st_size
    if size == 0:
        return f"{path} is empty (0 bytes): it was cut off while being written"
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"{path} is truncated or corrupt ({size} bytes, not a complete torch.save archive: {err})"
    return None


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be loaded as a checkpoint (a sentence), or ``None`` when it loads."""
    problem = archive_problem(path)
    if problem is not None:
        return problem
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for a damaged archive or a refused global
        return f"{path} cannot be read by torch.load(weights_only=True) ({type(err).__name__}: {err})"
    return None


def find_checkpoints(roots: Iterable[str | os.PathLike]) -> list[Path]:
    """Every ``*.ckpt`` file below ``roots`` (recursive), newest modification time first."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file() and root.suffix == ".ckpt":
            found.add(root)
        elif root.is_dir():
            found.update(p for p in root.rglob("*.ckpt") if p.is_file() and not p.name.startswith(UNLOADABLE_PREFIX))
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, str(p)), reverse=True)


def loadable_checkpoints(roots: Iterable[str | os.PathLike]) -> list[Path]:
    """The loadable checkpoints below ``roots``, newest first."""
    return [p for p in find_checkpoints(roots) if checkpoint_problem(p) is None]


def newest_loadable(roots: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = ()) -> Path | None:
    """The newest loadable checkpoint below ``roots`` (skipping ``exclude``), or ``None``."""
    skip = {Path(p).resolve() for p in exclude}
    for path in find_checkpoints(roots):
        if path.resolve() not in skip and checkpoint_problem(path) is None:
            return path
    return None


def prune_hpc(folder: str | os.PathLike) -> list[str]:
    """Keep only the newest loadable ``hpc_ckpt_*.ckpt`` in ``folder``; returns what was done, one line each.

    Older hpc checkpoints are deleted; unloadable ones are renamed ``unloadable-hpc_ckpt_<n>.ckpt`` (kept for
    inspection, invisible to Lightning's SLURM auto-resume, which takes the highest ``<n>`` it finds).
    """
    folder = Path(folder)
    hpc = sorted(folder.glob(f"{HPC_PREFIX}*.ckpt"), key=lambda p: (p.stat().st_mtime_ns, str(p)), reverse=True)
    actions: list[str] = []
    kept: Path | None = None
    for path in hpc:
        problem = checkpoint_problem(path)
        if problem is not None:
            target = path.with_name(UNLOADABLE_PREFIX + path.name)
            os.replace(path, target)
            actions.append(f"renamed unloadable {path} to {target.name}: {problem}")
        elif kept is None:
            kept = path
        else:
            path.unlink()
            actions.append(f"deleted older {path} (kept {kept.name})")
    return actions


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lit_gen.utils.checkpoints", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    newest = sub.add_parser("newest", help="print the newest loadable checkpoint below the folders")
    newest.add_argument("roots", nargs="+")
    newest.add_argument("--prune-hpc", action="store_true", help="prune hpc_ckpt_*.ckpt files in each folder")
    check = sub.add_parser("check", help="exit 1 and say why when a checkpoint file does not load")
    check.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "check":
        problem = checkpoint_problem(args.path)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return 0
    if args.prune_hpc:
        for root in args.roots:
            if Path(root).is_dir():
                for line in prune_hpc(root):
                    print(line, file=sys.stderr)
    path = newest_loadable(args.roots)
    if path is not None:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(_main())

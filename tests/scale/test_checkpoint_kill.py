"""A run killed (SIGKILL) during checkpoint saves always leaves a loadable ``last.ckpt``.

The child (``_kill_target.py``) saves a ~40 MB checkpoint after every step with ``TMPDIR`` on a tmpfs
(``/dev/shm``), another filesystem than the run directory, as on most clusters. Lightning's own writer then
copies its temporary file into ``last.ckpt`` in place, and a kill during that copy leaves ``last.ckpt``
truncated (about half of such kills did, measured with ``plain`` mode of the child). With lit_gen's
:class:`~lit_gen.callbacks.AtomicCheckpointIO` every kill must leave the previous or the new file, whole.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lit_gen.callbacks import AtomicCheckpointIO
from lit_gen.utils.checkpoints import checkpoint_problem

CHILD = Path(__file__).with_name("_kill_target.py")
SHM = Path("/dev/shm")


def _sizes(folders: list[Path]) -> dict[Path, int]:
    out = {}
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        out[Path(entry.path)] = entry.stat().st_size
                    except FileNotFoundError:  # renamed or removed between listing and stat
                        pass
        except FileNotFoundError:
            pass
    return out


def _kill_during_saves(root: Path, tmpdir: Path, nth: int, plain: bool = False) -> Path:
    """Start the child, wait for its first checkpoint, then SIGKILL it while a save is writing a file.

    A save is caught in the act by polling the checkpoint folder and ``TMPDIR``: the child is killed at the
    ``nth`` poll that sees a file there grow (a checkpoint or a temporary file being written). Returns the path
    of ``last.ckpt``.
    """
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(CHILD), str(root)] + (["plain"] if plain else [])
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folders = [root / "checkpoints", tmpdir]
    last = folders[0] / "last.ckpt"
    try:
        deadline = time.monotonic() + 180
        while not (last.exists() and last.stat().st_size > 0):
            if proc.poll() is not None:
                raise AssertionError(f"the child exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("the child wrote no checkpoint in 180 s")
            time.sleep(0.01)
        seen, before = 0, _sizes(folders)
        while seen < nth and time.monotonic() < deadline:
            now = _sizes(folders)
            if any(path in before and size > before[path] for path, size in now.items()):
                seen += 1
            before = now
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    return last


@pytest.mark.skipif(not SHM.is_dir(), reason="needs a tmpfs at /dev/shm (Linux)")
def test_kill_during_saves_always_leaves_a_loadable_last_checkpoint(tmp_path: Path) -> None:
    tmpdir = Path(os.environ.get("LIT_GEN_TEST_SHM", SHM)) / f"lit-gen-kill-{os.getpid()}"
    tmpdir.mkdir(exist_ok=True)
    try:
        rng = random.Random(0)
        for i in range(4):
            root = tmp_path / f"run{i}"
            last = _kill_during_saves(root, tmpdir, nth=rng.randint(1, 6))
            assert checkpoint_problem(last) is None, checkpoint_problem(last)
            assert torch.load(last, weights_only=True)["global_step"] >= 1
            assert not list(tmpdir.iterdir()), "a temporary file was left in TMPDIR"
    finally:
        for leftover in tmpdir.iterdir():
            leftover.unlink()
        tmpdir.rmdir()


def test_atomic_save_keeps_the_previous_file_when_a_save_fails(tmp_path: Path, monkeypatch) -> None:
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(4)}, target)
    before = target.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(4)}, target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"], "a temporary file was left behind"
    assert io.load_checkpoint(target)["global_step"] == 1


def test_stale_temporary_files_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"half a checkpoint")
    AtomicCheckpointIO().save_checkpoint({"global_step": 3}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]

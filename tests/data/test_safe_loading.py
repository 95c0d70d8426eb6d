"""Dataset files are read as data: crafted pickles are refused without running, md5 sums are checked on request."""

from __future__ import annotations

import builtins
import gzip
import os
import pickle
import subprocess
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fakes import scaled, write_cifar10, write_svhn
from torchvision.datasets.utils import calculate_md5

from lit_gen.data import CIFAR10DataModule, SVHNDataModule
from lit_gen.data.vision_datasets import CIFAR10Files
from lit_gen.utils.safe_pickle import UnsafePickleError, safe_load


class _Reduces:
    """Pickles as ``call(*args)``: what a crafted data file does to run code when it is unpickled."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.call, self.args


def _payloads(marker: Path) -> dict[str, _Reduces]:
    """Pickles that create ``marker`` when an ordinary ``pickle.load`` reads them, by the global they name."""
    return {
        "posix.system" if os.name == "posix" else "nt.system": _Reduces(os.system, f"touch {marker}"),
        "builtins.eval": _Reduces(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": _Reduces(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Reduces(subprocess.Popen, ["touch", str(marker)]),
        "io.open": _Reduces(open, str(marker), "w"),
        "pathlib.Path.touch": _Reduces(Path.touch, marker),
    }


def _py2_batch(images: bytes, shape: tuple[int, int], labels: list[int]) -> bytes:
    """A CIFAR-style batch pickled the way Python 2 cPickle and numpy 1.x wrote it (protocol 2, byte strings)."""

    def s(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING: a Python 2 str
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + len(b).to_bytes(4, "little")) + b

    def i(n: int) -> bytes:
        return b"K" + bytes([n])

    dtype = b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R(" + i(3) + s(b"|") + b"NNNJ\xff\xff\xff\xff" \
        b"J\xff\xff\xff\xff" + i(0) + b"tb"
    array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R(" \
        + i(1) + i(shape[0]) + i(shape[1]) + b"\x86" + dtype + b"\x89" + s(images) + b"tb"
    label_list = b"](" + b"".join(i(y) for y in labels) + b"e"
    return b"\x80\x02}(" + s(b"data") + array + s(b"labels") + label_list + s(b"batch_label") + s(b"batch 1") + b"u."


# ------------------------------------------------------------------------ the restricted unpickler itself
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_real_numpy_arrays_and_plain_containers_load(protocol: int) -> None:
    values: dict[str, Any] = {
        "uint8": np.arange(24, dtype=np.uint8).reshape(2, 12),
        "float64": np.linspace(-1.0, 1.0, 7),
        "float32_fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "int64": np.array([[1, -2], [3, 4]], dtype=np.int64),
        "bool": np.array([True, False]),
        "structured": np.zeros(3, dtype=[("a", "<f4"), ("b", "u1")]),
        "scalars": [np.float32(1.5), np.int64(-3), np.uint8(7)],
        "plain": {"labels": [1, 2, 3], "name": "batch", "raw": b"\x00\xff", "t": (1.5, None, True), "c": 1 + 2j,
                  "s": {1, 2}, "f": frozenset({3}), "o": OrderedDict(a=1)},
    }
    data = pickle.dumps(values, protocol=protocol)
    loaded = safe_load(data)
    reference = pickle.loads(data)
    assert loaded.keys() == values.keys()
    for key in ("uint8", "float64", "float32_fortran", "int64", "bool", "structured"):
        assert loaded[key].dtype == reference[key].dtype and loaded[key].shape == values[key].shape
        np.testing.assert_array_equal(loaded[key], values[key])
    assert loaded["float32_fortran"].flags.f_contiguous
    assert loaded["scalars"] == values["scalars"] and type(loaded["scalars"][0]) is np.float32
    assert loaded["plain"] == values["plain"]


def test_python2_style_pickle_and_gzipped_mnist_pickle_load(tmp_path: Path) -> None:
    images = bytes(range(250, 256))
    batch = safe_load(_py2_batch(images, (2, 3), [1, 7]))
    assert batch["labels"] == [1, 7] and batch["batch_label"] == "batch 1"
    assert batch["data"].dtype == np.uint8
    np.testing.assert_array_equal(batch["data"], np.frombuffer(images, np.uint8).reshape(2, 3))

    rng = np.random.default_rng(0)
    splits = tuple((rng.random((4, 784), dtype=np.float32), rng.integers(0, 10, 4)) for _ in range(3))
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump(splits, f, protocol=2)
    with gzip.open(tmp_path / "mnist.pkl.gz", "rb") as f:
        loaded = safe_load(f, what=str(tmp_path / "mnist.pkl.gz"))
    assert len(loaded) == 3
    for (x, y), (x0, y0) in zip(loaded, splits, strict=True):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
    assert safe_load(pickle.dumps([1, {"a": (2.5, "x")}]), allow_numpy=False) == [1, {"a": (2.5, "x")}]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_object_arrays_are_refused(protocol: int) -> None:
    for value in (np.array([1, "a", None], dtype=object), np.zeros(2, dtype=[("a", "O"), ("b", "f4")])):
        with pytest.raises(UnsafePickleError, match=r"dtype .*object|dtype .*O") as info:
            safe_load(pickle.dumps({"data": value}, protocol=protocol), what="batch_file")
        assert "batch_file" in str(info.value) and "not a plain data pickle" in str(info.value)


def test_numpy_is_refused_when_not_allowed() -> None:
    with pytest.raises(UnsafePickleError, match=r"numpy\.dtype|_reconstruct|_frombuffer"):
        safe_load(pickle.dumps(np.ones(3)), allow_numpy=False)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_code_running_globals_are_refused_without_running(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    for name, payload in _payloads(marker).items():
        data = pickle.dumps({"data": payload, "labels": [0]}, protocol=protocol)
        with pytest.raises(UnsafePickleError) as info:
            safe_load(data, what="some/cifar/data_batch_1")
        msg = str(info.value)
        assert "some/cifar/data_batch_1" in msg and "not a plain data pickle" in msg and "without running" in msg
        # protocols < 4 spell a method as builtins.getattr(pathlib.Path, "touch")
        expected = "builtins.getattr" if protocol < 4 and name == "pathlib.Path.touch" else name
        assert f"the global {expected}" in msg, msg
        assert not marker.exists(), f"{name} ran"


def test_hand_written_globals_are_named() -> None:
    for module, name in [("builtins", "eval"), ("os", "system"), ("subprocess", "Popen"), ("builtins", "open"),
                         ("numpy", "load"), ("torch", "load"), ("builtins", "getattr"), ("importlib", "import_module")]:
        data = f"c{module}\n{name}\n(S'x'\ntR.".encode()
        with pytest.raises(UnsafePickleError, match=rf"^f\.pkl: refused to load: .*the global {module}\.{name},"):
            safe_load(data, what="f.pkl")
    with pytest.raises(UnsafePickleError, match=r"the global builtins\.open \(written as __builtin__\.open\),"):
        safe_load(b"c__builtin__\nopen\n(S'x'\ntR.", what="f.pkl")


def test_payloads_are_live(tmp_path: Path) -> None:
    """Control: the crafted pickle does create the marker under an ordinary pickle.load."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_payloads(marker)["io.open"]))  # the payload opens (creates) the marker file
    assert marker.exists()


def test_truncated_pickle_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": np.ones(10)})[:-7])
    with pytest.raises(pickle.UnpicklingError, match="could not read .*data_batch_1 as a data pickle"):
        safe_load(path)


# ------------------------------------------------------------------------ through the CIFAR-10 data module
@pytest.mark.parametrize("target", ["data_batch_3", "test_batch", "batches.meta"])
def test_crafted_cifar_folder_is_refused_and_runs_nothing(tmp_path: Path, target: str) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    for name, payload in _payloads(marker).items():
        with open(tmp_path / "cifar-10-batches-py" / target, "wb") as f:
            pickle.dump({"data": payload, "labels": [0], "label_names": payload}, f, protocol=4)
        dm = CIFAR10DataModule(root=str(tmp_path), batch_size=4, verify=False)
        with pytest.raises(UnsafePickleError) as info:
            dm.setup("fit")
        msg = str(info.value)
        assert str(tmp_path / "cifar-10-batches-py" / target) in msg, msg
        assert f"the global {name}," in msg and "not a plain data pickle" in msg and "without running" in msg
        assert not marker.exists(), f"{name}: the crafted pickle ran"
        # The default (verify=True) stops at the md5 sum, before reading anything.
        with pytest.raises(ValueError, match="does not match torchvision's md5 sum"):
            CIFAR10DataModule(root=str(tmp_path), batch_size=4).setup("fit")
        assert not marker.exists()


def _md5_table(folder: Path) -> dict[str, Any]:
    md5 = {p.name: calculate_md5(p) for p in folder.iterdir()}
    return {
        "train_list": [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)],
        "test_list": [["test_batch", md5["test_batch"]]],
        "meta": {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]},
    }


def test_cifar_md5_check_catches_a_modified_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    test = write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    for attr, value in _md5_table(folder).items():  # these tiny files play the standard ones
        monkeypatch.setattr(CIFAR10Files, attr, value)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=4, val_fraction=0.1)
    assert dm.verify
    dm.setup()
    torch.testing.assert_close(next(iter(dm.test_dataloader())), scaled(test[:4]))

    with open(folder / "data_batch_3", "rb") as f:
        batch = pickle.load(f)  # our own file
    batch["data"][0, 5] ^= 1  # one bit of one pixel
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump(batch, f)
    with pytest.raises(ValueError) as info:
        CIFAR10DataModule(root=str(tmp_path), batch_size=4).setup()
    msg = str(info.value)
    assert str(folder / "data_batch_3") in msg and "does not match torchvision's md5 sum" in msg
    assert "verify: false" in msg and "re-packed subset" in msg
    relaxed = CIFAR10DataModule(root=str(tmp_path), batch_size=4, val_fraction=0.1, verify=False)
    relaxed.setup()
    assert len(relaxed.dataset("train")) + len(relaxed.dataset("val")) == 40


def test_default_verify_refuses_files_that_are_not_the_standard_ones(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "c")
    with pytest.raises(ValueError, match=r"data_batch_1 does not match torchvision's md5 sum.*verify: false"):
        CIFAR10DataModule(root=str(tmp_path / "c")).setup()
    write_svhn(tmp_path / "s")
    with pytest.raises(ValueError, match=r"train_32x32\.mat does not match torchvision's md5 sum.*verify: false"):
        SVHNDataModule(root=str(tmp_path / "s")).setup()
    SVHNDataModule(root=str(tmp_path / "s"), verify=False).setup()  # scipy.io.loadmat runs no code

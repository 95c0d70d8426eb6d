"""ArrayDataModule: .npy / .pt / .csv loading, seeded splits, and every error message."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_gen.data import ArrayDataModule, load_array


def _points(n: int, d: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def _write(path: Path, x: np.ndarray, header: bool = False) -> Path:
    if path.suffix == ".npy":
        np.save(path, x)
    elif path.suffix == ".pt":
        torch.save(torch.from_numpy(x), path)
    else:
        lines = ([",".join(f"x{i}" for i in range(x.shape[1]))] if header else []) + [
            ",".join(repr(float(v)) for v in row) for row in x
        ]
        path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".csv"])
@pytest.mark.parametrize("d", [2, 5])
def test_loads_splits_and_batches(tmp_path: Path, suffix: str, d: int) -> None:
    x = _points(100, d)
    path = _write(tmp_path / f"points{suffix}", x, header=(suffix == ".csv" and d == 5))
    dm = ArrayDataModule(str(path), batch_size=16, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert dm.data_shape == (d,)  # known right after __init__
    parts = [dm.tensor(s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [70, 10, 20]
    # The three splits partition the rows of the file exactly.
    rows = torch.cat(parts)
    order = torch.from_numpy(x)[:, 0].argsort()
    torch.testing.assert_close(rows[rows[:, 0].argsort()], torch.from_numpy(x)[order])
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (16, d) and batch.dtype == torch.float32
    again = ArrayDataModule(str(path), batch_size=16, val_fraction=0.1, test_fraction=0.2, seed=0)
    torch.testing.assert_close(again.tensor("val"), dm.tensor("val"))
    other = ArrayDataModule(str(path), batch_size=16, val_fraction=0.1, test_fraction=0.2, seed=1)
    assert not torch.equal(other.tensor("val"), dm.tensor("val"))
    low, high = dm.bounds()
    torch.testing.assert_close(low, dm.tensor("train").amin(0))
    assert high.shape == (d,)


def test_pt_dict_forms(tmp_path: Path) -> None:
    x = torch.randn(30, 3)
    torch.save({"data": x, "labels": torch.arange(30)}, tmp_path / "a.pt")
    torch.testing.assert_close(load_array(tmp_path / "a.pt"), x)
    torch.save({"points": x}, tmp_path / "b.pt")
    torch.testing.assert_close(load_array(tmp_path / "b.pt"), x)
    torch.save({"a": x, "b": x}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="expected a key 'data' or exactly one tensor value, found 2"):
        load_array(tmp_path / "c.pt")
    torch.save([1, 2], tmp_path / "d.pt")
    with pytest.raises(TypeError, match=r"holds a list; expected a tensor of shape \(N, d\)"):
        load_array(tmp_path / "d.pt")


def test_integer_data_is_converted(tmp_path: Path) -> None:
    np.save(tmp_path / "i.npy", np.arange(20).reshape(10, 2))
    x = load_array(tmp_path / "i.npy")
    assert x.dtype == torch.float32 and x[3].tolist() == [6.0, 7.0]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "pts.npy"
    with pytest.raises(FileNotFoundError, match="data file not found") as info:
        ArrayDataModule(str(path))
    assert str(path) in str(info.value)


def test_unsupported_suffix(tmp_path: Path) -> None:
    (tmp_path / "pts.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"unsupported file suffix '\.txt'.*\.npy, \.pt, \.pth, \.csv"):
        ArrayDataModule(str(tmp_path / "pts.txt"))


@pytest.mark.parametrize("shape", [(10,), (4, 5, 2)])
def test_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "x.npy", np.zeros(shape))
    expected = re.escape(f"expected an array of shape (N, d), got {shape}")
    with pytest.raises(ValueError, match=expected):
        ArrayDataModule(str(tmp_path / "x.npy"))


def test_too_few_rows_for_the_split(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"has N=2 rows, too few for val_fraction=0.1 and test_fraction=0.1"):
        ArrayDataModule(str(tmp_path / "x.npy"))
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must be < 1"):
        ArrayDataModule(str(tmp_path / "x.npy"), val_fraction=0.6, test_fraction=0.5)


def test_non_numeric(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,abc\n")
    with pytest.raises(ValueError, match=r"non-numeric value 'abc' on line 3"):
        ArrayDataModule(str(tmp_path / "x.csv"))
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(TypeError, match=r"non-numeric data \(dtype <U1\)"):
        ArrayDataModule(str(tmp_path / "s.npy"))
    (tmp_path / "r.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="row on line 2 has 1 columns but the first data row has 2"):
        ArrayDataModule(str(tmp_path / "r.csv"))


def test_nan_and_inf_rows_are_counted(tmp_path: Path) -> None:
    x = _points(10, 2).astype(np.float64)
    x[3, 1] = np.nan
    x[7, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match=r"2 of 10 rows contain NaN or inf \(first at row 3"):
        ArrayDataModule(str(tmp_path / "x.npy"))
    (tmp_path / "x.csv").write_text("1,2\nnan,3\n4,5\n")
    with pytest.raises(ValueError, match="1 of 3 rows contain NaN or inf"):
        ArrayDataModule(str(tmp_path / "x.csv"))


EMPTY_KINDS = ["empty_csv", "header_only_csv", "zero_byte_npy", "zero_rows_npy", "zero_byte_pt"]


@pytest.mark.parametrize("kind", EMPTY_KINDS)
def test_empty_files(tmp_path: Path, kind: str) -> None:
    if kind == "empty_csv":
        path = tmp_path / "x.csv"
        path.write_text("")
    elif kind == "header_only_csv":
        path = tmp_path / "x.csv"
        path.write_text("x,y\n")
    elif kind == "zero_byte_npy":
        path = tmp_path / "x.npy"
        path.write_bytes(b"")
    elif kind == "zero_rows_npy":
        path = tmp_path / "x.npy"
        np.save(path, np.zeros((0, 3)))
    else:
        path = tmp_path / "x.pt"
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty|no data rows"):
        ArrayDataModule(str(path))

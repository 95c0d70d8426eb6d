"""ArrayDataModule: .npy / .pt / .csv loading, seeded splits, and every error message."""

from __future__ import annotations

import io
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


# ------------------------------------------------------------------ files are read as written
def test_csv_with_a_byte_order_mark_keeps_every_row(tmp_path: Path) -> None:
    x = _points(5, 3)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    loaded = load_array(tmp_path / "bom.csv")
    assert loaded.shape == (5, 3)  # the first row is data, not a header
    torch.testing.assert_close(loaded, torch.from_numpy(x))
    (tmp_path / "bom_header.csv").write_bytes(b"\xef\xbb\xbfa,b,c\n" + body.encode())
    torch.testing.assert_close(load_array(tmp_path / "bom_header.csv"), torch.from_numpy(x))


def test_only_an_entirely_non_numeric_row_is_a_header(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("x, y\n1,2\n3,4\n")
    assert load_array(tmp_path / "h.csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    (tmp_path / "typo.csv").write_text("1.5,2..5\n1,2\n3,4\n")  # a mistyped first row is not a header
    with pytest.raises(ValueError, match=r"non-numeric value '2\.\.5' on line 1, column 2; .*header only when"):
        load_array(tmp_path / "typo.csv")
    (tmp_path / "late.csv").write_text("a,b,c\n1,2,3\n\n4,5,6\n7,8,x9\n")  # line numbers count blank lines
    with pytest.raises(ValueError, match=r"non-numeric value 'x9' on line 5, column 3; every value must be a number$"):
        load_array(tmp_path / "late.csv")
    (tmp_path / "gap.csv").write_text("1,2,3\n4,,6\n")
    with pytest.raises(ValueError, match=r"an empty cell on line 2, column 2"):
        load_array(tmp_path / "gap.csv")
    (tmp_path / "two_headers.csv").write_text("a,b\nc,d\n1,2\n")
    with pytest.raises(ValueError, match=r"non-numeric value 'c' on line 2, column 1"):
        load_array(tmp_path / "two_headers.csv")


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("latin1", r"is not UTF-8 text: byte 0xe9 on line 3 .*latin-1.*re-save it as UTF-8"),
        ("utf16", r"is UTF-16 text \(it starts with a UTF-16 byte-order mark\), not UTF-8; .*re-save it as UTF-8"),
        ("utf16_no_bom", r"holds NUL bytes \(first on line 1\): it is a binary file, or UTF-16"),
        ("binary", r"holds NUL bytes .*binary file.*numpy\.save"),
    ],
    ids=["latin1", "utf16", "utf16_no_bom", "binary"],
)
def test_csv_in_another_encoding_or_binary_names_the_cause(tmp_path: Path, kind: str, fragment: str) -> None:
    path = tmp_path / "x.csv"
    if kind == "latin1":
        path.write_bytes("x,y\n1,2\ncafé,3\n".encode("latin-1"))
    elif kind == "utf16":
        path.write_bytes("1,2\n3,4\n".encode("utf-16"))
    elif kind == "utf16_no_bom":
        path.write_bytes("1,2\n3,4\n".encode("utf-16-le"))
    else:
        buffer = io.BytesIO()
        np.save(buffer, _points(10, 2))
        path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match=fragment) as info:
        load_array(path)
    assert str(path) in str(info.value)


def _sparse_meta_quantized_nested(kind: str) -> torch.Tensor:
    x = torch.randn(6, 3)
    if kind == "sparse_coo":
        return x.to_sparse()
    if kind == "sparse_csr":
        return x.to_sparse_csr()
    if kind == "meta":
        return torch.empty(6, 3, device="meta")
    if kind == "quantized":
        return torch.quantize_per_tensor(x, 0.1, 0, torch.quint8)
    if kind == "nested":
        return torch.nested.nested_tensor([x[:4], x[4:]])
    return torch.nested.nested_tensor([x[:4], x[4:]], layout=torch.jagged)


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("sparse_coo", r"holds a sparse tensor \(layout torch\.sparse_coo\); save a dense one: .*\.to_dense\(\)"),
        ("sparse_csr", r"holds a sparse tensor \(layout torch\.sparse_csr\)"),
        ("meta", r"holds a meta tensor \(shape \(6, 3\)\).* no values"),
        ("quantized", r"holds a quantized tensor \(dtype torch\.quint8\); .*\.dequantize\(\)"),
        ("nested", r"holds a nested \(ragged\) tensor; save a dense \(N, d\) tensor"),
        ("nested_jagged", r"holds a nested \(ragged\) tensor"),
    ],
    ids=["sparse_coo", "sparse_csr", "meta", "quantized", "nested", "nested_jagged"],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's beta/deprecation notes on these layouts
def test_pt_tensor_layouts_name_the_cause(tmp_path: Path, kind: str, fragment: str) -> None:
    t = _sparse_meta_quantized_nested(kind)
    torch.save(t, tmp_path / "t.pt")
    with pytest.raises(ValueError, match=fragment):
        load_array(tmp_path / "t.pt")
    torch.save({"data": t, "labels": torch.arange(6)}, tmp_path / "d.pt")
    with pytest.raises(ValueError, match=fragment):
        load_array(tmp_path / "d.pt")


def test_directory_as_the_path_says_which_file_to_give(tmp_path: Path) -> None:
    folder = tmp_path / "points"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a data file; give the path of a \.npy"):
        ArrayDataModule(str(folder))
    np.save(folder / "train.npy", _points(10, 2))
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a data file; it holds train\.npy: give one") \
            as info:
        ArrayDataModule(str(folder))
    assert str(folder / "train.npy") in str(info.value)


def test_float64_beyond_float32_range_is_an_overflow(tmp_path: Path) -> None:
    x = _points(20, 3).astype(np.float64)
    x[4, 2] = -1e300
    x[9, 0] = 5e38
    np.save(tmp_path / "x.npy", x)
    for max_abs in (1e6, None):  # the overflow check does not depend on the scale check
        with pytest.raises(ValueError) as info:
            load_array(tmp_path / "x.npy", max_abs=max_abs)
        msg = str(info.value)
        assert "2 values overflow float32" in msg and "float32's max 3.403e+38" in msg
        assert "largest |value| is 1e+300 (row 4, column 2, 0-based)" in msg and "rescale or standardise" in msg
        assert "NaN" not in msg


def test_data_far_from_unit_scale_is_refused(tmp_path: Path) -> None:
    x = _points(50, 2) * np.float32(1e30)
    np.save(tmp_path / "big.npy", x)
    flat = int(np.abs(x).argmax())
    with pytest.raises(ValueError) as info:
        ArrayDataModule(str(tmp_path / "big.npy"))
    msg = str(info.value)
    assert f"the largest |value| is {float(np.abs(x).max()):.4g} (row {flat // 2}, column {flat % 2}, 0-based)" in msg
    assert "beyond max_abs=1e+06" in msg and "Rescale or standardise" in msg and "null disables" in msg
    assert ArrayDataModule(str(tmp_path / "big.npy"), max_abs=None).data_shape == (2,)
    assert load_array(tmp_path / "big.npy", max_abs=1e31).shape == (50, 2)
    np.save(tmp_path / "ints.npy", np.array([[0, 2_000_000], [1, 2]]))
    with pytest.raises(ValueError, match=r"largest \|value\| is 2e\+06 \(row 0, column 1"):
        load_array(tmp_path / "ints.npy")
    with pytest.raises(ValueError, match="max_abs must be a positive number or None"):
        load_array(tmp_path / "ints.npy", max_abs=-1.0)


def test_npz_or_text_named_npy_names_the_cause(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=_points(5, 2))
    (tmp_path / "a.npz").rename(tmp_path / "a.npy")
    with pytest.raises(ValueError, match=r"is a zip archive \(\.npz, from numpy\.savez\), not a \.npy array"):
        load_array(tmp_path / "a.npy")
    (tmp_path / "b.npy").write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"is not a \.npy file \(it does not start with numpy's"):
        load_array(tmp_path / "b.npy")


def _far_points(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    points = (rng.standard_normal((400, 3)) * np.array([1000.0, 0.001, 50.0]) + np.array([500.0, 0.0, -80.0]))
    path = tmp_path / "far.npy"
    np.save(path, points.astype(np.float32))
    return path, points.astype(np.float32)


def test_standardize_trains_on_unit_scale_and_maps_samples_back(tmp_path: Path) -> None:
    path, points = _far_points(tmp_path)
    dm = ArrayDataModule(str(path), batch_size=32, standardize=True)
    dm.setup()
    train = dm.tensor("train")
    torch.testing.assert_close(train.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(train.std(0), torch.ones(3), atol=1e-4, rtol=0)
    # the other splits use the training split's statistics: the rows come back exactly as they were in the file
    rows = {tuple(np.round(r, 2)) for r in points.astype(np.float64)}
    back = dm.to_data_space(dm.tensor("test")).double().numpy()
    assert all(tuple(np.round(r, 2)) in rows for r in back)


def test_data_far_from_unit_scale_warns_and_names_standardize(tmp_path: Path) -> None:
    path, _ = _far_points(tmp_path)
    with pytest.warns(UserWarning, match="standard deviations run from 0.000976 to 991 .*standardize true"):
        dm = ArrayDataModule(str(path), batch_size=32)
    x = torch.randn(4, 3)
    assert dm.to_data_space(x) is x  # without standardize the units are the file's


def test_predict_writes_standardised_samples_in_the_files_units(tmp_path: Path) -> None:
    from lit_gen.cli import build_cli

    path, points = _far_points(tmp_path)
    configs = Path(__file__).resolve().parents[2] / "configs"
    common = ["--config", str(configs / "diffusion" / "toy2d.yaml"), "--trainer.default_root_dir", str(tmp_path),
              "--data", "lit_gen.data.ArrayDataModule", "--data.init_args.path", str(path),
              "--data.init_args.standardize", "true", "--data.init_args.batch_size", "32",
              "--trainer.enable_progress_bar", "false", "--model.init_args.net.init_args.hidden", "16",
              "--model.init_args.sampler_steps", "4"]
    fit = build_cli(["fit", *common, "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0"])
    ckpt = sorted(Path(fit.trainer.log_dir).rglob("last.ckpt"))[-1]
    out = tmp_path / "pred"
    build_cli(["predict", *common, "--ckpt_path", str(ckpt), "--trainer.callbacks+=lit_gen.callbacks.SampleWriter",
               "--trainer.callbacks.num_samples", "500", "--trainer.callbacks.output_dir", str(out)])
    samples = np.load(out / "samples.npy")
    assert samples.shape == (500, 3)
    # model-space samples have per-feature spread of order one; mapped back, feature 0 spreads like the data's
    assert samples[:, 0].std() > 100 and samples[:, 1].std() < 0.1

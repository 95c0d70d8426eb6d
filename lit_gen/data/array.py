"""Train on your own points: a ``.npy``, ``.pt`` or ``.csv`` file holding an array of shape (N, d).

Class labels, for conditional training, come from a second file or from one column of the data file
(:mod:`lit_gen.data.labels`).

Files are read as written: a CSV row is a header only when none of its cells is a number, so a mistyped
first row is an error naming its line and column, not a silently dropped row; a UTF-8 byte-order mark is
stripped; other encodings, binary files, sparse/meta/quantized/nested tensors, values beyond float32's range
and data far from unit scale each get an error naming the cause and the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lit_gen.data.base import InMemoryDataModule, check_bool, random_split_indices, random_split_tensor, split_sizes

SUPPORTED_SUFFIXES: tuple[str, ...] = (".npy", ".pt", ".pth", ".csv")
#: Default of ``max_abs``: the largest |value| accepted. The samplers (step sizes, initial noise) and the
#: networks assume data of order one; data a million times larger needs rescaling first.
DEFAULT_MAX_ABS: float = 1e6
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _load_npy(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected a .npy array of shape (N, d)")
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic.startswith(_ZIP_MAGIC):
        raise ValueError(
            f"{path} is a zip archive (.npz, from numpy.savez), not a .npy array; save the one array to train on "
            f"with numpy.save(path, array)"
        )
    if magic != _NPY_MAGIC:
        raise ValueError(
            f"{path} is not a .npy file (it does not start with numpy's '\\x93NUMPY' header); save the array with "
            f"numpy.save(path, array), or give a .csv text file a .csv name"
        )
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(
            f"could not read {path} as a numeric .npy array ({e}); save it with numpy.save(path, array) "
            f"where array has a numeric dtype and shape (N, d)"
        ) from e


def _check_plain_tensor(path: Path, t: Tensor) -> None:
    """Refuse tensors that are not a dense array of values: meta, nested, sparse and quantized tensors."""
    if t.is_meta:
        raise ValueError(
            f"{path} holds a meta tensor (shape {tuple(t.shape)}): tensors on the 'meta' device record a shape but "
            f"no values. Save a tensor that holds the data (created or moved to the CPU) with torch.save"
        )
    if t.is_nested:
        raise ValueError(
            f"{path} holds a nested (ragged) tensor; save a dense (N, d) tensor instead, e.g. "
            f"torch.cat(t.unbind()) when every part has the same d"
        )
    if t.layout != torch.strided:
        raise ValueError(
            f"{path} holds a sparse tensor (layout {t.layout}); save a dense one: torch.save(t.to_dense(), path)"
        )
    if t.is_quantized:
        raise ValueError(
            f"{path} holds a quantized tensor (dtype {t.dtype}); save its real values: "
            f"torch.save(t.dequantize(), path)"
        )


def read_pt(path: Path, name: str, shape: str, hint: str) -> object:
    """``torch.load(path, weights_only=True)`` (no code runs) with clear errors for an empty or unreadable file;
    ``name`` is how messages call the file (``"{path}"``, ``"labels file {path}"``), ``hint`` what to save instead."""
    if path.stat().st_size == 0:
        raise ValueError(f"{name} is empty (0 bytes); expected a tensor of shape {shape} saved by torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types (UnpicklingError, RuntimeError) for bad files
        raise ValueError(
            f"could not read {name} with torch.load(weights_only=True) ({type(e).__name__}: {e}); {hint}"
        ) from e


def _load_pt(path: Path) -> Tensor | np.ndarray:
    obj = read_pt(path, str(path), "(N, d)",
                  "save a plain tensor, or a dict holding one tensor (or a 'data' key), with torch.save")
    if isinstance(obj, dict):
        if "data" in obj:
            obj = obj["data"]
        else:
            tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
            if len(tensors) != 1:
                raise ValueError(
                    f"{path} holds a dict with keys {sorted(map(str, obj))}; expected a key 'data' or "
                    f"exactly one tensor value, found {len(tensors)} tensors"
                )
            obj = next(iter(tensors.values()))
    if not isinstance(obj, Tensor):
        raise TypeError(f"{path} holds a {type(obj).__name__}; expected a tensor of shape (N, d)")
    _check_plain_tensor(path, obj)
    return obj


def _read_utf8_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (a byte-order mark is dropped); other encodings raise ValueError."""
    raw = path.read_bytes()
    what_to_do = (
        "CSV files are read as UTF-8: re-save it as UTF-8 (e.g. `iconv -f <encoding> -t UTF-8 in.csv > out.csv`, "
        "or 'CSV UTF-8' in a spreadsheet program), or save the array with numpy.save as a .npy file"
    )
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise ValueError(f"{path} is {name} text (it starts with a {name} byte-order mark), not UTF-8; "
                             f"{what_to_do}")
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ValueError(
            f"{path} holds NUL bytes (first on line {line}): it is a binary file, or UTF-16/UTF-32 text, not a "
            f"UTF-8 comma-separated text file; {what_to_do}"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{path} is not UTF-8 text: byte 0x{raw[e.start]:02x} on line {line} is not valid UTF-8 ({e.reason}); "
            f"the file is probably in another encoding (e.g. latin-1 or Windows-1252) or binary. {what_to_do}"
        ) from e


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _load_csv(path: Path) -> np.ndarray:
    text = _read_utf8_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header_line: int | None = None
    width: int | None = None
    values: list[list[float]] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            parsed = [_number(cell) for cell in row]
            if width is None and header_line is None and all(v is None for v in parsed):
                header_line = line  # only a row without a single number is a header
                continue
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise ValueError(
                    f"{path}: row on line {line} has {len(row)} columns but the first data row has {width}; "
                    f"every row must have the same number d of comma-separated values"
                )
            for column, (cell, value) in enumerate(zip(row, parsed, strict=True), start=1):
                if value is None:
                    shown = "an empty cell" if not cell.strip() else f"non-numeric value {cell.strip()!r}"
                    hint = (" (a first row is taken as a header only when none of its cells is a number)"
                            if not values and header_line is None else "")
                    raise ValueError(
                        f"{path}: {shown} on line {line}, column {column}; every value must be a number{hint}"
                    )
            values.append(parsed)  # type: ignore[arg-type]  # no None left
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV file on line {reader.line_num} ({e})") from e
    if not values:
        if header_line is not None:
            raise ValueError(f"{path} has a header row but no data rows; expected numeric rows of shape (N, d)")
        raise ValueError(f"{path} is empty; expected comma-separated numeric rows of shape (N, d)")
    return np.asarray(values, dtype=np.float64)


def _largest(data: Tensor) -> str:
    """``"<largest |value|> (row r, column c, 0-based)"`` of an ``(N, d)`` tensor, for error messages."""
    flat = int(data.abs().argmax())
    return f"{float(data.abs().view(-1)[flat]):.4g} ({_position(flat, data.shape[1])})"


def _position(flat_index: int, d: int) -> str:
    row, column = divmod(flat_index, d)
    return f"row {row}, column {column}, 0-based"


def _check_max_abs(max_abs: float | None) -> float | None:
    if max_abs is None:
        return None
    if isinstance(max_abs, bool) or not isinstance(max_abs, (int, float)) or not max_abs > 0 \
            or math.isnan(max_abs):
        raise ValueError(f"max_abs must be a positive number or None (no scale check), got {max_abs!r}")
    return float(max_abs)


def load_array(path: str | Path, max_abs: float | None = DEFAULT_MAX_ABS) -> Tensor:
    """Load a float32 tensor of shape ``(N, d)`` from ``.npy``, ``.pt``/``.pth`` or ``.csv``.

    ``.pt`` files hold a dense tensor, or a dict with a ``"data"`` key or exactly one tensor. ``.csv``
    files are UTF-8 (a byte-order mark is fine) comma-separated numbers with an optional header row; a row is
    a header only when none of its cells is a number.

    Args:
        path: the data file.
        max_abs: the largest |value| accepted (default ``1e6``): the samplers and networks assume data of order
            one, so data at a far larger scale must be rescaled or standardised first. ``None`` disables it.

    Raises:
        FileNotFoundError: a missing file. IsADirectoryError: a directory was given.
        ValueError / TypeError: naming the problem for an unsupported suffix, an empty file, a non-UTF-8 or
            binary CSV, a non-numeric value (with its line and column), a sparse/meta/quantized/nested tensor,
            a wrong shape, NaN/inf entries, values beyond float32's range, or values beyond ``max_abs``.
    """
    max_abs = _check_max_abs(max_abs)
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        hint = (
            f"it holds {', '.join(files[:5])}{', ...' if len(files) > 5 else ''}: give one of those files, e.g. "
            f"path={path / files[0]} (data.init_args.path)"
            if files else f"give the path of a {', '.join(SUPPORTED_SUFFIXES)} file (there is none directly in it)"
        )
        raise IsADirectoryError(f"data path {path} is a directory, not a data file; {hint}")
    if not path.is_file():
        if path.exists():
            raise ValueError(f"data path {path} is not a regular file; give a {', '.join(SUPPORTED_SUFFIXES)} file")
        raise FileNotFoundError(f"data file not found: {path} (resolved to {path.resolve()})")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw = _load_npy(path)
    elif suffix in (".pt", ".pth"):
        raw = _load_pt(path)
    elif suffix == ".csv":
        raw = _load_csv(path)
    else:
        raise ValueError(
            f"unsupported file suffix {path.suffix!r} for {path}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )

    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"{path} holds non-numeric data (dtype {raw.dtype}); expected real numbers")
        if raw.dtype.kind == "f" and raw.dtype.itemsize > 8:  # long double: torch has no such dtype
            raw = raw.astype(np.float64)
        data = torch.from_numpy(np.ascontiguousarray(raw))
    else:
        if raw.is_complex() or not (raw.is_floating_point() or raw.dtype in _INT_DTYPES):
            raise TypeError(f"{path} holds a tensor of dtype {raw.dtype}; expected a real-valued tensor")
        data = raw
    if data.ndim != 2:
        hint = " (for 1-D data use array.reshape(-1, 1))" if data.ndim == 1 else ""
        raise ValueError(f"{path}: expected an array of shape (N, d), got {tuple(data.shape)}{hint}")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(
            f"{path} is empty: expected an array of shape (N, d) with N, d >= 1, got {tuple(data.shape)}"
        )
    if data.is_floating_point():
        finite = torch.isfinite(data)
        bad_rows = ~finite.all(dim=1)
        n_bad = int(bad_rows.sum())
        if n_bad:
            first = int(bad_rows.nonzero()[0, 0])
            raise ValueError(
                f"{path}: {n_bad} of {data.shape[0]} rows contain NaN or inf (first at row {first}, 0-based); "
                f"remove or impute those rows before training"
            )
        if data.dtype == torch.float64:
            too_big = data.abs() > _FLOAT32_MAX
            n_big = int(too_big.sum())
            if n_big:
                raise ValueError(
                    f"{path}: {n_big} values overflow float32 (|x| above float32's max {_FLOAT32_MAX:.4g}), the "
                    f"dtype training uses: they would become inf. The largest |value| is {_largest(data)}; rescale "
                    f"or standardise the data (e.g. "
                    f"(x - x.mean(0)) / x.std(0)) before saving it"
                )
    data = data.to(torch.float32)
    if max_abs is not None:
        low, high = torch.aminmax(data)
        if max(-float(low), float(high)) > max_abs:
            raise ValueError(
                f"{path}: the largest |value| is {_largest(data)}, beyond "
                f"max_abs={max_abs:g}: the samplers' step sizes and noise and the networks assume data of order "
                f"one, so data at this scale does not train. Rescale or standardise it (e.g. "
                f"(x - x.mean(0)) / x.std(0)) before saving, or raise max_abs (data.init_args.max_abs; null "
                f"disables this check)"
            )
    return data.contiguous()


#: per-feature standard deviations (and |means|) outside this range are far from the unit scale the configs assume
UNIT_SCALE_RANGE: tuple[float, float] = (0.05, 20.0)


def warn_if_far_from_unit_scale(mean: Tensor, std: Tensor, path: str) -> None:
    """Warn when the training split's per-feature std leaves :data:`UNIT_SCALE_RANGE` or a mean is beyond its top.

    The configs' step sizes, noise levels, initial chains and plots assume data of order one: such data trains
    badly or not at all, where the same data standardised trains as the toys do."""
    low, high = UNIT_SCALE_RANGE
    too_small, too_large = float(std.min()), float(std.max())
    offset = float(mean.abs().max())
    if too_small >= low and too_large <= high and offset <= high:
        return
    warnings.warn(
        f"{path}: the features' standard deviations run from {too_small:.3g} to {too_large:.3g} and their means "
        f"reach {offset:.3g}, far from the unit scale the configs assume (noise levels, step sizes, initial "
        f"chains); set data.init_args.standardize true to train on (x - mean) / std of the training split "
        f"(samples written by predict are mapped back to the file's units)",
        UserWarning,
        stacklevel=3,
    )


class ArrayDataModule(InMemoryDataModule):
    """User-provided points ``(N, d)``, any ``d``, split once into seeded train/val/test parts.

    The file (and the labels file) is loaded in ``__init__`` so that ``data_shape = (d,)`` and ``num_classes`` are
    known at once.

    Args:
        path: a ``.npy``, ``.pt``/``.pth`` or ``.csv`` file (see :func:`load_array`).
        batch_size: training (and evaluation) batch size.
        val_fraction, test_fraction: fractions of the rows held out (rounded up; each non-zero
            fraction gets at least one row).
        seed: seeds the split and the training order.
        max_abs: the largest |value| accepted (default ``1e6``; data far from unit scale must be rescaled or
            standardised first); ``None`` disables the check.
        conditional: serve ``(x, y)`` batches with the class labels given by ``labels`` or ``label_column``; the
            points and their order are the same as with ``conditional=False``.
        labels: a ``.npy``, ``.pt``/``.pth`` or ``.csv`` file with one integer class label (``0..K-1``) per row of
            ``path``, in the same order (see :func:`lit_gen.data.labels.load_labels`).
        label_column: instead of ``labels``: the column of the data file (0-based; ``-1`` the last) that holds the
            label, e.g. of a CSV ``x0,x1,label``. It is removed from the features, so ``data_shape`` is ``(d - 1,)``
            whether or not ``conditional`` is set.
        num_classes: the number of classes (every label must be below it); default: the largest label + 1.
        standardize: train on ``(x - mean) / std`` per feature, with the mean and std of the training split
            (:attr:`shift`, :attr:`scale`); :meth:`to_data_space` maps samples back, and ``lit-gen predict``
            writes them in the file's units. Without it, data far from unit scale gets a warning.

    Labels given while ``conditional`` is False are still read and checked (so one config can switch between the
    two), but batches then carry no labels and ``num_classes`` is None.
    """

    def __init__(
        self,
        path: str,
        batch_size: int = 256,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        max_abs: float | None = DEFAULT_MAX_ABS,
        conditional: bool = False,
        labels: str | None = None,
        label_column: int | None = None,
        num_classes: int | None = None,
        standardize: bool = False,
    ) -> None:
        # imported here: lit_gen.data.labels reads label files with this module's loaders
        from lit_gen.data.labels import check_label_arguments, check_label_range, load_labels, split_label_column

        super().__init__(batch_size=batch_size, seed=seed, conditional=conditional)
        self.path = str(path)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.max_abs = max_abs
        self.labels_path = None if labels is None else str(labels)
        self.label_column = label_column
        check_label_arguments(check_bool(conditional, "conditional"), labels, label_column, num_classes)
        self._data = load_array(path, max_abs=max_abs)
        self._targets: Tensor | None = None
        self._num_classes: int | None = None
        if label_column is not None:
            self._data, self._targets = split_label_column(self._data, label_column, self.path)
        elif labels is not None:
            self._targets = load_labels(labels, data_path=self.path)
            if len(self._targets) != len(self._data):
                raise ValueError(
                    f"labels file {labels} holds {len(self._targets)} labels but the data file {self.path} has "
                    f"{len(self._data)} rows; give exactly one integer label per row of the data, in the same order"
                )
        if self._targets is not None:
            source = f"labels file {labels}" if label_column is None else f"{self.path}, label_column={label_column}"
            self._num_classes = check_label_range(self._targets, num_classes, source)
        # Fail at construction, not at fit time, when N cannot be split as asked.
        split_sizes(len(self._data), val_fraction, test_fraction, what=str(path))
        self.standardize = check_bool(standardize, "standardize")
        train = self._data[random_split_indices(len(self._data), val_fraction, test_fraction, seed=seed,
                                                what=self.path)["train"]]
        mean, std = train.mean(dim=0), train.std(dim=0) if len(train) > 1 else torch.ones(train.shape[1])
        #: x_model = (x - shift) / scale when ``standardize``: the training split's mean and standard deviation
        #: per feature (1 for a constant feature), else 0 and 1
        self.shift = mean if self.standardize else torch.zeros_like(mean)
        self.scale = torch.where(std > 0, std, torch.ones_like(std)) if self.standardize else torch.ones_like(std)
        if not self.standardize:
            warn_if_far_from_unit_scale(mean, std, self.path)
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self._data.shape[1],)

    @property
    def num_classes(self) -> int | None:
        """The number of classes when ``conditional`` (given, or the largest label + 1), else None."""
        return self._num_classes if self.conditional else None

    def load_splits(self) -> dict[str, Tensor | tuple[Tensor, Tensor]]:
        fractions = (self.val_fraction, self.test_fraction)
        data = (self._data - self.shift) / self.scale if self.standardize else self._data
        if self._targets is None:
            return random_split_tensor(data, *fractions, seed=self.seed, what=self.path)
        parts = random_split_indices(len(data), *fractions, seed=self.seed, what=self.path)
        return {split: (data[index].contiguous(), self._targets[index]) for split, index in parts.items()}

    def to_data_space(self, x: Tensor) -> Tensor:
        """Map points from the model's units back to the file's: ``x · scale + shift`` (identity without
        ``standardize``, returning ``x`` itself)."""
        if not self.standardize:
            return x
        return x * self.scale.to(x.device, x.dtype) + self.shift.to(x.device, x.dtype)


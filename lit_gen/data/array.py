"""Train on your own points: a ``.npy``, ``.pt`` or ``.csv`` file holding an array of shape (N, d)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lit_gen.data.base import InMemoryDataModule, random_split_tensor, split_sizes

SUPPORTED_SUFFIXES: tuple[str, ...] = (".npy", ".pt", ".pth", ".csv")
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)


def _load_npy(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected a .npy array of shape (N, d)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ValueError(
            f"could not read {path} as a numeric .npy array ({e}); save it with numpy.save(path, array) "
            f"where array has a numeric dtype and shape (N, d)"
        ) from e


def _load_pt(path: Path) -> Tensor | np.ndarray:
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected a tensor of shape (N, d) saved by torch.save")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types (UnpicklingError, RuntimeError) for bad files
        raise ValueError(
            f"could not read {path} with torch.load(weights_only=True) ({type(e).__name__}: {e}); "
            f"save a plain tensor, or a dict holding one tensor (or a 'data' key), with torch.save"
        ) from e
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
    return obj


def _load_csv(path: Path) -> np.ndarray:
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path} is empty; expected comma-separated numeric rows of shape (N, d)")

    def parse(row: list[str]) -> list[float] | None:
        try:
            return [float(cell) for cell in row]
        except ValueError:
            return None

    # A first row that does not parse as numbers is a header.
    start = 0 if parse(rows[0]) is not None else 1
    body = rows[start:]
    if not body:
        raise ValueError(f"{path} has a header row but no data rows; expected numeric rows of shape (N, d)")
    width = len(body[0])
    values = []
    for i, row in enumerate(body):
        line = i + start + 1
        if len(row) != width:
            raise ValueError(
                f"{path}: row on line {line} has {len(row)} columns but the first data row has {width}; "
                f"every row must have the same number d of comma-separated values"
            )
        parsed = parse(row)
        if parsed is None:
            bad = next(c for c in row if parse([c]) is None)
            raise ValueError(
                f"{path}: non-numeric value {bad.strip()!r} on line {line}; every value must be a number"
            )
        values.append(parsed)
    return np.asarray(values, dtype=np.float64)


def load_array(path: str | Path) -> Tensor:
    """Load a float32 tensor of shape ``(N, d)`` from ``.npy``, ``.pt``/``.pth`` or ``.csv``.

    ``.pt`` files hold a tensor, or a dict with a ``"data"`` key or exactly one tensor. ``.csv``
    files are comma-separated numbers with an optional header row. Raises FileNotFoundError for a
    missing file and ValueError/TypeError naming the problem for an unsupported suffix, an empty
    file, non-numeric values, a wrong shape, or NaN/inf entries.
    """
    path = Path(path).expanduser()
    if not path.is_file():
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
    data = data.to(torch.float32)
    bad_rows = ~torch.isfinite(data).all(dim=1)
    n_bad = int(bad_rows.sum())
    if n_bad:
        first = int(bad_rows.nonzero()[0, 0])
        raise ValueError(
            f"{path}: {n_bad} of {data.shape[0]} rows contain NaN or inf (first at row {first}, 0-based); "
            f"remove or impute those rows before training"
        )
    return data.contiguous()



class ArrayDataModule(InMemoryDataModule):
    """User-provided points ``(N, d)``, any ``d``, split once into seeded train/val/test parts.

    The file is loaded in ``__init__`` so that ``data_shape = (d,)`` is known at once.

    Args:
        path: a ``.npy``, ``.pt``/``.pth`` or ``.csv`` file (see :func:`load_array`).
        batch_size: training (and evaluation) batch size.
        val_fraction, test_fraction: fractions of the rows held out (rounded up; each non-zero
            fraction gets at least one row).
        seed: seeds the split and the training order.
    """

    def __init__(
        self,
        path: str,
        batch_size: int = 256,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.path = str(path)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self._data = load_array(path)
        # Fail at construction, not at fit time, when N cannot be split as asked.
        split_sizes(len(self._data), val_fraction, test_fraction, what=str(path))
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self._data.shape[1],)

    def load_splits(self) -> dict[str, Tensor]:
        fractions = (self.val_fraction, self.test_fraction)
        return random_split_tensor(self._data, *fractions, seed=self.seed, what=self.path)

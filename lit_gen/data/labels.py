"""Class labels for user data: a label file (``.npy``, ``.pt``/``.pth``, ``.csv``) or a column of the data file.

Labels are integer class indices ``0 .. K-1``, one per row of the data, in the same order. They are read with the
same strict loaders as the data (:mod:`lit_gen.data.array`: ``numpy.load(allow_pickle=False)``,
``torch.load(weights_only=True)``, a UTF-8 CSV parser), so a label file never runs code, and every problem (a
missing file, the wrong count, a fractional, negative or too large label, class names instead of indices) is an
error naming the file, the row and what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lit_gen.data.array import _INT_DTYPES, SUPPORTED_SUFFIXES, _check_plain_tensor, _load_csv, _load_npy, read_pt

__all__ = ["MAX_LABEL", "check_label_arguments", "check_label_range", "labels_from_values", "load_labels",
           "split_label_column"]

#: the largest label accepted: a class index beyond it is almost surely an id or a value, not a class
MAX_LABEL: int = 2**31 - 1
#: keys of a ``.pt`` dict that hold the labels, in order of preference
_PT_KEYS: tuple[str, ...] = ("labels", "targets", "y")
_WHAT_LABELS_ARE = "labels must be integer class indices 0..K-1, one per row of the data, in the same order"


def _load_pt_labels(path: Path) -> Tensor:
    obj = read_pt(path, f"labels file {path}", "(N,)",
                  "save a plain integer tensor of shape (N,), or a dict with a 'labels' key, with torch.save")
    if isinstance(obj, dict):
        key = next((k for k in _PT_KEYS if k in obj), None)
        if key is not None:
            obj = obj[key]
        else:
            tensors = [v for v in obj.values() if isinstance(v, Tensor)]
            if len(tensors) != 1:
                raise ValueError(
                    f"labels file {path} holds a dict with keys {sorted(map(str, obj))}; expected a key "
                    f"{' / '.join(map(repr, _PT_KEYS))} or exactly one tensor value, found {len(tensors)} tensors"
                )
            obj = tensors[0]
    if not isinstance(obj, Tensor):
        raise TypeError(f"labels file {path} holds a {type(obj).__name__}; expected an integer tensor of shape (N,)")
    _check_plain_tensor(path, obj)
    return obj


def load_labels(path: str | Path, data_path: str | None = None) -> Tensor:
    """Read integer class labels ``(N,)`` (``torch.long``) from a ``.npy``, ``.pt``/``.pth`` or ``.csv`` file.

    The file holds one label per row: shape ``(N,)`` or ``(N, 1)`` (a CSV: one number per line, with an optional
    header such as ``label``). A ``.pt`` file may hold a dict, whose ``'labels'`` (or ``'targets'``, ``'y'``) key is
    read, so ``{"data": x, "labels": y}`` serves as both the data and the labels file.

    Args:
        path: the labels file.
        data_path: the data file the labels belong to (named in the error for a missing file).

    Raises:
        FileNotFoundError: a missing file (naming the path and what to give instead). IsADirectoryError.
        ValueError / TypeError: an unsupported suffix, an unreadable or empty file, a shape other than ``(N,)`` or
            ``(N, 1)``, non-numeric values (class names), fractional, non-finite, negative or too large labels.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"labels path {path} is a directory; give a {', '.join(SUPPORTED_SUFFIXES)} file "
                                f"with one integer label per row of the data")
    if not path.is_file():
        rows = f"each row of the data file {data_path}" if data_path else "each row of the data"
        raise FileNotFoundError(
            f"labels file not found: {path} (resolved to {path.resolve()}). `labels` (data.init_args.labels) must be "
            f"the path of a {', '.join(SUPPORTED_SUFFIXES)} file holding one integer class label (0..K-1) for {rows}; "
            f"or set `label_column` when a column of a CSV data file holds the label, or `conditional: false` to "
            f"train without labels"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw: np.ndarray | Tensor = _load_npy(path)
    elif suffix in (".pt", ".pth"):
        raw = _load_pt_labels(path)
    elif suffix == ".csv":
        try:
            raw = _load_csv(path)
        except ValueError as e:
            raise ValueError(f"labels file: {e} ({_WHAT_LABELS_ARE}; map class names to indices first, e.g. "
                             f"names, y = numpy.unique(names, return_inverse=True))") from e
    else:
        raise ValueError(
            f"unsupported labels file suffix {path.suffix!r} for {path}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "biuf":
            raise TypeError(
                f"labels file {path} holds {raw.dtype} values, not numbers; {_WHAT_LABELS_ARE}. Map class names to "
                f"indices first, e.g. names, y = numpy.unique(names, return_inverse=True), then numpy.save(path, y)"
            )
        if raw.dtype.kind == "f" and raw.dtype.itemsize > 8:
            raw = raw.astype(np.float64)
        values = torch.from_numpy(np.ascontiguousarray(raw))
    else:
        values = raw
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"labels file {path} holds an array of shape {tuple(values.shape)}; expected one label per "
                         f"row: shape (N,) or (N, 1)")
    return labels_from_values(values, f"labels file {path}")


def labels_from_values(values: Tensor, source: str) -> Tensor:
    """Check that ``values`` ``(N,)`` are class indices (integral, finite, ``0 <= y <= MAX_LABEL``); return them as
    ``torch.long``. ``source`` names where they came from in the errors (e.g. ``"labels file y.npy"``)."""
    if values.is_complex() or not (values.is_floating_point() or values.dtype in _INT_DTYPES):
        raise TypeError(f"{source} holds values of dtype {values.dtype}; {_WHAT_LABELS_ARE}")
    if len(values) == 0:
        raise ValueError(f"{source} holds no labels; {_WHAT_LABELS_ARE}")
    if values.dtype == torch.bool:
        values = values.to(torch.uint8)
    if values.is_floating_point():
        bad = ~torch.isfinite(values) | (values != torch.round(values))
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ValueError(f"{source}: the label on row {row} (0-based) is {float(values[row])!r}, not an integer; "
                             f"{_WHAT_LABELS_ARE}")
    negative = values < 0
    if bool(negative.any()):
        row = int(negative.nonzero()[0, 0])
        raise ValueError(f"{source}: the label on row {row} (0-based) is {_shown(values[row])}, negative; "
                         f"{_WHAT_LABELS_ARE}")
    too_big = values > MAX_LABEL
    if bool(too_big.any()):
        row = int(too_big.nonzero()[0, 0])
        raise ValueError(f"{source}: the label on row {row} (0-based) is {_shown(values[row])}, beyond {MAX_LABEL}: "
                         f"not a class index; {_WHAT_LABELS_ARE}")
    return values.to(torch.long).contiguous()


def check_label_range(labels: Tensor, num_classes: int | None, source: str) -> int:
    """The number of classes: ``num_classes`` when given (every label must be below it), else ``max + 1``.

    Raises TypeError/ValueError for a ``num_classes`` that is not a positive int, and ValueError naming the first
    offending label and its row when a label is ``>= num_classes``.
    """
    inferred = int(labels.max()) + 1
    if num_classes is None:
        return inferred
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes must be a positive int or None (inferred as max label + 1), got "
                        f"{type(num_classes).__name__} ({num_classes!r})")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive int or None (inferred as max label + 1), got {num_classes}")
    if inferred > num_classes:
        row = int((labels >= num_classes).nonzero()[0, 0])
        raise ValueError(
            f"{source}: the label on row {row} (0-based) is {int(labels[row])}, but num_classes={num_classes} allows "
            f"only 0..{num_classes - 1}; raise num_classes (data.init_args.num_classes) to at least {inferred}, leave "
            f"it unset to infer it, or fix the label"
        )
    return num_classes


def _shown(value: Tensor) -> str:
    v = value.item()
    return f"{v:g}" if isinstance(v, float) else str(v)


def check_label_arguments(conditional: bool, labels: str | Path | None, label_column: int | None,
                          num_classes: int | None) -> None:
    """Raise a clear error for contradictory label settings of a data module (both sources, none when
    ``conditional``, ``num_classes`` without labels)."""
    if labels is not None and label_column is not None:
        raise ValueError(
            f"give either labels (a labels file) or label_column (a column of the data file), not both: got "
            f"labels={labels!r} and label_column={label_column!r}"
        )
    if labels is not None and not isinstance(labels, (str, Path)):
        raise TypeError(f"labels must be the path of a labels file (a str) or None, got {type(labels).__name__}")
    has_labels = labels is not None or label_column is not None
    if conditional and not has_labels:
        raise ValueError(
            "ArrayDataModule(conditional=True) needs class labels: set `labels` (data.init_args.labels) to a "
            ".npy/.pt/.csv file with one integer label per row of the data, or `label_column` to the column of the "
            "data file that holds the label; or set conditional: false"
        )
    if num_classes is not None and not has_labels:
        raise ValueError(f"num_classes={num_classes!r} is given but there are no labels; set `labels` or "
                         f"`label_column`, or drop num_classes")


def split_label_column(data: Tensor, label_column: int, path: str) -> tuple[Tensor, Tensor]:
    """``(features, labels)``: the data without column ``label_column``, and that column as class indices."""
    if isinstance(label_column, bool) or not isinstance(label_column, int):
        raise TypeError(f"label_column must be an int (a 0-based column index, -1 for the last) or None, got "
                        f"{type(label_column).__name__} ({label_column!r})")
    d = data.shape[1]
    if not -d <= label_column < d:
        raise ValueError(f"label_column={label_column} is outside the {d} columns of {path} (0-based: 0..{d - 1}, "
                         f"or -1 for the last)")
    if d < 2:
        raise ValueError(f"{path} has a single column, so label_column={label_column} would leave no features; "
                         f"put the labels in a separate file (`labels`) or add the feature columns")
    column = label_column % d
    keep = [c for c in range(d) if c != column]
    labels = labels_from_values(data[:, column], f"{path}, label_column={label_column}")
    return data[:, keep].contiguous(), labels

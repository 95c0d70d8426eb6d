"""Read data pickles (CIFAR batches, ``mnist.pkl.gz``) without letting the file run code.

``pickle.load`` calls whatever global a pickle names (``os.system``, ``builtins.eval``, ...), so a crafted
dataset file executes code the moment it is read. :func:`safe_load` uses a restricted unpickler that resolves
only the globals plain data needs:

* containers and scalars (dict, list, tuple, set, str, bytes, int, float, bool, None) need no global at all,
  except ``set``/``frozenset``/``bytearray``/``complex``/``collections.OrderedDict``, which are allowed;
* numpy arrays and scalars need ``numpy.dtype`` and the reconstruction helpers
  ``numpy[._]core.multiarray._reconstruct``, ``numpy[._]core.multiarray.scalar`` and
  ``numpy[._]core.numeric._frombuffer`` (protocol 5) — each replaced by a checking wrapper — and
  ``numpy.ndarray`` only as the argument of ``_reconstruct``;
* protocol 0–2 pickles written by Python 3 encode bytes with ``_codecs.encode(text, "latin1")``; only that
  encoding is allowed.

Arrays of dtype ``object`` (whose elements would be arbitrary pickled objects) are refused as well. Anything
else raises :class:`UnsafePickleError` before any of it runs.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = ["UnsafePickleError", "SafeUnpickler", "safe_load"]

_LATIN1_NAMES = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 spelling of a global that a protocol 0-2 pickle may name the Python 2 way."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks for something other than plain data; it was refused before any of it ran."""


def _numpy_core() -> tuple[Any, Any]:
    """numpy's ``multiarray`` and ``numeric`` modules (``numpy._core`` in numpy 2, ``numpy.core`` before)."""
    core = getattr(np, "_core", None) or np.core
    return core.multiarray, core.numeric


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a pickle: usable only as the subtype argument of ``_reconstruct``."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayToken()


class SafeUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only the globals plain data (and, optionally, numpy arrays) need.

    Args:
        file: a binary file object open for reading.
        what: how the file is named in error messages (usually its path).
        allow_numpy: also accept numpy arrays and numpy scalars (not of dtype object).
        encoding: how Python 2 ``str`` objects are decoded ("latin1" keeps numpy array bytes intact).
    """

    def __init__(self, file: IO[bytes], *, what: str = "the pickle", allow_numpy: bool = True,
                 encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)
        self.what = what
        self.allow_numpy = allow_numpy
        self._allowed = self._build_allowed()

    # ----- the allowed globals, each a plain callable that builds data ---------------------------------

    def _build_allowed(self) -> dict[tuple[str, str], Any]:
        allowed: dict[tuple[str, str], Any] = {
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "bytearray"): bytearray,
            ("builtins", "complex"): complex,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("_codecs", "encode"): self._latin1_encode,
        }
        if self.allow_numpy:
            for core in ("numpy.core", "numpy._core"):
                allowed[(f"{core}.multiarray", "_reconstruct")] = self._reconstruct
                allowed[(f"{core}.multiarray", "scalar")] = self._scalar
                allowed[(f"{core}.numeric", "_frombuffer")] = self._frombuffer
            allowed[("numpy", "dtype")] = self._dtype
            allowed[("numpy", "ndarray")] = _NDARRAY
        return allowed

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``; anything else raises :class:`UnsafePickleError`."""
        key = _python3_name(module, name)
        if key in self._allowed:
            return self._allowed[key]
        written = "" if key == (module, name) else f" (written as {module}.{name})"
        raise UnsafePickleError(
            f"{self.what}: refused to load: the pickle asks for the global {key[0]}.{key[1]}{written}, which "
            f"plain data does "
            f"not need. The file is not a plain data pickle (dicts, lists, numbers, strings"
            f"{', numpy arrays' if self.allow_numpy else ''}) and was refused without running any of it; "
            f"replace it with a genuine copy of the dataset file"
        )

    def _refuse_object_dtype(self, dtype: np.dtype) -> None:
        if dtype.hasobject:
            raise UnsafePickleError(
                f"{self.what}: refused to load: the pickle holds a numpy array or scalar of dtype {dtype} (Python "
                f"objects), which a data file does not need. The file is not a plain data pickle and was refused "
                f"without building those objects; save numeric arrays instead"
            )

    def _latin1_encode(self, text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if not isinstance(text, str) or encoding.lower() not in _LATIN1_NAMES:
            raise UnsafePickleError(
                f"{self.what}: refused to load: the pickle calls _codecs.encode with encoding {encoding!r}; only "
                f"latin1 (how Python 3 writes bytes in protocol 0-2 pickles) is allowed. The file is not a plain "
                f"data pickle and was refused"
            )
        return text.encode("latin1", errors)

    def _dtype(self, *args: Any) -> np.dtype:
        dtype = np.dtype(*args)
        self._refuse_object_dtype(dtype)
        return dtype

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not _NDARRAY:
            raise UnsafePickleError(
                f"{self.what}: refused to load: numpy._reconstruct was asked to build a {subtype!r}, not a plain "
                f"numpy.ndarray. The file is not a plain data pickle and was refused"
            )
        self._refuse_object_dtype(np.dtype(dtype))
        multiarray, _ = _numpy_core()
        return multiarray._reconstruct(np.ndarray, shape, dtype)

    def _scalar(self, dtype: Any, *args: Any) -> Any:
        if not isinstance(dtype, np.dtype):
            raise UnsafePickleError(f"{self.what}: refused to load: a numpy scalar without a numpy dtype")
        self._refuse_object_dtype(dtype)
        multiarray, _ = _numpy_core()
        return multiarray.scalar(dtype, *args)

    def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        self._refuse_object_dtype(np.dtype(dtype))
        _, numeric = _numpy_core()
        return numeric._frombuffer(buffer, dtype, shape, order)


def _check_no_object_arrays(obj: Any, what: str) -> None:
    """Walk the loaded containers: no numpy array of dtype object may have slipped through."""
    stack, seen = [obj], set()
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise UnsafePickleError(
                    f"{what}: refused: it holds a numpy array of dtype {item.dtype} (Python objects); a data "
                    f"pickle must hold numeric arrays"
                )
        elif isinstance(item, (dict, list, tuple, set, frozenset)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            else:
                stack.extend(item)


def safe_load(
    source: bytes | bytearray | str | os.PathLike[str] | IO[bytes],
    *,
    allow_numpy: bool = True,
    encoding: str = "latin1",
    what: str | None = None,
) -> Any:
    """Unpickle plain data (dicts, lists, tuples, sets, str, bytes, numbers, numpy arrays) and nothing else.

    Args:
        source: the pickle's bytes, a path to it, or a binary file object (e.g. ``gzip.open(path, "rb")``).
        allow_numpy: accept numpy arrays and scalars (never of dtype object).
        encoding: decoding of Python 2 ``str`` objects; "latin1" (the default) is what numpy arrays in Python 2
            pickles (CIFAR-10, ``mnist.pkl.gz``) need.
        what: the name used in error messages (default: the path, or "the pickle").

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: the pickle names a global other than the allowed ones, or holds an object array;
            nothing from it was run. It names the file and the global.
        pickle.UnpicklingError: the bytes are not a readable pickle (truncated, corrupted); names the file.
    """
    if isinstance(source, (bytes, bytearray)):
        name = what or "the pickle"
        opened: Callable[[], IO[bytes]] = lambda: io.BytesIO(bytes(source))  # noqa: E731
    elif isinstance(source, (str, os.PathLike)):
        name = what or os.fspath(source)
        opened = lambda: open(source, "rb")  # noqa: E731, SIM115
    else:
        name = what or str(getattr(source, "name", "the pickle"))
        opened = None  # type: ignore[assignment]

    def load(f: IO[bytes]) -> Any:
        try:
            return SafeUnpickler(f, what=name, allow_numpy=allow_numpy, encoding=encoding).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, UnicodeDecodeError, OverflowError, MemoryError) as err:
            raise pickle.UnpicklingError(
                f"could not read {name} as a data pickle ({type(err).__name__}: {err}); the file is truncated, "
                f"corrupted or not a pickle"
            ) from err

    if opened is None:
        result = load(source)  # type: ignore[arg-type]
    else:
        with opened() as f:
            result = load(f)
    _check_no_object_arrays(result, name)
    return result

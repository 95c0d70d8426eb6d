"""Image datasets that read the standard on-disk layouts without checksums, and a label-dropping wrapper.

torchvision checks md5 sums of CIFAR-10, SVHN and CelebA files; these readers only check that the
files exist, so re-packed or subset copies (and the tiny files the tests write) load too.
Downloading still goes through torchvision's own classes, which verify what they fetch.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, SVHN
from torchvision.datasets.folder import IMG_EXTENSIONS


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


class CIFAR10Files(CIFAR10):
    """torchvision CIFAR-10 reading ``cifar-10-batches-py/`` with existence checks instead of md5 checks."""

    def _check_integrity(self) -> bool:
        names = [name for name, _ in self.train_list + self.test_list] + [self.meta["filename"]]
        return all(os.path.isfile(os.path.join(self.root, self.base_folder, name)) for name in names)

    def _load_meta(self) -> None:
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        with open(path, "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


class SVHNFiles(SVHN):
    """torchvision SVHN reading ``{split}_32x32.mat`` with an existence check instead of an md5 check."""

    def _check_integrity(self) -> bool:
        return os.path.isfile(os.path.join(self.root, self.filename))


class CelebAImages(Dataset):
    """Aligned CelebA faces: ``celeba/img_align_celeba/*.jpg`` split by ``celeba/list_eval_partition.txt``.

    Only the images and the partition file are needed (no attribute or landmark files, no md5 checks).
    Returns RGB PIL images.
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
        path = self.folder / "img_align_celeba" / self.files[index]
        with Image.open(path) as image:
            return image.convert("RGB")


def find_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive, sorted), by torchvision's image extensions."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


class ImageFiles(Dataset):
    """A list of image files read as PIL images in ``mode`` ("RGB" or "L")."""

    def __init__(self, files: Sequence[Path], mode: str = "RGB") -> None:
        self.files = list(files)
        self.mode = mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Image.Image:
        with Image.open(self.files[index]) as image:
            return image.convert(self.mode)

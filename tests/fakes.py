"""Writers of tiny data sets in the real on-disk formats (MNIST idx, CIFAR pickles, SVHN .mat, CelebA, PNG trees).

Tests and the config walk use them so that the real loading code runs without any download.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image

RNG = np.random.default_rng(0)


def _images(n: int, *shape: int) -> np.ndarray:
    x = RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[:, 0] = 0  # every image spans the full range [0, 255]
    x.reshape(n, -1)[:, 1] = 255
    return x


def scaled(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) / 255.0 * 2.0 - 1.0)


def write_mnist(root: Path, folder: str, n_train: int = 40, n_test: int = 10) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = _images(n, 28, 28)
        header = struct.pack(">IIII", 0x803, n, 28, 28)  # idx3 magic, then big-endian dims
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        labels = RNG.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
        out[prefix] = images
    return out


def write_cifar10(root: Path, per_batch: int = 8, n_test: int = 10) -> np.ndarray:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = _images(n, 3 * 32 * 32)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": RNG.integers(0, 10, n).tolist()}, f)
        if name == "test_batch":
            test = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return test.reshape(n_test, 3, 32, 32)


def write_svhn(root: Path, n_train: int = 30, n_test: int = 10) -> np.ndarray:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        hwcn = _images(n, 32, 32, 3).transpose(1, 2, 3, 0)  # SVHN stores X as (32, 32, 3, N)
        y = RNG.integers(1, 11, size=(n, 1), dtype=np.uint8)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": hwcn, "y": y})
        if split == "test":
            test = hwcn
    return test.transpose(3, 2, 0, 1)  # (N, C, H, W)


def write_celeba(root: Path, counts: tuple[int, int, int] = (6, 2, 2)) -> None:
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    lines = []
    k = 0
    for code, n in enumerate(counts):
        for _ in range(n):
            k += 1
            name = f"{k:06d}.jpg"
            Image.fromarray(_images(1, 218, 178, 3)[0]).save(images / name, quality=80)
            lines.append(f"{name} {code}")
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


def write_image_folder(root: Path, n_per_class: int = 6) -> None:
    for cls, size in (("cats", (40, 30)), ("dogs", (24, 24))):
        (root / cls).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(_images(1, size[1], size[0], 3)[0]).save(root / cls / f"{i}.png")
    (root / "notes.txt").write_text("not an image")


# ----- labelled fakes: each image carries its class in its pixels, so a test can check that the label a loader
# serves belongs to the image it serves (after any shuffling, splitting or horizontal flip).

LABEL_RNG = np.random.default_rng(1)  # separate from RNG: the unlabelled fakes above draw the same images as before
CLASS_PIXEL_COLUMN = 2  # row 0 of channel 0, columns 2 and W - 3 (mirror images under a horizontal flip)


def _labeled_images(labels: np.ndarray, channels: int, size: int) -> np.ndarray:
    """uint8 images ``(N, C, S, S)``, full range [0, 255], with pixel value ``10 k + 5`` at the class pixels."""
    x = LABEL_RNG.integers(0, 256, size=(len(labels), channels, size, size), dtype=np.uint8)
    x.reshape(len(labels), -1)[:, 0] = 0
    x.reshape(len(labels), -1)[:, 1] = 255
    for column in (CLASS_PIXEL_COLUMN, size - 1 - CLASS_PIXEL_COLUMN):
        x[:, 0, 0, column] = 10 * labels + 5
    return x


def decode_label(x: torch.Tensor) -> torch.Tensor:
    """The class written into a batch ``(B, C, S, S)`` in [-1, 1] at native size by the labelled writers."""
    value = (x[:, 0, 0, CLASS_PIXEL_COLUMN] + 1.0) / 2.0 * 255.0
    return torch.round((value - 5.0) / 10.0).long()


def _classes(n: int, num_classes: int = 10) -> np.ndarray:
    return LABEL_RNG.permutation(np.arange(n) % num_classes).astype(np.uint8)


def write_mnist_labeled(root: Path, folder: str, n_train: int = 40, n_test: int = 10,
                        labels: dict[str, np.ndarray] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST idx files whose images carry their label (:func:`decode_label`); ``labels`` overrides the labels
    written to the label files (e.g. out of range), keyed by "train" / "t10k"."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = _classes(n)
        images = _labeled_images(y, 1, 28)[:, 0]
        written = y if labels is None or prefix not in labels else labels[prefix].astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + written.tobytes())
        out[prefix] = (images, y)
    return out


def write_cifar10_labeled(root: Path, per_batch: int = 8, n_test: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 batches whose images carry their label; returns the test images ``(N, 3, 32, 32)`` and labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        y = _classes(n)
        data = _labeled_images(y, 3, 32)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data.reshape(n, -1), "labels": y.tolist()}, f)
        if name == "test_batch":
            test = (data, y)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return test


def write_svhn_labeled(root: Path, n_train: int = 30, n_test: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """SVHN ``.mat`` files whose images carry their digit; the files store the digit 0 as 10, as the real ones.
    Returns the test images ``(N, 3, 32, 32)`` and digits (0..9)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        digits = _classes(n)
        nchw = _labeled_images(digits, 3, 32)
        stored = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": nchw.transpose(2, 3, 1, 0), "y": stored})
        if split == "test":
            test = (nchw, digits)
    return test


def class_gray(k: int) -> int:
    """The grey level of every pixel of the class-``k`` images of :func:`write_image_folder_labeled`."""
    return 40 * k + 20


def decode_gray_class(x: torch.Tensor) -> torch.Tensor:
    """The class of each constant-grey image of a batch ``(B, C, S, S)`` in [-1, 1] (any size)."""
    value = (x.flatten(1).mean(1) + 1.0) / 2.0 * 255.0
    return torch.round((value - 20.0) / 40.0).long()


def write_image_folder_labeled(root: Path, classes: tuple[str, ...] = ("ants", "bees", "wasps"),
                               n_per_class: int = 4, all_classes: tuple[str, ...] | None = None) -> None:
    """One sub-folder per class of constant-grey PNGs (grey level :func:`class_gray` of the class's index in the
    sorted ``all_classes``, default ``classes``), one of them one folder deeper (``<class>/more/``), and a
    non-image file in ``root``."""
    index = {c: k for k, c in enumerate(sorted(all_classes or classes))}
    for cls in sorted(classes):
        k = index[cls]
        (root / cls / "more").mkdir(parents=True)
        for i in range(n_per_class):
            image = np.full((18, 22, 3), class_gray(k), dtype=np.uint8)
            where = root / cls / "more" if i == 0 else root / cls
            Image.fromarray(image).save(where / f"{i}.png")
    (root / "notes.txt").write_text("not an image")

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

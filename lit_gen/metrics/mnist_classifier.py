"""The MNIST classifier whose penultimate features define FD-MNIST, the offline Fréchet distance at 28×28.

FD-MNIST plays the role of FID (Heusel et al. 2017) on MNIST without Inception weights, as FD-digits does on
the 8×8 digits: a small CNN (two conv layers and an MLP, 0.42M parameters) trained, seeded, for three epochs on
the 60,000 training images (about 650 CPU-seconds on a shared 2-core machine), its held-out accuracy on the 10,000
test images stored with it (99.15% with seed 0; a warning below 99%).
The state dict is cached beside the data (``root/MNIST/lit_gen_classifier_v3_seed0.pt``) or in ``cache_dir``,
read back with ``torch.load(weights_only=True)`` and never downloaded.

Images are ``(N, 1, 28, 28)`` in [-1, 1], the range of :class:`lit_gen.data.MNISTDataModule`
(``(k / 255 − 0.5) / 0.5`` for bytes k); uint8 images (bytes 0..255, e.g. torchvision's ``MNIST.data``) and
``(N, 28, 28)`` or ``(N, 784)`` shapes are converted.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gen.metrics.frechet import FrechetDistance

__all__ = [
    "MNIST_FEATURES",
    "MNISTClassifier",
    "as_mnist_images",
    "fd_mnist_metric",
    "load_mnist_arrays",
    "load_mnist_classifier",
    "mnist_classifier_path",
    "train_mnist_classifier",
]

MNIST_FEATURES = 128
MIN_ACCURACY = 0.99
_VERSION = 3  # bump when the architecture or the training recipe changes, so stale caches are not reused
_SIDE = 28


def as_mnist_images(x: Tensor) -> Tensor:
    """``x`` as float32 ``(N, 1, 28, 28)`` in the data module's range [-1, 1].

    Accepts ``(N, 1, 28, 28)``, ``(N, 28, 28)`` or ``(N, 784)``; uint8 input is read as bytes k → k/127.5 − 1,
    floating input is taken to be in [-1, 1] already (not rescaled, not clipped).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"MNIST images must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 2 and x.shape[1] == _SIDE * _SIDE:
        x = x.reshape(-1, 1, _SIDE, _SIDE)
    elif x.dim() == 3 and x.shape[1:] == (_SIDE, _SIDE):
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1:] != (1, _SIDE, _SIDE) or x.shape[0] == 0:
        raise ValueError(
            f"MNIST images must be shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784) with N ≥ 1, got {tuple(x.shape)}; "
            "FD-MNIST applies to single-channel 28×28 images (resize other data or use another metric)"
        )
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 127.5 - 1.0
    if not torch.is_floating_point(x):
        raise TypeError(f"MNIST images must be uint8 bytes or floats in [-1, 1], got dtype {x.dtype}")
    return x.to(torch.float32)


class MNISTClassifier(nn.Module):
    """Two 3×3 conv layers (32, 64 channels, each followed by batch norm, ReLU and 2×2 max-pooling) and a 128-unit
    MLP (Ioffe & Szegedy 2015 for the batch norm, which lets three epochs reach 99%; in eval mode it is a fixed affine
    map, so features do not depend on the batch).

    ``features(x)`` gives the 128-d penultimate ReLU activations (the FD-MNIST features), ``forward(x)`` the
    10 class logits. Inputs as :func:`as_mnist_images` accepts; they are moved to the network's device.
    ``test_accuracy`` is the held-out accuracy stored with the weights (NaN when unknown).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, MNIST_FEATURES), nn.ReLU())
        self.head = nn.Linear(MNIST_FEATURES, 10)
        self.test_accuracy = float("nan")

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(N, 128)`` of MNIST images."""
        p = next(self.parameters())
        return self.hidden(self.conv(as_mnist_images(x).to(device=p.device, dtype=p.dtype)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 1000) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])


def _check_labels(images: Tensor, labels: Tensor, what: str) -> Tensor:
    if not isinstance(labels, Tensor) or labels.dim() != 1 or len(labels) != len(images):
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{what} labels must be a 1-d tensor with one label per image ({len(images)}), got {shape}")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{what} labels must be digits 0..9, found [{int(labels.min())}, {int(labels.max())}]")
    return labels


def train_mnist_classifier(
    images: Tensor,
    labels: Tensor,
    test_images: Tensor | None = None,
    test_labels: Tensor | None = None,
    *,
    seed: int = 0,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 2e-3,
) -> tuple[MNISTClassifier, float]:
    """Train :class:`MNISTClassifier` by cross-entropy with Adam, the learning rate decayed by a cosine to 0.

    Minibatches follow a permutation seeded by ``seed`` (as is the initialisation), so a CPU run is
    reproducible. Returns the model (eval mode, no gradients) and its accuracy on ``test_images`` (NaN when
    none are given; the value is also stored as ``model.test_accuracy``). Safe to call inside
    ``trainer.test``: it leaves inference mode and restores the global RNG state.
    """
    x = as_mnist_images(images)
    y = _check_labels(x, labels, "training")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive ints, got {epochs} and {batch_size}")
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        model = MNISTClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * -(-len(x) // batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * s / steps)))
        g = torch.Generator().manual_seed(seed + 1)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), batch_size):
                idx = perm[i : i + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    _freeze(model)
    accuracy = float("nan")
    if test_images is not None:
        if test_labels is None:
            raise ValueError("test_images were given without test_labels")
        xt = as_mnist_images(test_images)
        yt = _check_labels(xt, test_labels, "test")
        accuracy = float((_batched(model, xt).argmax(dim=1) == yt).float().mean())
    model.test_accuracy = accuracy
    return model, accuracy


def _freeze(model: MNISTClassifier) -> MNISTClassifier:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _raw_folder(root: str | os.PathLike[str]) -> Path:
    return Path(root).expanduser() / "MNIST" / "raw"


def load_mnist_arrays(root: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The MNIST IDX files under ``root/MNIST/raw`` as tensors: ``x_train``, ``x_test`` uint8 ``(n, 28, 28)``,
    ``y_train``, ``y_test`` int64 ``(n,)`` (read with torchvision's reader, as :class:`MNISTDataModule` does)."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = _raw_folder(root)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        files = (raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte")
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"MNIST files missing: {', '.join(missing)}; write them with "
                f"`python -m lit_gen.data.mnist_prepare --root {root}` (or point root at the folder holding MNIST/)"
            )
        out[f"x_{split}"] = read_image_file(str(files[0]))
        out[f"y_{split}"] = read_label_file(str(files[1])).long()
    return out


def _fingerprint(root: str | os.PathLike[str]) -> str:
    """sha256 of the training files, so a cache trained on other data is not reused."""
    digest = hashlib.sha256()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        digest.update((_raw_folder(root) / name).read_bytes())
    return digest.hexdigest()


def mnist_classifier_path(
    root: str | os.PathLike[str] = "data", cache_dir: str | os.PathLike[str] | None = None, seed: int = 0
) -> Path:
    """Where the classifier is cached: ``<cache_dir or root/MNIST>/lit_gen_classifier_v3_seed<seed>.pt``."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else Path(root).expanduser() / "MNIST"
    return folder / f"lit_gen_classifier_v{_VERSION}_seed{seed}.pt"


def load_mnist_classifier(
    root: str | os.PathLike[str] = "data",
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    train_if_missing: bool = True,
    log: Callable[[str], None] | None = None,
    **train_kwargs: Any,
) -> MNISTClassifier:
    """The cached classifier for the MNIST files under ``root``, trained on them and saved if missing or stale.

    The cache (:func:`mnist_classifier_path`) holds the state dict, the held-out test accuracy, the seed, the
    training time and a sha256 of the training files; a cache of other training files (or another recipe
    version) is retrained. Warns when the stored accuracy is below 99%. Never downloads anything.
    ``train_kwargs`` go to :func:`train_mnist_classifier` (epochs, batch_size, lr).
    """
    say = log or (lambda _msg: None)
    path = mnist_classifier_path(root, cache_dir, seed)
    fingerprint = _fingerprint(root) if (_raw_folder(root) / "train-labels-idx1-ubyte").is_file() else None
    model = MNISTClassifier()
    state = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    usable = state is not None and state.get("version") == _VERSION and fingerprint in (None, state.get("data_sha256"))
    if usable:
        model.load_state_dict(state["state_dict"])
        model.test_accuracy = float(state["accuracy"])
        _freeze(model)
        say(f"loaded {path} (test accuracy {model.test_accuracy:.4f})")
    elif not train_if_missing:
        raise FileNotFoundError(
            f"no up-to-date MNIST classifier at {path}; call load_mnist_classifier(root, train_if_missing=True) "
            "(a minute or two on CPU)"
        )
    else:
        data = load_mnist_arrays(root)
        say(f"training the MNIST classifier on {len(data['x_train'])} images (seed {seed})")
        start = time.perf_counter()
        model, accuracy = train_mnist_classifier(data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                                                 seed=seed, **train_kwargs)
        seconds = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        torch.save({"state_dict": model.state_dict(), "accuracy": accuracy, "seed": seed, "version": _VERSION,
                    "train_seconds": seconds, "n_train": len(data["x_train"]), "n_test": len(data["x_test"]),
                    "data_sha256": fingerprint}, tmp)
        tmp.replace(path)  # atomic: parallel processes never read a half-written file
        say(f"saved {path}: test accuracy {accuracy:.4f} after {seconds:.0f} s")
    if not model.test_accuracy >= MIN_ACCURACY:
        warnings.warn(
            f"the MNIST classifier at {path} has held-out accuracy {model.test_accuracy:.4f} < {MIN_ACCURACY}; "
            "FD-MNIST from it is less reliable (delete the file to retrain, or train longer: epochs=...)",
            stacklevel=2,
        )
    return model


def fd_mnist_metric(classifier: MNISTClassifier, **kwargs: Any) -> FrechetDistance:
    """An accumulating :class:`FrechetDistance` on the classifier's 128-d penultimate features (FD-MNIST)."""
    return FrechetDistance(classifier.features, num_features=MNIST_FEATURES, **kwargs)

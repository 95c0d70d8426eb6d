"""The small digit classifier whose penultimate features define FD-digits, the offline Fréchet distance.

FD-digits plays the role of FID (Heusel et al. 2017) where Inception weights are not available: a CNN trained
in seconds on CPU on the sklearn 8×8 digits bundled with scikit-learn (labels 0–9), seeded, cached on disk and
never downloaded. Its 64-d penultimate activations feed :class:`lit_gen.metrics.FrechetDistance`;
the floor is the same distance between held-out and training digits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gen.metrics.frechet import FrechetDistance

FEATURES = 64
_VERSION = 1  # bump when the architecture or the training recipe changes, so stale caches are not reused


class DigitsClassifier(nn.Module):
    """A two-conv CNN for ``(N, 1, S, S)`` digits in [-1, 1]; inputs are average-pooled to 8×8 first.

    ``features(x)`` returns the 64-d penultimate ReLU activations; ``forward(x)`` the 10 class logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(N, 64)`` of digit images ``(N, 1, S, S)`` (any S; pooled to 8×8)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(
                f"the digits classifier takes single-channel images (N, 1, S, S) in [-1, 1], got {tuple(x.shape)}; "
                "FD-digits only applies to digit-like grey images (use inception_fid for RGB data)"
            )
        x = x.to(next(self.parameters()).dtype)
        if x.shape[-2:] != (8, 8):
            x = F.adaptive_avg_pool2d(x, 8)
        return self.hidden(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def default_cache_dir() -> Path:
    """``$LIT_GEN_CACHE`` if set, else ``~/.cache/lit_gen``."""
    return Path(os.environ.get("LIT_GEN_CACHE", Path.home() / ".cache" / "lit_gen"))


def labelled_digits(seed: int = 0, test_fraction: float = 0.2) -> dict[str, Tensor]:
    """The 1797 sklearn digits in [-1, 1] with labels, split by ``seed``: keys x_train, y_train, x_test, y_test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (torch.from_numpy(data.images).to(torch.float32) / 16.0 * 2.0 - 1.0).unsqueeze(1)
    y = torch.from_numpy(data.target).long()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def train_digits_classifier(seed: int = 0, epochs: int = 15, batch_size: int = 64) -> tuple[DigitsClassifier, float]:
    """Train :class:`DigitsClassifier` with Adam (lr 1e-3) and cross-entropy on 80% of the digits.

    Deterministic for a given ``seed`` on CPU; takes a few seconds on one core. Returns the model (eval mode)
    and its accuracy on the held-out 20%. Safe to call inside ``trainer.test`` (it leaves inference mode and
    restores the global RNG state, so the caller's sampling is unchanged).
    """
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        return _train(seed, epochs, batch_size)


def _train(seed: int, epochs: int, batch_size: int) -> tuple[DigitsClassifier, float]:
    torch.manual_seed(seed)
    data = labelled_digits(seed)
    model = DigitsClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed + 1)
    x, y = data["x_train"], data["y_train"]
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(data["x_test"]).argmax(dim=1) == data["y_test"]).float().mean())
    return model, accuracy


def load_digits_classifier(
    cache_dir: str | os.PathLike[str] | None = None, seed: int = 0, train_if_missing: bool = True
) -> DigitsClassifier:
    """The cached classifier (``<cache_dir>/digits_classifier_v1_seed<seed>.pt``), trained and saved if missing.

    ``cache_dir`` defaults to :func:`default_cache_dir`. The weights are never downloaded.
    """
    path = Path(cache_dir or default_cache_dir()) / f"digits_classifier_v{_VERSION}_seed{seed}.pt"
    model = DigitsClassifier()
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
    elif train_if_missing:
        model, accuracy = train_digits_classifier(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"state_dict": model.state_dict(), "accuracy": accuracy, "seed": seed}, tmp)
        tmp.replace(path)  # atomic, so parallel test workers never read a half-written file
    else:
        raise FileNotFoundError(
            f"no digits classifier at {path}; run `python scripts/train_digits_classifier.py` (seconds on CPU) "
            "or call load_digits_classifier(train_if_missing=True)"
        )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fd_digits_metric(cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> FrechetDistance:
    """A :class:`FrechetDistance` on the penultimate features of the cached digits classifier (FD-digits)."""
    return FrechetDistance(load_digits_classifier(cache_dir).features, num_features=FEATURES, **kwargs)

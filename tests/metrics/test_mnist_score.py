"""FD-MNIST and the MNIST sample report, on a classifier trained in seconds on synthetic separable 28×28 digits."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_gen.metrics import (
    MNIST_FEATURES,
    MNISTClassifier,
    as_mnist_images,
    class_histogram_report,
    fd_mnist_metric,
    load_mnist_arrays,
    load_mnist_classifier,
    mnist_classifier_path,
    mnist_sample_report,
    train_mnist_classifier,
)


def synthetic_digits(n: int, seed: int, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c: a bright 3-pixel-wide vertical bar at column 2 + 2.5c on a dark background, plus noise; in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.full((n, 1, 28, 28), -0.8)
    for i, c in enumerate(y.tolist()):
        col = 2 + int(2.5 * c)
        x[i, 0, 4:24, col : col + 3] = 0.8
    x = (x + 0.15 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return x, y


@pytest.fixture(scope="module")
def classifier() -> MNISTClassifier:
    x, y = synthetic_digits(300, seed=0)
    xt, yt = synthetic_digits(100, seed=1)
    model, accuracy = train_mnist_classifier(x, y, xt, yt, seed=0, epochs=3, batch_size=32)
    assert accuracy >= 0.95
    return model


def test_training_is_seeded_and_leaves_the_callers_rng_and_inference_mode(classifier: MNISTClassifier) -> None:
    x, y = synthetic_digits(64, seed=2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with torch.inference_mode():  # as inside trainer.test
        a, _ = train_mnist_classifier(x, y, seed=5, epochs=1, batch_size=32)
    assert torch.equal(torch.rand(3), expected)
    b, acc = train_mnist_classifier(x, y, seed=5, epochs=1, batch_size=32)
    assert math.isnan(acc) and math.isnan(b.test_accuracy)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    assert classifier.features(x).shape == (64, MNIST_FEATURES) and classifier(x).shape == (64, 10)


def test_input_conventions() -> None:
    k = torch.tensor([0, 255, 51], dtype=torch.uint8).repeat(1, 262)[:, :784]
    x = as_mnist_images(k)
    assert x.shape == (1, 1, 28, 28) and x.min() == -1.0 and x.max() == 1.0
    assert as_mnist_images(torch.zeros(2, 28, 28)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"single-channel 28×28"):
        as_mnist_images(torch.zeros(2, 3, 32, 32))
    with pytest.raises(TypeError, match="uint8 bytes or floats"):
        as_mnist_images(torch.zeros(2, 784, dtype=torch.int32))


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_a_shift(classifier: MNISTClassifier) -> None:
    x, _ = synthetic_digits(120, seed=3)
    same = mnist_sample_report(x, x, None, classifier)
    assert abs(same["fd_mnist"]) < 1e-6 * (1 + float(classifier.features(x).var(0).sum()))
    assert "fd_mnist_floor" not in same
    fds = [mnist_sample_report(x + s, x, None, classifier, clip=False)["fd_mnist"] for s in (0.1, 0.3, 0.6)]
    assert 0 < fds[0] < fds[1] < fds[2]


def test_floor_uses_training_images_at_the_sample_count(classifier: MNISTClassifier) -> None:
    test, _ = synthetic_digits(200, seed=4)
    train, _ = synthetic_digits(400, seed=5)
    noise = torch.rand(100, 1, 28, 28) * 2 - 1
    report = mnist_sample_report(noise, test, train, classifier, seed=0)
    assert report["mnist_n"] == 100
    assert 0 <= report["fd_mnist_floor"] < report["fd_mnist"]
    assert report["mnist_confidence_data"] > 0.9 and report["mnist_class_tv_data"] < 0.2
    assert report == mnist_sample_report(noise, test, train, classifier, seed=0)  # seeded subset
    metric = fd_mnist_metric(classifier)  # the accumulating metric agrees
    for i in range(0, 100, 50):
        metric.update(noise[i : i + 50], real=False)
    metric.update(test, real=True)
    assert float(metric.compute()) == pytest.approx(report["fd_mnist"], rel=1e-6)
    assert all(isinstance(v, float) for v in report.values())


def test_histogram_coverage_and_confidence_on_constructed_inputs(classifier: MNISTClassifier) -> None:
    x, y = synthetic_digits(200, seed=6)
    all_classes = mnist_sample_report(x, x, None, classifier)
    assert all_classes["mnist_classes_covered"] == 10
    assert all_classes["mnist_class_tv"] < 0.05 and all_classes["mnist_confidence"] > 0.9
    twos = x[y == 2]
    collapsed = mnist_sample_report(twos, x, None, classifier)
    assert collapsed["mnist_classes_covered"] == 1 and collapsed["mnist_class_share_2"] == 1.0
    assert collapsed["mnist_class_tv"] == pytest.approx(0.9)
    assert collapsed["mnist_class_kl"] == pytest.approx(math.log(10))
    assert collapsed["mnist_classifier_accuracy"] >= 0.95

    probs = torch.zeros(10, 10)
    probs[:6, 0] = 1.0  # six confident predictions of class 0
    for row, c in zip(range(6, 10), range(1, 5), strict=True):  # one each of classes 1..4 at probability 0.55
        probs[row] = 0.45 / 9
        probs[row, c] = 0.55
    half = class_histogram_report(probs, min_share=0.15)
    assert half["mnist_classes_covered"] == 1  # shares 0.6, 0.1, 0.1, 0.1, 0.1: only class 0 holds ≥ 0.15
    assert half["mnist_class_tv"] == pytest.approx(0.5 * (0.5 + 5 * 0.1))
    p = np.array([0.6, 0.1, 0.1, 0.1, 0.1])
    assert half["mnist_class_kl"] == pytest.approx(math.log(10) + float((p * np.log(p)).sum()))
    assert half["mnist_confidence"] == pytest.approx((6 * 1.0 + 4 * 0.55) / 10)


def test_too_few_or_non_finite_samples_are_refused(classifier: MNISTClassifier) -> None:
    x, _ = synthetic_digits(20, seed=7)
    with pytest.raises(ValueError, match="at least 2 samples"):
        mnist_sample_report(x[:1], x, None, classifier)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        mnist_sample_report(bad, x, None, classifier, clip=False)


def _write_idx(root: Path, n_train: int = 200, n_test: int = 50) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 10), ("t10k", n_test, 11)):
        x, y = synthetic_digits(n, seed)
        k = ((x[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + k.tobytes())
        labels = y.numpy().astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def test_cache_round_trip_with_weights_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_idx(tmp_path)
    data = load_mnist_arrays(tmp_path)
    assert data["x_train"].shape == (200, 28, 28) and data["x_train"].dtype == torch.uint8
    with pytest.raises(FileNotFoundError, match="no up-to-date MNIST classifier"):
        load_mnist_classifier(tmp_path, train_if_missing=False)
    trained = load_mnist_classifier(tmp_path, log=print, epochs=2, batch_size=32)
    path = mnist_classifier_path(tmp_path)
    assert path == tmp_path / "MNIST" / "lit_gen_classifier_v3_seed0.pt" and "saved" in capsys.readouterr().out
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert stored["accuracy"] == trained.test_accuracy >= 0.99 and stored["n_train"] == 200
    loaded = load_mnist_classifier(tmp_path, train_if_missing=False, log=print)
    assert "loaded" in capsys.readouterr().out and loaded.test_accuracy == trained.test_accuracy
    for p, q in zip(trained.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    x = as_mnist_images(data["x_test"][:8])
    assert torch.equal(trained.features(x), loaded.features(x))
    # a cache_dir elsewhere; and other training files make the cache stale
    elsewhere = load_mnist_classifier(tmp_path, cache_dir=tmp_path / "cache", epochs=2, batch_size=32)
    assert (tmp_path / "cache" / path.name).is_file() and elsewhere.test_accuracy >= 0.99
    _write_idx(tmp_path, n_train=150)
    with pytest.raises(FileNotFoundError, match="no up-to-date"):
        load_mnist_classifier(tmp_path, train_if_missing=False)


def test_low_accuracy_warns_and_missing_data_names_the_preparation_command(tmp_path: Path) -> None:
    _write_idx(tmp_path, n_train=40, n_test=40)
    raw = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw.write_bytes(raw.read_bytes()[:8] + bytes((np.arange(40) * 7 % 10).astype(np.uint8)))  # scrambled labels
    with pytest.warns(UserWarning, match="held-out accuracy"):
        load_mnist_classifier(tmp_path, epochs=1, batch_size=32)
    with pytest.raises(FileNotFoundError, match="python -m lit_gen.data.mnist_prepare --root"):
        load_mnist_arrays(tmp_path / "nowhere")

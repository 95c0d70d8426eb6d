"""The MNIST sample report: FD-MNIST next to its floor, class histogram (mode coverage) and classifier confidence.

With φ the 128-d penultimate features of :class:`lit_gen.metrics.MNISTClassifier`,

    FD-MNIST = ‖μ_s − μ_t‖² + tr(Σ_s) + tr(Σ_t) − 2 tr((Σ_s^{1/2} Σ_t Σ_s^{1/2})^{1/2})

between the Gaussian fits of φ(samples) and φ(test images) (the Fréchet distance of FID, Heusel et al. 2017,
with an MNIST classifier in place of Inception). FD is biased upwards at small sample counts, so the report
gives the floor FD(n training images, test images) at the same count n: a model matching the data scores
about the floor, not 0.

The classifier's predictions on the samples give the class histogram p (mode coverage: classes holding at
least ``min_share`` of the samples), its distance to uniform, TV(p, u) = ½ Σ_k |p_k − 1/10| and
KL(p ‖ u) = log 10 − H(p), and the mean confidence E[max_k softmax_k] (blurry or ambiguous digits score low).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_gen.metrics.frechet import FrechetDistance
from lit_gen.metrics.mnist_classifier import MNIST_FEATURES, MNISTClassifier, as_mnist_images

__all__ = ["class_histogram_report", "mnist_sample_report"]


def _features_and_probs(classifier: MNISTClassifier, x: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    feats, probs = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            f = classifier.features(x[i : i + batch_size])
            feats.append(f.to(torch.float64).cpu())
            probs.append(torch.softmax(classifier.head(f).to(torch.float64), dim=1).cpu())
    return torch.cat(feats), torch.cat(probs)


def _fd(a: Tensor, b: Tensor) -> float:
    metric = FrechetDistance(None, MNIST_FEATURES)
    metric.update(a, real=False)
    metric.update(b, real=True)
    return float(metric.compute())


def class_histogram_report(probs: Tensor, min_share: float = 0.05, prefix: str = "mnist_") -> dict[str, float]:
    """Mode coverage and confidence from class probabilities ``(n, K)`` (rows summing to 1).

    Keys: ``classes_covered`` (classes whose share of the argmax predictions is ≥ ``min_share``),
    ``class_tv`` = ½ Σ_k |p_k − 1/K|, ``class_kl`` = KL(p ‖ uniform) = log K − H(p) in nats, ``confidence``
    (mean of the largest probability), each with ``prefix``; and ``class_share_<k>`` for every class k.
    """
    if probs.dim() != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must be (n, K) class probabilities with n ≥ 1, got {tuple(probs.shape)}")
    n, k = probs.shape
    share = torch.bincount(probs.argmax(dim=1), minlength=k).to(torch.float64) / n
    nonzero = share[share > 0]
    out = {
        f"{prefix}classes_covered": float((share >= min_share).sum()),
        f"{prefix}class_tv": float(0.5 * (share - 1.0 / k).abs().sum()),
        f"{prefix}class_kl": float(math.log(k) + (nonzero * nonzero.log()).sum()),
        f"{prefix}confidence": float(probs.max(dim=1).values.mean()),
    }
    out.update({f"{prefix}class_share_{c}": float(share[c]) for c in range(k)})
    return out


def mnist_sample_report(
    samples: Tensor,
    test_images: Tensor,
    train_images: Tensor | None,
    classifier: MNISTClassifier,
    *,
    min_share: float = 0.05,
    clip: bool = True,
    seed: int = 0,
    batch_size: int = 500,
) -> dict[str, float]:
    """FD-MNIST of ``samples`` against ``test_images``, its floor, and the samples' class histogram and confidence.

    Args:
        samples: generated images ``(n, 1, 28, 28)`` (or ``(n, 28, 28)``, ``(n, 784)``) in the data module's
            range [-1, 1]; uint8 bytes are converted. ``n ≥ 2``.
        test_images: the reference set (e.g. all 10,000 test images), same conventions.
        train_images: images the floor draws ``n`` of (a seeded random subset; at most all of them), or None
            for no floor.
        classifier: from :func:`lit_gen.metrics.load_mnist_classifier`.
        min_share: a class counts as covered when at least this share of the samples is predicted as it
            (default 0.05, half the uniform share).
        clip: clip float samples to [-1, 1] first, as saving them as 8-bit pictures would.
        seed: seeds the training subset of the floor.
        batch_size: images per classifier call.

    Returns:
        ``fd_mnist``, ``fd_mnist_floor`` (with training images), ``mnist_classes_covered``, ``mnist_class_tv``,
        ``mnist_class_kl``, ``mnist_confidence``, ``mnist_class_share_<k>``, ``mnist_n`` (sample count),
        ``mnist_classifier_accuracy`` (its stored held-out accuracy, when known) and, for the training subset,
        ``mnist_class_tv_data`` and ``mnist_confidence_data`` (what real digits score).
    """
    x = as_mnist_images(samples)
    if len(x) < 2:
        raise ValueError(f"FD-MNIST needs at least 2 samples, got {len(x)}")
    if clip:
        x = x.clamp(-1.0, 1.0)
    if not torch.isfinite(x).all():
        raise ValueError("the samples hold NaN or inf values; FD-MNIST needs finite images")
    test = as_mnist_images(test_images)
    f_s, p_s = _features_and_probs(classifier, x, batch_size)
    f_t, _ = _features_and_probs(classifier, test, batch_size)
    report = {"fd_mnist": _fd(f_s, f_t), "mnist_n": float(len(x))}
    report.update(class_histogram_report(p_s, min_share))
    if train_images is not None:
        train = as_mnist_images(train_images)
        g = torch.Generator().manual_seed(seed)
        subset = train[torch.randperm(len(train), generator=g)[: len(x)]]
        f_r, p_r = _features_and_probs(classifier, subset, batch_size)
        report["fd_mnist_floor"] = _fd(f_r, f_t)
        data = class_histogram_report(p_r, min_share)
        report["mnist_class_tv_data"] = data["mnist_class_tv"]
        report["mnist_confidence_data"] = data["mnist_confidence"]
    accuracy = getattr(classifier, "test_accuracy", float("nan"))
    if math.isfinite(accuracy):
        report["mnist_classifier_accuracy"] = float(accuracy)
    return report

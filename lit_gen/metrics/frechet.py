"""Fréchet distance between Gaussian fits of feature sets (Dowson & Landau 1982; FID: Heusel et al. 2017).

Any feature extractor can be plugged into :class:`FrechetDistance`; :func:`inception_fid`, :func:`inception_kid`
and :func:`inception_score` build torchmetrics' FID, KID and IS only from Inception weights already on disk
(nothing downloads at run time).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lit_gen.metrics._checks import as_sample_matrix

FeatureExtractor = Callable[[Tensor], Tensor]
"""Maps a batch ``(N, *data_shape)`` to features ``(N, d)`` (e.g. a classifier's penultimate layer)."""

# The file name torchmetrics/torch-fidelity look for in torch hub's checkpoint directory.
INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        FD = ‖mu1 − mu2‖² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})

    (Dowson & Landau 1982). The last trace equals tr((Σ1 Σ2)^{1/2}) of the FID paper (Heusel et al. 2017); it is
    computed from the eigenvalues of the symmetric PSD matrix Σ1^{1/2} Σ2 Σ1^{1/2} in float64, so no complex
    matrix square root is needed. Eigenvalues that rounding makes slightly negative (≥ −1e-8·scale) count as 0.
    Returns a 0-d float64 tensor.
    """
    mu1, mu2 = mu1.to(torch.float64).flatten(), mu2.to(torch.float64).flatten()
    s1, s2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    d = mu1.numel()
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ValueError(f"{name} must be a ({d}, {d}) covariance matrix for a {d}-dim mean, got {tuple(s.shape)}")
    if mu2.numel() != d:
        raise ValueError(f"mu1 and mu2 have different dimensions ({d} vs {mu2.numel()})")
    if not all(torch.isfinite(t).all() for t in (mu1, mu2, s1, s2)):
        raise ValueError("frechet_distance got non-finite means or covariances; check the features for NaN/inf")
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
    evals1, evecs1 = torch.linalg.eigh(s1)
    root1 = (evecs1 * evals1.clamp_min(0.0).sqrt()) @ evecs1.T
    middle = root1 @ s2 @ root1
    evals = torch.linalg.eigvalsh(0.5 * (middle + middle.T))
    trace_sqrt = evals.clamp_min(0.0).sqrt().sum()
    return (mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2.0 * trace_sqrt


def mean_and_covariance(features: Tensor) -> tuple[Tensor, Tensor]:
    """Sample mean and unbiased covariance (divisor n − 1) of ``features`` ``(n, d)``, in float64."""
    f = as_sample_matrix(features, "features").to(torch.float64)
    if f.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {f.shape[0]}")
    mu = f.mean(dim=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def frechet_distance_of_features(a: Tensor, b: Tensor) -> Tensor:
    """:func:`frechet_distance` between the Gaussian fits of two feature sets ``(n, d)`` and ``(m, d)``."""
    return frechet_distance(*mean_and_covariance(a), *mean_and_covariance(b))


class FrechetDistance(Metric):
    """Accumulating Fréchet distance between the features of generated ``fake`` and data ``real`` samples.

    ``update(x, real=True|False)`` runs ``feature_extractor`` (no gradients) and adds the features to running
    sums (n, Σf, Σffᵀ in float64, summed across processes under DDP); ``compute()`` forms the means and unbiased
    covariances and returns :func:`frechet_distance`. With ``feature_extractor=None`` the inputs are used as
    features directly (flattened).

    Args:
        feature_extractor: a module or function mapping ``(N, *data_shape)`` to ``(N, d)``.
        num_features: d, the size of the feature vectors.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    real_n: Tensor
    real_sum: Tensor
    real_outer: Tensor
    fake_n: Tensor
    fake_sum: Tensor
    fake_outer: Tensor

    def __init__(self, feature_extractor: FeatureExtractor | None, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if feature_extractor is not None and not callable(feature_extractor):
            raise TypeError(f"feature_extractor must be callable or None, got {type(feature_extractor).__name__}")
        self.feature_extractor = feature_extractor
        self.num_features = num_features
        d = num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_n", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_sum", default=torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", default=torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")

    def features(self, x: Tensor) -> Tensor:
        """Features ``(N, d)`` of a batch, checked for shape."""
        with torch.no_grad():
            f = x if self.feature_extractor is None else self.feature_extractor(x)
        f = as_sample_matrix(f, "features").to(torch.float64)
        if f.shape[1] != self.num_features:
            raise ValueError(
                f"the feature extractor returned {f.shape[1]} features per sample, but the metric was built with "
                f"num_features={self.num_features}; pass the extractor's output size"
            )
        return f

    def update(self, x: Tensor, real: bool) -> None:
        f = self.features(x)
        side = "real" if real else "fake"
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + f.shape[0])
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(dim=0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)

    def _moments(self, side: str) -> tuple[Tensor, Tensor]:
        n = getattr(self, f"{side}_n")
        if n < 2:
            raise ValueError(f"FrechetDistance needs at least 2 {side} samples before compute(), got {int(n)}")
        mu = getattr(self, f"{side}_sum") / n
        cov = (getattr(self, f"{side}_outer") - n * torch.outer(mu, mu)) / (n - 1)
        return mu, cov

    def compute(self) -> Tensor:
        return frechet_distance(*self._moments("real"), *self._moments("fake"))


def _inception_weights(weights_path: str | os.PathLike[str] | None, what: str) -> Path:
    """The Inception weights file on disk for ``what`` (FID, KID, IS), or an error that says how to provide it."""
    try:
        import torch_fidelity  # noqa: F401
    except ImportError as err:
        raise ModuleNotFoundError(
            f"Inception {what} needs torch-fidelity: `pip install torch-fidelity` (or `torchmetrics[image]`). "
            "Offline, use FD-digits instead (lit_gen.metrics.fd_digits_metric)."
        ) from err
    path = Path(weights_path) if weights_path is not None else (
        Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception {what} weights not found at {path}. lit_gen never downloads at run time: on a machine "
            f"with internet access download {INCEPTION_WEIGHTS_FILE} from the torch-fidelity releases "
            "(https://github.com/toshas/torch-fidelity/releases) and put it at that path or pass "
            "weights_path=...; offline, use FD-digits (lit_gen.metrics.fd_digits_metric)."
        )
    return path


def _inception(path: Path, features: str) -> torch.nn.Module:
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=[features],
                              feature_extractor_weights_path=str(path))


def inception_fid(weights_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Metric:
    """torchmetrics' ``FrechetInceptionDistance`` (2048-d pool features) built from Inception weights on disk.

    ``weights_path`` defaults to ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`` (where
    torch-fidelity caches them). Nothing is downloaded: when the weights or torch-fidelity are missing the error
    says how to provide them; the offline alternative is :func:`lit_gen.metrics.fd_digits_metric`.
    """
    path = _inception_weights(weights_path, "FID")
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature_extractor_weights_path=str(path), **kwargs)


def inception_kid(weights_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Metric:
    """torchmetrics' ``KernelInceptionDistance`` (Bińkowski et al. 2018) on the same on-disk Inception weights.

    KID = MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ on 2048-d pool features, averaged over
    random subsets (unbiased, so small sample sizes are fair). ``kwargs`` go to torchmetrics (``subsets``,
    ``subset_size``, ...). Weights and errors as :func:`inception_fid`.
    """
    path = _inception_weights(weights_path, "KID")
    from torchmetrics.image.kid import KernelInceptionDistance

    return KernelInceptionDistance(feature=_inception(path, "2048"), **kwargs)


def inception_score(weights_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Metric:
    """torchmetrics' ``InceptionScore`` (Salimans et al. 2016) on the same on-disk Inception weights.

    IS = exp(E_x KL(p(y | x) ‖ p(y))) over the Inception classifier's 1008 logits (unbiased head); higher is
    better. ``kwargs`` go to torchmetrics (``splits``, ...). Weights and errors as :func:`inception_fid`.
    """
    path = _inception_weights(weights_path, "IS")
    from torchmetrics.image.inception import InceptionScore

    return InceptionScore(feature=_inception(path, "logits_unbiased"), **kwargs)

"""Sample-quality, likelihood and OOD metrics: sliced Wasserstein, MMD, grid NLL for 2-D energies, Fréchet, AUROC."""

from lit_gen.metrics.digits_classifier import DigitsClassifier, fd_digits_metric, load_digits_classifier
from lit_gen.metrics.frechet import (
    FrechetDistance,
    frechet_distance,
    frechet_distance_of_features,
    inception_fid,
    inception_kid,
    inception_score,
)
from lit_gen.metrics.grid_nll import energy_grid, grid_log_partition, grid_nll
from lit_gen.metrics.mmd import MaximumMeanDiscrepancy, mmd2_unbiased
from lit_gen.metrics.mnist_classifier import (
    MNIST_FEATURES,
    MNISTClassifier,
    as_mnist_images,
    fd_mnist_metric,
    load_mnist_arrays,
    load_mnist_classifier,
    mnist_classifier_path,
    train_mnist_classifier,
)
from lit_gen.metrics.mnist_score import class_histogram_report, mnist_sample_report
from lit_gen.metrics.mode_peaks import ModePeakReport, mode_peak_report
from lit_gen.metrics.ood import image_ood_sets, ood_auroc, ood_report
from lit_gen.metrics.sliced_wasserstein import (
    SlicedWassersteinDistance,
    projection_chunk_size,
    random_directions,
    sliced_wasserstein,
)

__all__ = [
    "DigitsClassifier",
    "FrechetDistance",
    "fd_digits_metric",
    "frechet_distance",
    "frechet_distance_of_features",
    "inception_fid",
    "inception_kid",
    "inception_score",
    "load_digits_classifier",
    "MaximumMeanDiscrepancy",
    "MNIST_FEATURES",
    "MNISTClassifier",
    "as_mnist_images",
    "class_histogram_report",
    "fd_mnist_metric",
    "load_mnist_arrays",
    "load_mnist_classifier",
    "mnist_classifier_path",
    "mnist_sample_report",
    "train_mnist_classifier",
    "ModePeakReport",
    "SlicedWassersteinDistance",
    "energy_grid",
    "grid_log_partition",
    "grid_nll",
    "image_ood_sets",
    "mmd2_unbiased",
    "mode_peak_report",
    "ood_auroc",
    "ood_report",
    "projection_chunk_size",
    "random_directions",
    "sliced_wasserstein",
]

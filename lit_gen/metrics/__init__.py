"""Sample-quality and likelihood metrics: sliced Wasserstein, MMD, grid NLL for 2-D energies."""

from lit_gen.metrics.grid_nll import energy_grid, grid_log_partition, grid_nll
from lit_gen.metrics.mmd import MaximumMeanDiscrepancy, mmd2_unbiased
from lit_gen.metrics.sliced_wasserstein import (
    SlicedWassersteinDistance,
    random_directions,
    sliced_wasserstein,
)

__all__ = [
    "MaximumMeanDiscrepancy",
    "SlicedWassersteinDistance",
    "energy_grid",
    "grid_log_partition",
    "grid_nll",
    "mmd2_unbiased",
    "random_directions",
    "sliced_wasserstein",
]

"""LightningDataModules: 2D toys, user arrays, sklearn digits and torchvision image sets.

Every datamodule yields plain float32 batches ``(B, *data_shape)`` without labels, knows
``data_shape`` right after construction and gives ``bounds()`` for MCMC initialisation.
Nothing is downloaded unless a module is built with ``download=True``.
"""

from lit_gen.data.array import ArrayDataModule, load_array
from lit_gen.data.base import (
    GenerativeDataModule,
    IndexBatchSampler,
    InMemoryDataModule,
    ResumableTrainOrder,
    TensorIndexDataset,
    identity_collate,
    random_split_tensor,
)
from lit_gen.data.digits import DigitsDataModule, load_digits_tensor
from lit_gen.data.mixture import GaussianMixture
from lit_gen.data.toy2d import TOY_DATASETS, Toy2DDataModule, sample_toy2d, toy_log_prob, toy_mixture
from lit_gen.data.vision import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    SVHNDataModule,
    VisionDataModule,
)

__all__ = [
    "TOY_DATASETS",
    "ArrayDataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "GaussianMixture",
    "GenerativeDataModule",
    "ImageFolderDataModule",
    "IndexBatchSampler",
    "InMemoryDataModule",
    "MNISTDataModule",
    "ResumableTrainOrder",
    "SVHNDataModule",
    "TensorIndexDataset",
    "Toy2DDataModule",
    "VisionDataModule",
    "identity_collate",
    "load_array",
    "load_digits_tensor",
    "random_split_tensor",
    "sample_toy2d",
    "toy_log_prob",
    "toy_mixture",
]

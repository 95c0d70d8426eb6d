"""LightningDataModules: 2D toys, user arrays, sklearn digits and torchvision image sets.

Every datamodule yields plain float32 batches ``(B, *data_shape)`` without labels, knows
``data_shape`` right after construction and gives ``bounds()`` for MCMC initialisation. Those with class
labels take ``conditional=True`` and then yield ``(x, y)`` batches (``y``: ``torch.long`` ``(B,)``) and know
``num_classes`` right after construction too (``None`` when not conditional).
Nothing is downloaded unless a module is built with ``download=True``.
"""

from lit_gen.data.array import ArrayDataModule, load_array
from lit_gen.data.base import (
    GenerativeDataModule,
    IndexBatchSampler,
    InMemoryDataModule,
    ResumableDataLoader,
    ResumableTrainOrder,
    TensorIndexDataset,
    identity_collate,
    labeled_collate,
    random_split_indices,
    random_split_tensor,
)
from lit_gen.data.digits import DigitsDataModule, load_digits_labels, load_digits_tensor
from lit_gen.data.labels import load_labels
from lit_gen.data.mixture import GaussianMixture
from lit_gen.data.toy2d import (
    TOY_DATASETS,
    TOY_LABELED_DATASETS,
    Toy2DDataModule,
    sample_toy2d,
    sample_toy2d_labeled,
    toy_log_prob,
    toy_mixture,
    toy_num_classes,
)
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
    "TOY_LABELED_DATASETS",
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
    "ResumableDataLoader",
    "ResumableTrainOrder",
    "SVHNDataModule",
    "TensorIndexDataset",
    "Toy2DDataModule",
    "VisionDataModule",
    "identity_collate",
    "labeled_collate",
    "load_array",
    "load_digits_labels",
    "load_digits_tensor",
    "load_labels",
    "random_split_indices",
    "random_split_tensor",
    "sample_toy2d",
    "sample_toy2d_labeled",
    "toy_log_prob",
    "toy_mixture",
    "toy_num_classes",
]

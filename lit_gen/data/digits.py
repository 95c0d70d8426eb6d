"""The sklearn 8×8 handwritten digits (bundled with scikit-learn, so always available offline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gen.data.base import InMemoryDataModule, check_positive_int, random_split_tensor, split_sizes


def load_digits_tensor(image_size: int | None = None) -> Tensor:
    """All 1797 sklearn digits as float32 ``(1797, 1, S, S)`` in [-1, 1] (``x / 16 · 2 − 1``).

    ``image_size`` (default 8, native) resizes bilinearly; bilinear weights are convex, so values stay
    in [-1, 1].
    """
    from sklearn.datasets import load_digits

    x = torch.from_numpy(load_digits().images).to(torch.float32)  # (N, 8, 8), integer values 0..16
    x = (x / 16.0 * 2.0 - 1.0).unsqueeze(1)
    if image_size is not None and image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.contiguous()


class DigitsDataModule(InMemoryDataModule):
    """sklearn digits as ``(1, S, S)`` images in [-1, 1], split once into seeded train/val/test parts.

    Args:
        batch_size: training (and evaluation) batch size.
        image_size: side length ``S`` (default 8; e.g. 16 or 32 for U-Nets that downsample).
        val_fraction, test_fraction: held-out fractions of the 1797 images.
        seed: seeds the split and the training order.
    """

    digits_like = True

    def __init__(
        self,
        batch_size: int = 128,
        image_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.image_size = 8 if image_size is None else check_positive_int(image_size, "image_size")
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        # Validate the fractions now rather than at fit time.
        split_sizes(1797, val_fraction, test_fraction, what="the sklearn digits")
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (1, self.image_size, self.image_size)

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Images live in [-1, 1]: per-pixel (−1, 1), regardless of the pixels the training split uses."""
        return -torch.ones(self.data_shape), torch.ones(self.data_shape)

    def load_splits(self) -> dict[str, Tensor]:
        x = load_digits_tensor(self.image_size)
        fractions = (self.val_fraction, self.test_fraction)
        return random_split_tensor(x, *fractions, seed=self.seed, what="the sklearn digits")

"""The sklearn 8×8 handwritten digits (bundled with scikit-learn, so always available offline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gen.data.base import (
    InMemoryDataModule,
    check_positive_int,
    random_split_indices,
    random_split_tensor,
    split_sizes,
)

#: the sklearn digits are the ten digits 0..9
DIGITS_NUM_CLASSES: int = 10


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


def load_digits_labels() -> Tensor:
    """The digit (0..9) of each of the 1797 sklearn digits, in the order of :func:`load_digits_tensor`
    (``torch.long``, shape ``(1797,)``)."""
    from sklearn.datasets import load_digits

    return torch.from_numpy(load_digits().target).to(torch.long).contiguous()


class DigitsDataModule(InMemoryDataModule):
    """sklearn digits as ``(1, S, S)`` images in [-1, 1], split once into seeded train/val/test parts.

    Args:
        batch_size: training (and evaluation) batch size.
        image_size: side length ``S`` (default 8; e.g. 16 or 32 for U-Nets that downsample).
        val_fraction, test_fraction: held-out fractions of the 1797 images.
        seed: seeds the split and the training order.
        conditional: serve ``(x, y)`` batches with the digit ``y`` (0..9, ``num_classes = 10``); the images and
            their order are the same as with ``conditional=False``.
    """

    digits_like = True

    def __init__(
        self,
        batch_size: int = 128,
        image_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        conditional: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, conditional=conditional)
        self.image_size = 8 if image_size is None else check_positive_int(image_size, "image_size")
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        # Validate the fractions now rather than at fit time.
        split_sizes(1797, val_fraction, test_fraction, what="the sklearn digits")
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (1, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int | None:
        """10 (the digits) when ``conditional``, else None."""
        return DIGITS_NUM_CLASSES if self.conditional else None

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Images live in [-1, 1]: per-pixel (−1, 1), regardless of the pixels the training split uses."""
        return -torch.ones(self.data_shape), torch.ones(self.data_shape)

    def load_splits(self) -> dict[str, Tensor | tuple[Tensor, Tensor]]:
        x = load_digits_tensor(self.image_size)
        fractions = (self.val_fraction, self.test_fraction)
        if not self.conditional:
            return random_split_tensor(x, *fractions, seed=self.seed, what="the sklearn digits")
        y = load_digits_labels()
        parts = random_split_indices(len(x), *fractions, seed=self.seed, what="the sklearn digits")
        return {split: (x[index].contiguous(), y[index]) for split, index in parts.items()}

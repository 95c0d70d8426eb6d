"""The data-module contract: what lit_gen's modules and callbacks read from a data module, in one place.

:class:`lit_gen.data.GenerativeDataModule` declares every member below with its default, so lit_gen's own data
modules (and subclasses of it) state what they offer. The modules never import :mod:`lit_gen.data`: they read
the trainer's data module through these functions, which also accept any other ``LightningDataModule`` (a user's
own, with none of the members: then every function returns its default) or no data module at all.

=================  ==============================================  ========================================
member             meaning                                          default
=================  ==============================================  ========================================
``data_shape``     shape of one data point                          (required)
``bounds()``       per-feature ``(low, high)`` of the training data  (required; the EBM init box)
``tensor(split)``  the whole split as one tensor, when in memory     ``None`` (not held in memory)
``true_nll(split)``exact NLL of the split, when the density is known ``None``
``log_prob``       exact log-density ``x -> (B,)``, when known       ``None``
``digits_like``    the sklearn 8×8 digits (FD-digits applies)        ``False``
``seed``           the data module's seed (evaluation subsamples)    ``0``
``num_classes``    classes of the labels when batches are (x, y)     ``None`` (unconditional)
``mnist_root``     folder of the original MNIST files (FD-MNIST)     ``None``
``labels(split)``  labels of ``tensor(split)``, when in memory       ``None``
=================  ==============================================  ========================================

Batches are tensors ``(B, *data_shape)``, or ``(x, y)`` pairs with long labels ``y`` of shape ``(B,)`` when the
data module is conditional (:func:`split_batch` takes either apart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

__all__ = ["data_bounds", "data_digits_like", "data_labels", "data_log_prob", "data_mnist_root", "data_num_classes",
           "data_seed",
           "data_split", "data_true_nll", "datamodule_of", "split_batch"]


def datamodule_of(trainer: Any) -> Any | None:
    """The trainer's data module, or ``None`` (no trainer, or fit on plain data loaders)."""
    return getattr(trainer, "datamodule", None) if trainer is not None else None


def data_split(trainer: Any, split: str) -> Tensor | None:
    """``datamodule.tensor(split)``, or ``None`` when the data module holds no such tensor."""
    getter = getattr(datamodule_of(trainer), "tensor", None)
    if getter is None:
        return None
    try:
        return getter(split)
    except (KeyError, ValueError, RuntimeError):  # an unknown split, or data not set up
        return None


def data_bounds(trainer: Any) -> tuple[Tensor, Tensor] | None:
    """``datamodule.bounds()``, or ``None`` when the data module has no bounds."""
    bounds = getattr(datamodule_of(trainer), "bounds", None)
    return bounds() if callable(bounds) else None


def data_true_nll(trainer: Any, split: str = "test") -> float | None:
    """``datamodule.true_nll(split)``: the exact NLL of the split, or ``None`` when unknown."""
    fn = getattr(datamodule_of(trainer), "true_nll", None)
    return fn(split) if callable(fn) else None


def data_log_prob(trainer: Any) -> Callable[[Tensor], Tensor] | None:
    """``datamodule.log_prob``: the exact log-density, or ``None`` when unknown."""
    fn = getattr(datamodule_of(trainer), "log_prob", None)
    return fn if callable(fn) else None


def data_digits_like(trainer: Any) -> bool:
    """``datamodule.digits_like``: the data are the sklearn 8×8 digits, so FD-digits applies."""
    return bool(getattr(datamodule_of(trainer), "digits_like", False))


def data_seed(trainer: Any) -> int:
    """``datamodule.seed`` (an int), or 0."""
    seed = getattr(datamodule_of(trainer), "seed", 0)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def data_num_classes(trainer: Any) -> int | None:
    """``datamodule.num_classes``: the number of classes when batches carry labels, else ``None``."""
    n = getattr(datamodule_of(trainer), "num_classes", None)
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def data_to_data_space(trainer: Any, x: Tensor) -> Tensor:
    """``datamodule.to_data_space(x)``: samples in the data's own units (``x`` itself without that method)."""
    mapper = getattr(datamodule_of(trainer), "to_data_space", None)
    return mapper(x) if callable(mapper) else x


def data_labels(trainer: Any, split: str) -> Tensor | None:
    """``datamodule.labels(split)``: the labels of ``tensor(split)``, row by row, or ``None``."""
    getter = getattr(datamodule_of(trainer), "labels", None)
    if not callable(getter):
        return None
    try:
        return getter(split)
    except (KeyError, ValueError, RuntimeError):
        return None


def split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """``(x, y)`` from a conditional batch (a tuple or list, as ``pin_memory`` may make it), ``(batch, None)``
    from a plain tensor."""
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return batch[0], None
    raise TypeError(f"expected a tensor batch or an (x, y) pair, got {type(batch).__name__} of length "
                    f"{len(batch) if isinstance(batch, (tuple, list)) else '?'}")


def data_mnist_root(trainer: Any) -> str | None:
    """``datamodule.mnist_root``: the folder of the original MNIST files (FD-MNIST applies), or ``None``."""
    root = getattr(datamodule_of(trainer), "mnist_root", None)
    return root if isinstance(root, str) else None

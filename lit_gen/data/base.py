"""Base data modules: the interface every lit_gen datamodule offers, and in-memory batching by index.

Batches are plain float32 tensors of shape ``(B, *data_shape)`` without labels, so every model,
metric and callback can treat a batch as "points from the data distribution". A data module built with
``conditional=True`` serves ``(x, y)`` tuples instead: ``x`` as before and ``y`` the class labels, a
``torch.long`` tensor ``(B,)`` with values in ``0 .. num_classes - 1``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from lit_gen.compat import batches_processed_this_epoch
from lit_gen.utils.seeding import SPLITS, derive_seed  # noqa: F401  (re-exported for the data modules)


def identity_collate(batch: Tensor | tuple[Tensor, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
    """Collate function for datasets whose ``__getitems__`` already returns a stacked batch (or ``(x, y)`` pair).

    Module-level (not a lambda) so that DataLoaders stay picklable for spawned workers and DDP.
    """
    return batch


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise a TypeError naming ``name`` (``"yes"`` or ``1`` are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false (a bool), got {type(value).__name__} ({value!r})")
    return value


def labeled_collate(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Collate ``(image, label)`` items into one ``(x, y)`` tuple: ``x`` stacked, ``y`` a ``torch.long`` ``(B,)``.

    PyTorch's default collate turns tuples into lists; this keeps the ``(x, y)`` tuple every conditional loader
    serves. Module-level so that loaders stay picklable for worker processes.
    """
    images, labels = zip(*batch, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` if it is a positive int, else raise a TypeError/ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} ({value!r})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def split_sizes(n: int, val_fraction: float, test_fraction: float, what: str = "the data") -> dict[str, int]:
    """Sizes of a train/val/test split of ``n`` items; each requested (non-zero) split gets >= 1 item.

    Raises ValueError when a fraction is outside [0, 1), when they sum to >= 1, or when ``n`` is too
    small to give every requested split at least one item.
    """
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be a number in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 so that some training data remain, "
            f"got {val_fraction} + {test_fraction}"
        )
    n_val = math.ceil(n * val_fraction) if val_fraction > 0 else 0
    n_test = math.ceil(n * test_fraction) if test_fraction > 0 else 0
    n_train = n - n_val - n_test
    if n_train < 1:
        needed = 1 + (val_fraction > 0) + (test_fraction > 0)
        raise ValueError(
            f"{what} has N={n} rows, too few for val_fraction={val_fraction} and "
            f"test_fraction={test_fraction} (train would get {n_train} rows); provide at least {needed} "
            f"rows or lower the fractions"
        )
    return {"train": n_train, "val": n_val, "test": n_test}


def random_split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int, what: str = "the data"
) -> dict[str, Tensor]:
    """The row indices of a seeded random train/val/test split of ``n`` rows (same seed, same split).

    Index images and their labels with the same indices to keep them paired.
    """
    sizes = split_sizes(n, val_fraction, test_fraction, what)
    g = torch.Generator().manual_seed(derive_seed(seed, 0xD5))
    perm = torch.randperm(n, generator=g)
    out, start = {}, 0
    for split in SPLITS:
        out[split] = perm[start : start + sizes[split]]
        start += sizes[split]
    return out


def random_split_tensor(
    x: Tensor, val_fraction: float, test_fraction: float, seed: int, what: str = "the data"
) -> dict[str, Tensor]:
    """Seeded random train/val/test split of the rows of ``x`` (same seed, same split)."""
    parts = random_split_indices(len(x), val_fraction, test_fraction, seed, what)
    return {split: x[index].contiguous() for split, index in parts.items()}


class TensorIndexDataset(Dataset):
    """A map-style dataset over the rows of one tensor that serves whole batches by fancy indexing.

    PyTorch's fetcher calls ``__getitems__(indices)`` when a dataset defines it, so one indexing
    operation replaces ``B`` item lookups plus a stack (~1.3x vs ~1.7x a plain loop's time;
    ``docs/architecture.md#performance-notes``).

    With ``labels`` (one per row), items and batches are ``(x, y)`` tuples drawn with the same indices.
    """

    def __init__(self, data: Tensor, labels: Tensor | None = None) -> None:
        if labels is not None and labels.shape != (data.shape[0],):
            raise ValueError(f"labels must have shape ({data.shape[0]},), one per row of data, "
                             f"got {tuple(labels.shape)}")
        self.data = data
        self.labels = labels

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> Tensor | tuple[Tensor, Tensor]:
        if self.labels is None:
            return self.data[index]
        return self.data[index], self.labels[index]

    def __getitems__(self, indices: list[int] | Tensor) -> Tensor | tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.labels is None:
            return self.data[index]
        return self.data[index], self.labels[index]


class IndexBatchSampler(BatchSampler):
    """A ``BatchSampler`` that yields each batch of indices as one LongTensor slice of the epoch's order.

    The epoch order is drawn in one call (``randperm`` for a ``RandomSampler`` without replacement,
    ``arange`` for a ``SequentialSampler``, ``list(sampler)`` for anything else, e.g. the
    ``DistributedSampler`` that Lightning injects under DDP), instead of one Python int per sample:
    2-3x less loader overhead than a plain ``BatchSampler`` (~130-190 vs ~460 µs per 2D batch of 256).
    It must be a *subclass*: Lightning re-creates a plain ``BatchSampler`` under DDP as a per-sample
    loader (batch size lost), but re-instantiates subclasses with the distributed sampler inside.

    ``as_list=True`` yields lists of ints instead, for datasets read item by item (image files).

    Resuming mid-epoch: the first epoch iterated skips its first ``skip`` batches, and a sampler with
    ``set_epoch`` (``DistributedSampler``) is set to ``epoch`` first (Lightning sets the epoch only after it
    has pre-fetched the first batch). ``epoch_start_state`` is the RNG state of a ``RandomSampler``'s generator
    before the current epoch's order was drawn, so a checkpoint can redraw the same order.
    """

    def __init__(
        self, sampler: Any, batch_size: int, drop_last: bool, skip: int = 0, epoch: int | None = None,
        as_list: bool = False,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        if not isinstance(skip, int) or skip < 0:
            raise ValueError(f"skip must be a number of batches >= 0, got {skip!r}")
        self.as_list = as_list
        self._skip = skip
        self._resume_epoch = epoch
        self.epoch_start_state: Tensor | None = None

    def resume_at(self, skip: int, epoch: int | None) -> None:
        """Skip the first ``skip`` batches of the next epoch iterated, and set a distributed sampler to ``epoch``."""
        if not isinstance(skip, int) or skip < 0:
            raise ValueError(f"skip must be a number of batches >= 0, got {skip!r}")
        self._skip = skip
        self._resume_epoch = epoch

    def __iter__(self) -> Iterator[Tensor | list[int]]:  # type: ignore[override]
        sampler = self.sampler
        skip, self._skip = self._skip, 0
        if self._resume_epoch is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self._resume_epoch)
        self._resume_epoch = None
        if type(sampler) is RandomSampler and not sampler.replacement and (
            sampler.num_samples == len(sampler.data_source)  # type: ignore[arg-type]
        ):
            if sampler.generator is not None:
                self.epoch_start_state = sampler.generator.get_state()
            order = torch.randperm(sampler.num_samples, generator=sampler.generator)
        elif type(sampler) is SequentialSampler:
            order = torch.arange(len(sampler.data_source))  # type: ignore[arg-type]
        else:
            order = torch.as_tensor(list(sampler), dtype=torch.long)
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(skip * self.batch_size, stop, self.batch_size):
            batch = order[start : start + self.batch_size]
            yield batch.tolist() if self.as_list else batch


class ResumableTrainOrder:
    """The seeded training order of a datamodule, kept in its checkpoint so a resumed run continues it.

    One generator (seeded from ``self.seed``) lives as long as the datamodule, so successive epochs get fresh,
    reproducible orders. Lightning saves :meth:`state_dict` in every checkpoint and hands it back through
    :meth:`load_state_dict` before the resumed run asks for its train loader; the sampler then redraws the
    interrupted epoch's order and skips the batches already trained on.
    """

    seed: int
    trainer: Any
    _train_generator: torch.Generator | None = None
    _train_batches: IndexBatchSampler | None = None
    _resume: dict[str, Any] | None = None

    def train_batch_sampler(self, dataset: Dataset, batch_size: int, as_list: bool = False,
                            items: str = "points") -> IndexBatchSampler:
        """Full batches of ``dataset`` in this epoch's seeded order (resumed where a checkpoint left off).

        Raises ValueError when ``dataset`` holds fewer than ``batch_size`` ``items`` (an epoch would be empty)."""
        if len(dataset) < batch_size:  # type: ignore[arg-type]
            raise ValueError(
                f"the training split has {len(dataset)} {items}, fewer than batch_size={batch_size}, so an "  # type: ignore[arg-type]
                f"epoch of full batches would be empty; lower batch_size or provide more training data"
            )
        resume, self._resume = self._resume or {}, None
        if resume.get("generator_state") is not None:
            self._order_generator().set_state(resume["generator_state"])
        sampler = RandomSampler(dataset, generator=self._order_generator())
        self._train_batches = IndexBatchSampler(sampler, batch_size=batch_size, drop_last=True,
                                                skip=int(resume.get("skip", 0)), epoch=resume.get("epoch"),
                                                as_list=as_list)
        return self._train_batches

    def _order_generator(self) -> torch.Generator:
        """The one generator of the training order, seeded from ``self.seed`` on first use."""
        if self._train_generator is None:
            self._train_generator = torch.Generator().manual_seed(derive_seed(self.seed, 0x5A))
        return self._train_generator

    def state_dict(self) -> dict[str, Any]:
        """Where the training order stands: enough for a resumed run to continue the same order.

        Mid-epoch, the generator state from before this epoch's order was drawn and the number of batches
        already trained on (re-drawn and skipped on resume); at the end of an epoch, the current state.
        """
        trainer = getattr(self, "trainer", None)
        if trainer is None or self._train_generator is None:
            return {}
        consumed = batches_processed_this_epoch(trainer)
        per_epoch = trainer.num_training_batches
        batches = self._train_batches
        mid_epoch = 0 < consumed < per_epoch
        if mid_epoch and batches is not None and batches.epoch_start_state is not None:
            state = batches.epoch_start_state
        else:
            state = self._train_generator.get_state()
        return {"generator_state": state, "skip": consumed if mid_epoch else 0,
                "epoch": int(trainer.current_epoch) if mid_epoch else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the training-order state of :meth:`state_dict` for the next ``train_dataloader()``."""
        self._resume = dict(state_dict) if state_dict else None

    def train_loader(self, dataset: Dataset, batches: IndexBatchSampler, **kwargs: Any) -> ResumableDataLoader:
        """The train loader over ``batches``: a :class:`ResumableDataLoader` whose state is this order's."""
        return ResumableDataLoader(dataset, batch_sampler=batches, order=self, **kwargs)

    def resume_batches(self, batches: BatchSampler, state: dict[str, Any]) -> None:
        """Apply a :meth:`state_dict` to ``batches`` before their first epoch is iterated (idempotent)."""
        if not state:
            return
        if state.get("generator_state") is not None:
            self._order_generator().set_state(state["generator_state"])
        if isinstance(batches, IndexBatchSampler):
            batches.resume_at(int(state.get("skip", 0)), state.get("epoch"))


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` that follows Lightning's stateful-loader protocol (``state_dict``/``load_state_dict``).

    Its state is its data module's seeded training order (:class:`ResumableTrainOrder`): where the epoch's order
    was drawn from and how many batches of it were trained on. Lightning saves it with the fit loop and hands it
    back before the resumed run iterates the loader, so a run stopped mid-epoch continues the same order exactly
    and Lightning knows it does (no "your dataloader is not resumable" warning). ``order`` is an ``__init__``
    argument kept as an attribute of the same name, so Lightning can re-create the loader under DDP.
    """

    def __init__(self, dataset: Dataset, *args: Any, order: ResumableTrainOrder | None = None,
                 **kwargs: Any) -> None:
        super().__init__(dataset, *args, **kwargs)
        self.order = order

    def state_dict(self) -> dict[str, Any]:
        """The training order's state (empty without an order or outside a fit)."""
        return self.order.state_dict() if self.order is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the order a checkpoint recorded: same epoch order, the batches already seen skipped."""
        if self.order is not None:
            self.order.resume_batches(self.batch_sampler, state_dict)


class GenerativeDataModule(LightningDataModule, ABC):
    """Interface of every lit_gen datamodule: the contract the modules read (:mod:`lit_gen.contract`).

    ``data_shape`` is known right after ``__init__`` (the CLI links it to the model at instantiation),
    batches are float32 tensors ``(B, *data_shape)`` without labels, and ``bounds()`` gives the
    per-feature box of the training data used to initialise MCMC chains. The optional members (``tensor``,
    ``true_nll``, ``log_prob``, ``digits_like``, ``seed``, ``num_classes``, ``labels``) are declared here with
    their defaults.

    Labels: a data module built with ``conditional=True`` serves ``(x, y)`` batches (``y`` a ``torch.long``
    tensor ``(B,)`` in ``0 .. num_classes - 1``) and its ``num_classes`` is the number of classes, known right
    after ``__init__`` like ``data_shape``; otherwise ``num_classes`` is ``None`` and batches are plain tensors.
    """

    #: seeds the splits and the training order (and the evaluation subsamples)
    seed: int = 0
    #: batches are ``(x, y)`` tuples with class labels ``y`` (set by the ``conditional`` constructor argument)
    conditional: bool = False

    @property
    @abstractmethod
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one data point, e.g. ``(2,)`` for 2D toys or ``(C, H, W)`` for images."""

    @abstractmethod
    def bounds(self) -> tuple[Tensor, Tensor]:
        """Per-feature ``(low, high)`` tensors of shape ``data_shape`` (images: -1 and 1). May run setup."""

    #: the data are the sklearn 8×8 digits or alike: the test report adds FD-digits
    digits_like: bool = False
    #: the exact log-density ``x -> (B,)`` of the data, when known (toy mixtures); else ``None``
    log_prob: Callable[[Tensor], Tensor] | None = None

    def tensor(self, split: str) -> Tensor | None:
        """The whole ``split`` (``train``/``val``/``test``) as one tensor, or ``None`` when it is not held in memory
        (evaluation then uses what the loaders serve)."""
        return None

    def true_nll(self, split: str = "test") -> float | None:
        """The exact NLL (nats) of ``split`` under the data distribution, or ``None`` when the density is unknown."""
        return None

    def to_data_space(self, x: Tensor) -> Tensor:
        """Map points from the units the model trains in back to the data's own (``x`` itself when they agree, as
        here; ``ArrayDataModule(standardize=True)`` undoes its standardisation)."""
        return x

    @property
    def num_classes(self) -> int | None:
        """Number of classes of the labels the batches carry (labels ``0 .. num_classes - 1``) when
        ``conditional``; ``None`` when batches carry no labels. Known right after ``__init__``."""
        return None

    def labels(self, split: str) -> Tensor | None:
        """The class labels of ``tensor(split)`` (``torch.long``, shape ``(n,)``, row by row), or ``None`` when the
        data module is not conditional or does not hold the split in memory."""
        return None

    @property
    def data_dim(self) -> int:
        """Number of scalar features per data point, ``prod(data_shape)``."""
        return math.prod(self.data_shape)

    @property
    def data_range(self) -> tuple[float, float]:
        """Scalar ``(min, max)`` over all features of the training data (images: ``(-1.0, 1.0)``)."""
        low, high = self.bounds()
        return float(low.min()), float(high.max())

    def predict_dataloader(self) -> Any:
        """``predict`` draws samples rather than reading data: the model says how many (see SampleWriter)."""
        return self.trainer.lightning_module.predict_dataloader()


class InMemoryDataModule(ResumableTrainOrder, GenerativeDataModule):
    """Data held as three float32 tensors (train/val/test) and batched by index.

    Subclasses implement :meth:`load_splits`. The train loader draws full batches in a seeded random
    order (``drop_last=True``); val/test loaders go through every point in order. Batches are served
    by index (:class:`IndexBatchSampler` + ``TensorIndexDataset.__getitems__``), and Lightning can
    swap a ``DistributedSampler`` into the batch sampler under DDP.

    With ``conditional=True`` the labels are indexed with the same indices as the points, so ``(x, y)``
    batches follow exactly the seeded (and resumable) order of the unlabelled ones. A subclass with labels
    returns ``(x, y)`` pairs from :meth:`load_splits` and overrides :attr:`num_classes`.
    """

    def __init__(self, batch_size: int = 256, seed: int = 0, conditional: bool = False) -> None:
        super().__init__()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
        self.seed = seed
        self.conditional = check_bool(conditional, "conditional")
        self._splits: dict[str, Tensor] | None = None
        self._labels: dict[str, Tensor] | None = None

    @abstractmethod
    def load_splits(self) -> dict[str, Tensor | tuple[Tensor, Tensor]]:
        """Return ``{"train": x, "val": x, "test": x}``, each ``(n, *data_shape)``, or ``(x, y)`` pairs with
        integer labels ``y`` of shape ``(n,)`` (needed when ``conditional``; dropped otherwise)."""

    def setup(self, stage: str | None = None) -> None:
        """Load the splits once (idempotent; every DDP rank builds the same seeded data)."""
        if self._splits is not None:
            return
        splits = self.load_splits()
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(
                f"{type(self).__name__}.load_splits() must return the splits {SPLITS}, missing {missing}"
            )
        if self.conditional:
            num_classes = self.num_classes
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(
                    f"{type(self).__name__} was built with conditional=True but its num_classes is {num_classes!r}; "
                    f"a data module with labels must report a positive number of classes"
                )
        checked, labels = {}, {}
        for split in SPLITS:
            x, y = splits[split], None
            if isinstance(x, tuple):
                if len(x) != 2:
                    raise ValueError(f"split {split!r} must be a tensor x or a pair (x, y), got a tuple of {len(x)}")
                x, y = x
            if not isinstance(x, Tensor):
                raise TypeError(f"split {split!r} must be a torch.Tensor, got {type(x).__name__}")
            if tuple(x.shape[1:]) != tuple(self.data_shape):
                raise ValueError(
                    f"split {split!r} has shape {tuple(x.shape)}, expected (n, *data_shape) with "
                    f"data_shape={tuple(self.data_shape)}"
                )
            if self.conditional:
                labels[split] = _check_split_labels(type(self).__name__, split, x, y, self.num_classes)
            checked[split] = x.detach().to(device="cpu", dtype=torch.float32).contiguous()
        self._labels = labels if self.conditional else None
        self._splits = checked

    def tensor(self, split: str) -> Tensor:
        """The whole ``split`` ("train", "val" or "test") as one float32 tensor ``(n, *data_shape)``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        self.setup()
        assert self._splits is not None
        return self._splits[split]

    def labels(self, split: str) -> Tensor | None:
        """The labels of ``tensor(split)`` as a ``torch.long`` tensor ``(n,)`` when ``conditional``, else ``None``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        if not self.conditional:
            return None
        self.setup()
        assert self._labels is not None
        return self._labels[split]

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Per-feature min and max of the training split."""
        x = self.tensor("train")
        return x.amin(dim=0), x.amax(dim=0)

    def train_dataloader(self) -> DataLoader:
        dataset = TensorIndexDataset(self.tensor("train"), self.labels("train"))
        batches = self.train_batch_sampler(dataset, self.batch_size)
        return self.train_loader(dataset, batches, collate_fn=identity_collate, num_workers=0)

    def _eval_dataloader(self, split: str) -> DataLoader:
        dataset = TensorIndexDataset(self.tensor(split), self.labels(split))
        batches = IndexBatchSampler(SequentialSampler(dataset), batch_size=self.batch_size, drop_last=False)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=identity_collate, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")


def _check_split_labels(owner: str, split: str, x: Tensor, y: Tensor | None, num_classes: int) -> Tensor:
    """The labels ``y`` of split ``x`` as ``torch.long`` on the CPU, after checking shape, dtype and range."""
    if y is None:
        raise ValueError(
            f"{owner} was built with conditional=True but {owner}.load_splits() returned no labels for split "
            f"{split!r}; return an (x, y) pair for every split, or build the data module with conditional=False"
        )
    if not isinstance(y, Tensor):
        raise TypeError(f"the labels of split {split!r} must be a torch.Tensor, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"the labels of split {split!r} must be an integer tensor, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"the labels of split {split!r} must have shape ({len(x)},), one per point, "
                         f"got {tuple(y.shape)}")
    y = y.detach().to(device="cpu", dtype=torch.long).contiguous()
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{owner}: label {int(y[row])} of split {split!r} (row {row}, 0-based) is outside 0..{num_classes - 1} "
            f"(num_classes={num_classes})"
        )
    return y

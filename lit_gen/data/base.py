"""Base data modules: the interface every lit_gen datamodule offers, and in-memory batching by index.

Batches are plain float32 tensors of shape ``(B, *data_shape)`` without labels, so every model,
metric and callback can treat a batch as "points from the data distribution".
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


def identity_collate(batch: Tensor) -> Tensor:
    """Collate function for datasets whose ``__getitems__`` already returns a stacked batch.

    Module-level (not a lambda) so that DataLoaders stay picklable for spawned workers and DDP.
    """
    return batch


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


def random_split_tensor(
    x: Tensor, val_fraction: float, test_fraction: float, seed: int, what: str = "the data"
) -> dict[str, Tensor]:
    """Seeded random train/val/test split of the rows of ``x`` (same seed, same split)."""
    sizes = split_sizes(len(x), val_fraction, test_fraction, what)
    g = torch.Generator().manual_seed(derive_seed(seed, 0xD5))
    perm = torch.randperm(len(x), generator=g)
    out, start = {}, 0
    for split in SPLITS:
        out[split] = x[perm[start : start + sizes[split]]].contiguous()
        start += sizes[split]
    return out


class TensorIndexDataset(Dataset):
    """A map-style dataset over the rows of one tensor that serves whole batches by fancy indexing.

    PyTorch's fetcher calls ``__getitems__(indices)`` when a dataset defines it, so one indexing
    operation replaces ``B`` item lookups plus a stack (~1.3x vs ~1.7x a plain loop's time;
    ``docs/architecture.md#performance-notes``).
    """

    def __init__(self, data: Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return self.data[index]

    def __getitems__(self, indices: list[int] | Tensor) -> Tensor:
        return self.data[torch.as_tensor(indices, dtype=torch.long)]


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
        if self._train_generator is None:
            self._train_generator = torch.Generator().manual_seed(derive_seed(self.seed, 0x5A))
        resume, self._resume = self._resume or {}, None
        if resume.get("generator_state") is not None:
            self._train_generator.set_state(resume["generator_state"])
        sampler = RandomSampler(dataset, generator=self._train_generator)
        self._train_batches = IndexBatchSampler(sampler, batch_size=batch_size, drop_last=True,
                                                skip=int(resume.get("skip", 0)), epoch=resume.get("epoch"),
                                                as_list=as_list)
        return self._train_batches

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


class GenerativeDataModule(LightningDataModule, ABC):
    """Interface of every lit_gen datamodule: the contract the modules read (:mod:`lit_gen.contract`).

    ``data_shape`` is known right after ``__init__`` (the CLI links it to the model at instantiation),
    batches are float32 tensors ``(B, *data_shape)`` without labels, and ``bounds()`` gives the
    per-feature box of the training data used to initialise MCMC chains. The optional members (``tensor``,
    ``true_nll``, ``log_prob``, ``digits_like``, ``seed``) are declared here with their defaults.
    """

    #: seeds the splits and the training order (and the evaluation subsamples)
    seed: int = 0

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
    """

    def __init__(self, batch_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
        self.seed = seed
        self._splits: dict[str, Tensor] | None = None

    @abstractmethod
    def load_splits(self) -> dict[str, Tensor]:
        """Return ``{"train": Tensor, "val": Tensor, "test": Tensor}``, each ``(n, *data_shape)``."""

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
        checked = {}
        for split in SPLITS:
            x = splits[split]
            if not isinstance(x, Tensor):
                raise TypeError(f"split {split!r} must be a torch.Tensor, got {type(x).__name__}")
            if tuple(x.shape[1:]) != tuple(self.data_shape):
                raise ValueError(
                    f"split {split!r} has shape {tuple(x.shape)}, expected (n, *data_shape) with "
                    f"data_shape={tuple(self.data_shape)}"
                )
            checked[split] = x.detach().to(device="cpu", dtype=torch.float32).contiguous()
        self._splits = checked

    def tensor(self, split: str) -> Tensor:
        """The whole ``split`` ("train", "val" or "test") as one float32 tensor ``(n, *data_shape)``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        self.setup()
        assert self._splits is not None
        return self._splits[split]

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Per-feature min and max of the training split."""
        x = self.tensor("train")
        return x.amin(dim=0), x.amax(dim=0)

    def train_dataloader(self) -> DataLoader:
        dataset = TensorIndexDataset(self.tensor("train"))
        batches = self.train_batch_sampler(dataset, self.batch_size)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=identity_collate, num_workers=0)

    def _eval_dataloader(self, split: str) -> DataLoader:
        dataset = TensorIndexDataset(self.tensor(split))
        batches = IndexBatchSampler(SequentialSampler(dataset), batch_size=self.batch_size, drop_last=False)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=identity_collate, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

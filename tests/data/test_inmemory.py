"""InMemoryDataModule: index batching, seeded order, full batches, and DDP sampler injection."""

from __future__ import annotations

import json
import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.utilities.data import _update_dataloader
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from lit_gen.data import IndexBatchSampler, InMemoryDataModule, TensorIndexDataset, Toy2DDataModule
from lit_gen.data.base import derive_seed, random_split_tensor, split_sizes


class RowsDataModule(InMemoryDataModule):
    """Rows 0..n-1 of a (n, 3) tensor whose first column is the row id, to track which rows are served."""

    def __init__(self, n: int = 103, batch_size: int = 10, seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.n = n

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (3,)

    def load_splits(self) -> dict[str, Tensor]:
        ids = torch.arange(self.n, dtype=torch.float32)[:, None]
        x = torch.cat([ids, ids * 2, -ids], dim=1)
        return {"train": x, "val": x[:25], "test": x[:7]}


def test_index_dataset_serves_whole_batches_by_one_index() -> None:
    x = torch.randn(20, 2, 2)
    ds = TensorIndexDataset(x)
    assert len(ds) == 20
    torch.testing.assert_close(ds.__getitems__([3, 1, 3]), x[[3, 1, 3]])
    torch.testing.assert_close(ds[5], x[5])


def test_index_batch_sampler_orders() -> None:
    ds = TensorIndexDataset(torch.arange(10.0)[:, None])
    seq = list(IndexBatchSampler(SequentialSampler(ds), batch_size=4, drop_last=False))
    assert [b.tolist() for b in seq] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = RandomSampler(ds, generator=torch.Generator().manual_seed(0))
    rnd = list(IndexBatchSampler(shuffled, batch_size=4, drop_last=True))
    assert len(rnd) == 2 and all(b.dtype == torch.long and len(b) == 4 for b in rnd)
    assert len(set(torch.cat(rnd).tolist())) == 8
    # Any other sampler (e.g. a DistributedSampler) is followed as it is.
    dist = list(IndexBatchSampler(DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False), 2, False))
    assert [b.tolist() for b in dist] == [[1, 3], [5, 7], [9]]
    assert len(IndexBatchSampler(SequentialSampler(ds), batch_size=4, drop_last=True)) == 2


def test_train_loader_full_seeded_batches_cover_each_row_once_per_epoch() -> None:
    dm = RowsDataModule(n=103, batch_size=10)
    dl = dm.train_dataloader()
    batches = list(dl)
    assert len(batches) == 10  # 103 // 10, last partial batch dropped
    assert all(b.shape == (10, 3) and b.dtype == torch.float32 for b in batches)
    ids = torch.cat(batches)[:, 0].long()
    assert len(set(ids.tolist())) == 100  # no repeats within an epoch
    assert ids.tolist() != sorted(ids.tolist())  # shuffled
    second = torch.cat(list(dl))[:, 0].long()
    assert second.tolist() != ids.tolist()  # a new order each epoch
    # Same seed, fresh module: the same sequence of epochs.
    dm2 = RowsDataModule(n=103, batch_size=10)
    dl2 = dm2.train_dataloader()
    assert torch.cat(list(dl2))[:, 0].long().tolist() == ids.tolist()
    assert torch.cat(list(dl2))[:, 0].long().tolist() == second.tolist()
    dm3 = RowsDataModule(n=103, batch_size=10, seed=1)
    assert torch.cat(list(dm3.train_dataloader()))[:, 0].long().tolist() != ids.tolist()


def test_eval_loaders_are_sequential_and_complete() -> None:
    dm = RowsDataModule(batch_size=10)
    val = list(dm.val_dataloader())
    assert [len(b) for b in val] == [10, 10, 5]
    torch.testing.assert_close(torch.cat(val), dm.tensor("val"))
    torch.testing.assert_close(torch.cat(list(dm.test_dataloader())), dm.tensor("test"))


def test_bounds_are_per_feature_min_max_of_train() -> None:
    dm = RowsDataModule(n=50)
    low, high = dm.bounds()
    torch.testing.assert_close(low, torch.tensor([0.0, 0.0, -49.0]))
    torch.testing.assert_close(high, torch.tensor([49.0, 98.0, 0.0]))
    assert dm.data_range == (-49.0, 98.0)
    assert dm.data_dim == 3


def test_errors_batch_too_large_bad_split_bad_args() -> None:
    with pytest.raises(ValueError, match=r"training split has 5 points, fewer than batch_size=10"):
        RowsDataModule(n=5, batch_size=10).train_dataloader()
    with pytest.raises(ValueError, match=r"unknown split 'valid'"):
        RowsDataModule().tensor("valid")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        RowsDataModule(batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be a positive int"):
        RowsDataModule(batch_size=2.5)  # type: ignore[arg-type]


def test_split_helpers() -> None:
    assert split_sizes(100, 0.1, 0.1) == {"train": 80, "val": 10, "test": 10}
    assert split_sizes(5, 0.1, 0.0) == {"train": 4, "val": 1, "test": 0}
    with pytest.raises(ValueError, match="must be < 1"):
        split_sizes(100, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \[0, 1\)"):
        split_sizes(100, -0.1, 0.1)
    x = torch.arange(50.0)[:, None]
    parts = random_split_tensor(x, 0.2, 0.1, seed=3)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [35, 10, 5]
    assert sorted(torch.cat(list(parts.values()))[:, 0].tolist()) == x[:, 0].tolist()
    torch.testing.assert_close(random_split_tensor(x, 0.2, 0.1, seed=3)["val"], parts["val"])
    assert derive_seed(0, 1) != derive_seed(0, 2) != derive_seed(1, 1)


def _epoch_under_ddp(dl: DataLoader, rank: int) -> list[Tensor]:
    ds = dl.dataset
    sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
    return list(_update_dataloader(dl, sampler))


def test_lightning_distributed_sampler_injection_keeps_full_batches() -> None:
    dm = RowsDataModule(n=100, batch_size=10)
    # As outside a Trainer (plain loader) ...
    ranks = [_epoch_under_ddp(dm.train_dataloader(), r) for r in (0, 1)]
    # ... and as inside a Trainer, which records the DataLoader's init arguments.
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        wrapped = dm.train_dataloader()
    ranks_wrapped = [_epoch_under_ddp(wrapped, r) for r in (0, 1)]
    for batches in (*ranks, *ranks_wrapped):
        assert len(batches) == 5  # half of the 10 batches per rank
        assert all(b.shape == (10, 3) for b in batches)
    ids0 = torch.cat(ranks[0])[:, 0].long().tolist()
    ids1 = torch.cat(ranks[1])[:, 0].long().tolist()
    assert sorted(ids0 + ids1) == list(range(100))  # the two ranks partition the data


class ShapeRecorder(pl.LightningModule):
    """Records the shape of every training batch and writes them per rank (spawned ranks cannot return)."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.w = torch.nn.Parameter(torch.zeros(2))
        self.shapes: list[list[int]] = []

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        assert isinstance(batch, Tensor)
        self.shapes.append(list(batch.shape))
        return self.w.sum() * 0.0 + batch.mean() * 0.0

    def on_train_end(self) -> None:
        with open(f"{self.out}.{self.global_rank}.json", "w") as f:
            json.dump(self.shapes, f)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_single_device_trainer_consumes_plain_tensor_batches(tmp_path) -> None:
    dm = Toy2DDataModule("25gaussians", n_train=200, n_val=30, n_test=20, batch_size=16)
    model = ShapeRecorder(str(tmp_path / "shapes"))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert model.shapes == [[16, 2]] * (200 // 16)


@pytest.mark.slow
def test_ddp_spawn_two_cpu_ranks_get_half_epochs_of_full_batches(tmp_path) -> None:
    dm = Toy2DDataModule("8gaussians", n_train=200, n_val=20, n_test=20, batch_size=16)
    out = str(tmp_path / "shapes")
    trainer = pl.Trainer(
        strategy="ddp_spawn",
        devices=2,
        accelerator="cpu",
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(ShapeRecorder(out), datamodule=dm)
    for rank in (0, 1):
        with open(f"{out}.{rank}.json") as f:
            shapes = json.load(f)
        assert len(shapes) == math.floor(100 / 16)  # 200 points / 2 ranks, full batches only
        assert all(s == [16, 2] for s in shapes)

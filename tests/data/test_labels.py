"""Class labels through the data: ``conditional=True`` batches are ``(x, y)`` with the right labels, in the same
(resumable) order as the unlabelled batches; ``num_classes`` is known at construction; every error is clear.

In-memory modules (toy sets, sklearn digits, user arrays) here; the image modules in ``test_labels_vision.py``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.data import _update_dataloader
from sklearn.datasets import load_digits, make_moons
from torch import Tensor
from torch.utils.data import DistributedSampler

from lit_gen.data import (
    TOY_DATASETS,
    TOY_LABELED_DATASETS,
    ArrayDataModule,
    DigitsDataModule,
    GaussianMixture,
    InMemoryDataModule,
    Toy2DDataModule,
    random_split_indices,
    sample_toy2d,
    sample_toy2d_labeled,
    toy_mixture,
    toy_num_classes,
)


def _check_labeled_batch(batch: object, size: int, shape: tuple[int, ...], num_classes: int) -> tuple[Tensor, Tensor]:
    assert isinstance(batch, tuple) and len(batch) == 2
    x, y = batch
    assert isinstance(x, Tensor) and x.dtype == torch.float32 and tuple(x.shape) == (size, *shape)
    assert isinstance(y, Tensor) and y.dtype == torch.long and tuple(y.shape) == (size,)
    assert int(y.min()) >= 0 and int(y.max()) < num_classes
    return x, y


# ----- toy sets ------------------------------------------------------------------------------------------------


def test_labeled_toy_sets_and_their_class_counts() -> None:
    assert set(TOY_LABELED_DATASETS) == {"8gaussians", "25gaussians", "unequal_gaussians", "wrapped_gaussians",
                                         "moons", "circles", "rings", "pinwheel", "2spirals"}
    counts = {name: toy_num_classes(name) for name in TOY_DATASETS}
    assert counts == {"8gaussians": 8, "25gaussians": 25, "unequal_gaussians": 4, "wrapped_gaussians": 6, "moons": 2,
                      "circles": 2, "rings": 4, "pinwheel": 5, "2spirals": 2, "swissroll": None, "checkerboard": None}


@pytest.mark.parametrize("name", TOY_LABELED_DATASETS)
def test_labeled_draws_are_the_unlabeled_points_with_coherent_labels(name: str) -> None:
    x, y = sample_toy2d_labeled(name, 3001, torch.Generator().manual_seed(4))
    torch.testing.assert_close(x, sample_toy2d(name, 3001, torch.Generator().manual_seed(4)), rtol=0, atol=0)
    k = toy_num_classes(name)
    assert y.dtype == torch.long and y.shape == (3001,) and int(y.min()) == 0 and int(y.max()) == k - 1
    # Classes are regions, not random tags: a point's nearest neighbour is mostly of its class (random labels: 1/k).
    d = torch.cdist(x, x)
    d.fill_diagonal_(math.inf)
    agree = float((y[d.argmin(dim=1)] == y).double().mean())
    assert agree > 0.9, agree
    empty = sample_toy2d_labeled(name, 0)
    assert empty[0].shape == (0, 2) and empty[1].shape == (0,) and empty[1].dtype == torch.long


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians", "unequal_gaussians"])
def test_mixture_label_is_the_component_index(name: str) -> None:
    dm = Toy2DDataModule(name, n_train=4000, n_val=500, n_test=500, batch_size=100, conditional=True)
    mixture = toy_mixture(name)
    assert mixture is not None and dm.num_classes == mixture.num_components  # before setup
    x, y = dm.tensor("train"), dm.labels("train")
    assert y is not None and y.shape == (4000,)
    nearest = torch.cdist(x.double(), mixture.means).argmin(dim=1)
    assert float((nearest == y).double().mean()) > 0.99  # well separated components: almost every point
    assert torch.bincount(y, minlength=mixture.num_components).min() > 0


def test_gaussian_mixture_sample_with_labels() -> None:
    gm = GaussianMixture([0.3, 0.7], [[-4.0, 0.0], [4.0, 0.0]], 0.5)
    x, k = gm.sample_with_labels(5000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, gm.sample(5000, torch.Generator().manual_seed(0)), rtol=0, atol=0)
    assert k.dtype == torch.long and torch.equal(k, (x[:, 0] > 0).long())
    assert gm.sample_with_labels(0)[1].shape == (0,)


def test_moons_labels_are_sklearns_half_moons() -> None:
    x, y = sample_toy2d_labeled("moons", 500, torch.Generator().manual_seed(7))
    seed = int(torch.randint(0, 2**31 - 1, (), generator=torch.Generator().manual_seed(7)))
    ref_x, ref_y = make_moons(n_samples=500, noise=0.1, random_state=seed)
    torch.testing.assert_close(x, torch.from_numpy(ref_x * 2.0 + np.array([-1.0, -0.2])).float())
    assert torch.equal(y, torch.from_numpy(ref_y).long())


def test_toy_module_conditional_batches_follow_the_unconditional_order() -> None:
    kwargs = {"n_train": 300, "n_val": 50, "n_test": 30, "batch_size": 32, "seed": 5}
    cond = Toy2DDataModule("8gaussians", conditional=True, **kwargs)
    plain = Toy2DDataModule("8gaussians", **kwargs)
    assert plain.num_classes is None and plain.labels("train") is None and not plain.conditional
    for split in ("train", "val", "test"):
        torch.testing.assert_close(cond.tensor(split), plain.tensor(split), rtol=0, atol=0)
    cond_loader, plain_loader = cond.train_dataloader(), plain.train_dataloader()
    for _ in range(2):  # two epochs: fresh, identical orders
        batches = list(cond_loader)
        plain_batches = list(plain_loader)
        assert len(batches) == len(plain_batches) == 300 // 32
        for batch, plain_batch in zip(batches, plain_batches, strict=True):
            assert isinstance(plain_batch, Tensor)  # the unconditional path is unchanged
            x, y = _check_labeled_batch(batch, 32, (2,), 8)
            assert torch.equal(x, plain_batch)
            index = torch.cdist(x, cond.tensor("train")).argmin(dim=1)  # the rows served
            assert torch.equal(y, cond.labels("train")[index])
    for split, loader in (("val", cond.val_dataloader()), ("test", cond.test_dataloader())):
        xs, ys = zip(*list(loader), strict=True)
        assert torch.equal(torch.cat(xs), cond.tensor(split)) and torch.equal(torch.cat(ys), cond.labels(split))


@pytest.mark.parametrize("name", ["swissroll", "checkerboard"])
def test_toy_set_without_labels_refuses_conditional(name: str) -> None:
    with pytest.raises(ValueError, match=f"toy dataset '{name}' has no class labels") as info:
        Toy2DDataModule(name, conditional=True)
    for labeled in TOY_LABELED_DATASETS:
        assert labeled in str(info.value)
    assert "conditional: false" in str(info.value)
    with pytest.raises(ValueError, match="has no class labels"):
        sample_toy2d_labeled(name, 10)
    with pytest.raises(TypeError, match="conditional must be true or false"):
        Toy2DDataModule("8gaussians", conditional="yes")  # type: ignore[arg-type]


# ----- digits --------------------------------------------------------------------------------------------------


def test_digits_labels_are_sklearns_targets() -> None:
    dm = DigitsDataModule(batch_size=64, seed=3, conditional=True)
    assert dm.num_classes == 10 and DigitsDataModule().num_classes is None
    plain = DigitsDataModule(batch_size=64, seed=3)
    digits = load_digits()
    parts = random_split_indices(1797, 0.1, 0.1, seed=3)
    images = torch.from_numpy(digits.images).float()[:, None] / 8.0 - 1.0
    for split, index in parts.items():
        torch.testing.assert_close(dm.tensor(split), plain.tensor(split), rtol=0, atol=0)
        torch.testing.assert_close(dm.tensor(split), images[index])
        assert torch.equal(dm.labels(split), torch.from_numpy(digits.target)[index].long())
    x, y = _check_labeled_batch(next(iter(dm.train_dataloader())), 64, (1, 8, 8), 10)
    assert torch.equal(x, next(iter(plain.train_dataloader())))
    row = torch.cdist(x.flatten(1), dm.tensor("train").flatten(1)).argmin(dim=1)
    assert torch.equal(y, dm.labels("train")[row])
    assert len(set(torch.cat([dm.labels(s) for s in ("train", "val", "test")]).tolist())) == 10


# ----- user arrays ---------------------------------------------------------------------------------------------


def _labeled_points(n: int = 60, d: int = 3, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Points whose first feature is their label plus small noise, so that a label can be checked against its row."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % k
    x = rng.normal(scale=0.1, size=(n, d)).astype(np.float32)
    x[:, 0] += y
    return x, y


def _check_array_labels(dm: ArrayDataModule, num_classes: int, d: int) -> None:
    assert dm.conditional and dm.num_classes == num_classes and dm.data_shape == (d,)
    for split in ("train", "val", "test"):
        x, y = dm.tensor(split), dm.labels(split)
        assert y is not None and y.dtype == torch.long and y.shape == (len(x),)
        assert torch.equal(torch.round(x[:, 0]).long(), y)
    x, y = _check_labeled_batch(next(iter(dm.train_dataloader())), 8, (d,), num_classes)
    assert torch.equal(torch.round(x[:, 0]).long(), y)


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".csv"])
def test_array_labels_file(tmp_path: Path, suffix: str) -> None:
    x, y = _labeled_points()
    np.save(tmp_path / "x.npy", x)
    labels = tmp_path / f"y{suffix}"
    if suffix == ".npy":
        np.save(labels, y.reshape(-1, 1))  # (N, 1) is read as (N,)
    elif suffix == ".pt":
        torch.save(torch.from_numpy(y).to(torch.int32), labels)
    else:
        labels.write_text("label\n" + "\n".join(f"{v}.0" if i % 2 else str(v) for i, v in enumerate(y)) + "\n")
    dm = ArrayDataModule(str(tmp_path / "x.npy"), batch_size=8, conditional=True, labels=str(labels))
    _check_array_labels(dm, 4, 3)
    plain = ArrayDataModule(str(tmp_path / "x.npy"), batch_size=8)
    torch.testing.assert_close(dm.tensor("val"), plain.tensor("val"), rtol=0, atol=0)
    fresh = ArrayDataModule(str(tmp_path / "x.npy"), batch_size=8, conditional=True, labels=str(labels))
    for (x, _), plain_x in zip(fresh.train_dataloader(), plain.train_dataloader(), strict=True):
        assert torch.equal(x, plain_x)  # the same order as without labels
    # The labels are read (and checked) without conditional, but not served.
    unserved = ArrayDataModule(str(tmp_path / "x.npy"), batch_size=8, labels=str(labels))
    assert unserved.num_classes is None and unserved.labels("train") is None
    assert isinstance(next(iter(unserved.train_dataloader())), Tensor)


def test_array_pt_dict_holds_data_and_labels(tmp_path: Path) -> None:
    x, y = _labeled_points()
    torch.save({"data": torch.from_numpy(x), "labels": torch.from_numpy(y)}, tmp_path / "both.pt")
    both = str(tmp_path / "both.pt")
    _check_array_labels(ArrayDataModule(both, batch_size=8, conditional=True, labels=both), 4, 3)


@pytest.mark.parametrize("column", [-1, 0])
def test_array_label_column_of_a_csv(tmp_path: Path, column: int) -> None:
    x, y = _labeled_points()
    cols = [np.round(x[:, i], 6).astype(str) for i in range(3)]
    cols.insert(len(cols) if column == -1 else 0, y.astype(str))
    header = ["x0", "x1", "x2"]
    header.insert(3 if column == -1 else 0, "label")
    rows = [",".join(header)] + [",".join(r) for r in zip(*cols, strict=True)]
    (tmp_path / "points.csv").write_text("\n".join(rows) + "\n")
    dm = ArrayDataModule(str(tmp_path / "points.csv"), batch_size=8, conditional=True, label_column=column)
    _check_array_labels(dm, 4, 3)  # the label column is not a feature
    plain = ArrayDataModule(str(tmp_path / "points.csv"), batch_size=8, label_column=column)
    assert plain.data_shape == (3,) and plain.num_classes is None


def test_array_num_classes_given_and_inferred(tmp_path: Path) -> None:
    x, y = _labeled_points(k=3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    inferred = ArrayDataModule(str(tmp_path / "x.npy"), conditional=True, labels=str(tmp_path / "y.npy"))
    assert inferred.num_classes == 3
    given = ArrayDataModule(str(tmp_path / "x.npy"), conditional=True, labels=str(tmp_path / "y.npy"), num_classes=10)
    assert given.num_classes == 10  # classes without examples are allowed when stated
    assert inferred.hparams["labels"] == str(tmp_path / "y.npy") and inferred.hparams["conditional"] is True


def _write_labels(path: Path, values: object) -> str:
    if path.suffix == ".npy":
        np.save(path, np.asarray(values))
    else:
        path.write_text(str(values))
    return str(path)


def test_array_label_errors(tmp_path: Path) -> None:
    x, y = _labeled_points(n=20)
    np.save(tmp_path / "x.npy", x)
    data = str(tmp_path / "x.npy")

    def build(**kwargs: object) -> ArrayDataModule:
        return ArrayDataModule(data, batch_size=4, **{"conditional": True, **kwargs})  # type: ignore[arg-type]

    missing = tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError, match="labels file not found") as info:
        build(labels=str(missing))
    msg = str(info.value)
    assert str(missing) in msg and data in msg and "data.init_args.labels" in msg and "label_column" in msg
    with pytest.raises(ValueError, match=r"holds 19 labels but the data file .*x\.npy has 20 rows"):
        build(labels=_write_labels(tmp_path / "short.npy", y[:19]))
    with pytest.raises(ValueError, match=r"the label on row 3 \(0-based\) is 2\.5, not an integer"):
        build(labels=_write_labels(tmp_path / "frac.npy", [0.0, 1.0, 2.0, 2.5] + [0.0] * 16))
    with pytest.raises(ValueError, match=r"the label on row 1 \(0-based\) is nan, not an integer"):
        build(labels=_write_labels(tmp_path / "nan.npy", [0.0, np.nan] + [0.0] * 18))
    with pytest.raises(ValueError, match=r"the label on row 2 \(0-based\) is -1, negative"):
        build(labels=_write_labels(tmp_path / "neg.npy", [0, 1, -1] + [0] * 17))
    with pytest.raises(ValueError, match=r"row 5 \(0-based\) is 7, but num_classes=4 allows only 0\.\.3") as info:
        build(labels=_write_labels(tmp_path / "big.npy", [0, 1, 2, 3, 0, 7] + [9] * 14), num_classes=4)
    assert "at least 10" in str(info.value) and "data.init_args.num_classes" in str(info.value)
    with pytest.raises(TypeError, match=r"holds <U3 values, not numbers.*numpy\.unique"):
        build(labels=_write_labels(tmp_path / "names.npy", ["cat", "dog"] * 10))
    with pytest.raises(ValueError, match=r"labels file: .*non-numeric value 'cat' on line 2.*numpy\.unique"):
        build(labels=_write_labels(tmp_path / "names.csv", "label\ncat\ndog\n"))
    with pytest.raises(ValueError, match=r"shape \(20, 2\); expected one label per row"):
        build(labels=_write_labels(tmp_path / "wide.npy", np.zeros((20, 2), dtype=int)))
    with pytest.raises(ValueError, match="either labels .* or label_column .*, not both"):
        build(labels=str(missing), label_column=0)
    with pytest.raises(ValueError, match=r"conditional=True\) needs class labels.*label_column"):
        build()
    with pytest.raises(ValueError, match="num_classes=3 is given but there are no labels"):
        ArrayDataModule(data, num_classes=3)
    with pytest.raises(ValueError, match=r"label_column=3 is outside the 3 columns"):
        build(label_column=3)
    with pytest.raises(ValueError, match=r"label_column=1: the label on row 0 \(0-based\) is .*, not an integer"):
        build(label_column=1)  # a feature column is no label
    np.save(tmp_path / "one.npy", y[:, None].astype(np.float32))
    with pytest.raises(ValueError, match="single column, so label_column=0 would leave no features"):
        ArrayDataModule(str(tmp_path / "one.npy"), conditional=True, label_column=0)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        build(labels=_write_labels(tmp_path / "ok.npy", y), num_classes=0)
    with pytest.raises(ValueError, match="unsupported labels file suffix '.txt'"):
        build(labels=_write_labels(tmp_path / "y.txt", "0\n"))


# ----- the base class ------------------------------------------------------------------------------------------


class _Pairs(InMemoryDataModule):
    """Rows with ids; labels as given, to test the checks of InMemoryDataModule.setup."""

    def __init__(self, labels: object, num_classes: int | None = 3, conditional: bool = True) -> None:
        super().__init__(batch_size=4, conditional=conditional)
        self._given, self._k = labels, num_classes

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (1,)

    @property
    def num_classes(self) -> int | None:
        return self._k if self.conditional else None

    def load_splits(self) -> dict[str, Tensor | tuple[Tensor, Tensor]]:
        x = torch.arange(8.0)[:, None]
        if self._given is None:
            return {"train": x, "val": x, "test": x}
        return {"train": (x, self._given), "val": (x, self._given), "test": (x, self._given)}  # type: ignore[dict-item]


def test_base_checks_what_load_splits_returns() -> None:
    ok = _Pairs(torch.arange(8) % 3)
    assert torch.equal(ok.labels("val"), torch.arange(8) % 3)
    with pytest.raises(ValueError, match=r"unknown split 'valid'"):
        ok.labels("valid")
    assert _Pairs(None, conditional=False).labels("train") is None
    with pytest.raises(ValueError, match=r"returned no labels for split 'train'"):
        _Pairs(None).setup()
    with pytest.raises(ValueError, match=re.escape("label 3 of split 'train' (row 3, 0-based) is outside 0..2")):
        _Pairs(torch.arange(8)).setup()
    with pytest.raises(TypeError, match="must be an integer tensor, got dtype torch.float32"):
        _Pairs(torch.zeros(8)).setup()
    with pytest.raises(ValueError, match=r"must have shape \(8,\), one per point"):
        _Pairs(torch.zeros(7, dtype=torch.long)).setup()
    with pytest.raises(ValueError, match="its num_classes is None"):
        _Pairs(torch.zeros(8, dtype=torch.long), num_classes=None).setup()


def test_ddp_sampler_injection_keeps_pairs_together() -> None:
    dm = Toy2DDataModule("8gaussians", n_train=200, n_val=10, n_test=10, batch_size=10, conditional=True)
    pairs = []
    for rank in (0, 1):
        loader = dm.train_dataloader()
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        pairs += list(_update_dataloader(loader, sampler))
    assert len(pairs) == 20
    x = torch.cat([p[0] for p in pairs])
    y = torch.cat([_check_labeled_batch(p, 10, (2,), 8)[1] for p in pairs])
    rows = torch.cdist(x, dm.tensor("train")).argmin(dim=1)
    assert sorted(rows.tolist()) == list(range(200))  # the two ranks partition the data ...
    assert torch.equal(y, dm.labels("train")[rows])  # ... and every label stays with its point


# ----- resuming ------------------------------------------------------------------------------------------------


class _PairRecorder(L.LightningModule):
    """Keeps every (x, y) training batch; one parameter so that the optimizer has something to step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[Tensor, Tensor]] = []

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        self.seen.append((x.detach().clone(), y.detach().clone()))
        return (self.w * x.mean()) ** 2

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_recording(datamodule: L.LightningDataModule, max_steps: int, ckpt_dir: Path | None = None,
                  ckpt_path: str | None = None) -> list[tuple[Tensor, Tensor]]:
    """Train a recorder for ``max_steps`` (checkpointing at the end into ``ckpt_dir``); the (x, y) batches seen."""
    module = _PairRecorder()
    callbacks = [] if ckpt_dir is None else [
        ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=max_steps, save_top_k=-1, filename="{step}")
    ]
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        enable_checkpointing=ckpt_dir is not None, callbacks=callbacks)
    trainer.fit(module, datamodule, ckpt_path=ckpt_path)
    return module.seen


def assert_same_pairs(a: list[tuple[Tensor, Tensor]], b: list[tuple[Tensor, Tensor]]) -> None:
    assert len(a) == len(b)
    for i, ((xa, ya), (xb, yb)) in enumerate(zip(a, b, strict=True)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb), f"batch {i} differs"


def test_toy_labels_follow_a_mid_epoch_resume(tmp_path: Path) -> None:
    def dm() -> Toy2DDataModule:
        return Toy2DDataModule("25gaussians", n_train=96, n_val=10, n_test=10, batch_size=32, seed=2, conditional=True)

    full = fit_recording(dm(), 7)  # 3 batches per epoch: steps 1-3, 4-6, 7
    first = fit_recording(dm(), 4, ckpt_dir=tmp_path / "ckpt")  # stops after the first batch of epoch 2
    torch.manual_seed(99)  # the order must come from the checkpoint, not the process state
    rest = fit_recording(dm(), 7, ckpt_path=str(tmp_path / "ckpt" / "step=4.ckpt"))
    assert len(first) == 4 and len(rest) == 3
    assert_same_pairs(first + rest, full)
    mixture = toy_mixture("25gaussians")
    for x, y in full:
        assert torch.equal(torch.cdist(x.double(), mixture.means).argmin(dim=1), y)

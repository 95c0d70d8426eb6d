"""Class labels of the image modules, read from tiny files in the real formats whose images carry their class in
their pixels (``tests/fakes.py``), so every served label is checked against the image it comes with."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import (
    class_gray,
    decode_gray_class,
    decode_label,
    scaled,
    write_celeba,
    write_cifar10_labeled,
    write_image_folder,
    write_image_folder_labeled,
    write_mnist_labeled,
    write_svhn_labeled,
)
from test_labels import assert_same_pairs, fit_recording
from torch import Tensor
from torchvision.datasets import ImageFolder

from lit_gen.data import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    SVHNDataModule,
    VisionDataModule,
)

SPLITS = ("train", "val", "test")


def _pairs(loader: object, num_classes: int, shape: tuple[int, ...]) -> list[tuple[Tensor, Tensor]]:
    """Every batch of ``loader``, each checked to be an ``(x, y)`` tuple of the right dtypes, shapes and range."""
    out = []
    for batch in loader:  # type: ignore[attr-defined]
        assert isinstance(batch, tuple) and len(batch) == 2
        x, y = batch
        assert x.dtype == torch.float32 and tuple(x.shape[1:]) == shape
        assert y.dtype == torch.long and y.shape == (len(x),)
        assert int(y.min()) >= 0 and int(y.max()) < num_classes
        out.append((x, y))
    return out


def _check_served_labels(dm: VisionDataModule, num_classes: int = 10, decode: object = decode_label) -> None:
    """Every loader serves (x, y) pairs whose label is the one written into the image."""
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        pairs = _pairs(loader, num_classes, dm.data_shape)
        assert pairs
        for x, y in pairs:
            assert torch.equal(decode(x), y)  # type: ignore[operator]


@pytest.mark.parametrize(("cls", "folder"), [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_mnist_labels(tmp_path: Path, cls: type[MNISTDataModule], folder: str) -> None:
    written = write_mnist_labeled(tmp_path, folder)
    dm = cls(root=str(tmp_path), batch_size=8, val_fraction=0.25, conditional=True)
    assert dm.num_classes == 10 and dm.conditional  # before setup, without touching the files
    _check_served_labels(dm)
    test_x, test_y = zip(*_pairs(dm.test_dataloader(), 10, (1, 28, 28)), strict=True)
    torch.testing.assert_close(torch.cat(test_x), scaled(written["t10k"][0])[:, None])
    assert torch.equal(torch.cat(test_y), torch.from_numpy(written["t10k"][1]).long())
    assert dm.tensor("train") is None and dm.labels("train") is None  # not held in memory
    plain = cls(root=str(tmp_path), batch_size=8, val_fraction=0.25)
    assert plain.num_classes is None
    fresh = cls(root=str(tmp_path), batch_size=8, val_fraction=0.25, conditional=True)
    for (x, _), plain_x in zip(fresh.train_dataloader(), plain.train_dataloader(), strict=True):
        assert isinstance(plain_x, Tensor) and torch.equal(x, plain_x)  # same images, same order


def test_cifar10_labels_with_flips(tmp_path: Path) -> None:
    test_images, test_labels = write_cifar10_labeled(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=8, val_fraction=0.1, verify=False, conditional=True)
    assert dm.random_flip and dm.num_classes == 10
    _check_served_labels(dm)  # the class pixels are mirrored, so flips keep them readable
    x, y = next(iter(dm.test_dataloader()))
    torch.testing.assert_close(x, scaled(test_images[:8]))
    assert torch.equal(y, torch.from_numpy(test_labels[:8]).long())


def test_svhn_label_10_is_the_digit_0(tmp_path: Path) -> None:
    test_images, digits = write_svhn_labeled(tmp_path)
    dm = SVHNDataModule(root=str(tmp_path), batch_size=4, val_fraction=0.2, verify=False, conditional=True)
    assert dm.num_classes == 10
    _check_served_labels(dm)
    ys = torch.cat([y for _, y in _pairs(dm.test_dataloader(), 10, (3, 32, 32))])
    assert torch.equal(ys, torch.from_numpy(digits).long()) and 0 in ys.tolist()
    torch.testing.assert_close(next(iter(dm.test_dataloader()))[0], scaled(test_images[:4]))


def test_labels_survive_worker_processes(tmp_path: Path) -> None:
    write_mnist_labeled(tmp_path, "MNIST")
    dm = MNISTDataModule(root=str(tmp_path), batch_size=8, val_fraction=0.25, num_workers=1, conditional=True)
    for x, y in _pairs(dm.train_dataloader(), 10, (1, 28, 28)):
        assert torch.equal(decode_label(x), y)


def test_damaged_label_file_is_named(tmp_path: Path) -> None:
    labels = np.arange(40) % 10
    labels[17] = 12
    write_mnist_labeled(tmp_path, "MNIST", labels={"train": labels})
    dm = MNISTDataModule(root=str(tmp_path), batch_size=8, val_fraction=0.25, conditional=True)
    with pytest.raises(ValueError, match=r"MNIST: image \d+ of the (train|val) split under root=.* has the label 12, "
                                         r"outside 0\.\.9 \(10 classes\)"):
        dm.setup()
    MNISTDataModule(root=str(tmp_path), batch_size=8, val_fraction=0.25).setup()  # unlabelled: labels unread


def test_celeba_has_no_classes(tmp_path: Path) -> None:
    write_celeba(tmp_path)
    with pytest.raises(ValueError, match=r"CelebADataModule\(conditional=True\): CelebA has no class labels") as info:
        CelebADataModule(root=str(tmp_path), conditional=True)
    assert "ImageFolderDataModule(conditional=True)" in str(info.value)
    assert "conditional: false" in str(info.value)
    assert CelebADataModule(root=str(tmp_path)).num_classes is None


def test_image_folder_class_is_the_sorted_subfolder(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    write_image_folder_labeled(root, classes=("wasps", "ants", "bees"))  # one image per class one folder deeper
    dm = ImageFolderDataModule(root=str(root), image_size=8, batch_size=2, val_fraction=0.25, test_fraction=0.25,
                               conditional=True)
    assert dm.num_classes == 3 and dm.classes == ["ants", "bees", "wasps"]  # read in __init__, before setup
    assert dm.class_to_idx == ImageFolder(str(root)).class_to_idx  # the same indices as torchvision's
    _check_served_labels(dm, 3, decode_gray_class)
    loaders = (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())
    served = torch.cat([y for loader in loaders[1:] for _, y in _pairs(loader, 3, (3, 8, 8))])
    assert len(served) == 6 and len(dm.dataset("train")) == 6  # 12 PNGs, nested one included
    everything = [int(dm.dataset(s)[i][1]) for s in SPLITS for i in range(len(dm.dataset(s)))]
    assert sorted(everything) == [0] * 4 + [1] * 4 + [2] * 4
    x, y = dm.dataset("test")[0]
    assert float(x.mean()) == pytest.approx(class_gray(y) / 255 * 2 - 1, abs=1e-6)
    plain = ImageFolderDataModule(root=str(root), image_size=8, batch_size=2)
    assert plain.num_classes is None and plain.classes is None and plain.class_to_idx is None


def test_image_folder_with_train_and_test_folders(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    write_image_folder_labeled(root / "train", n_per_class=3)
    # The test folder holds a subset of the classes: its "wasps" (second there) is class 2 of the training classes.
    write_image_folder_labeled(root / "test", classes=("ants", "wasps"), n_per_class=2,
                               all_classes=("ants", "bees", "wasps"))
    dm = ImageFolderDataModule(root=str(root), image_size=8, batch_size=2, val_fraction=0.2, conditional=True)
    assert dm.classes == ["ants", "bees", "wasps"]
    _check_served_labels(dm, 3, decode_gray_class)
    test_labels = torch.cat([y for _, y in _pairs(dm.test_dataloader(), 3, (3, 8, 8))])
    assert sorted(test_labels.tolist()) == [0, 0, 2, 2]


def test_image_folder_label_errors(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    write_image_folder(flat)
    (flat / "stray.png").write_bytes((flat / "cats" / "0.png").read_bytes())
    with pytest.raises(ValueError, match=r"1 image files sit directly in it \(stray\.png\).*<class>"):
        ImageFolderDataModule(root=str(flat), conditional=True)
    ImageFolderDataModule(root=str(flat))  # unlabelled: fine
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(ValueError, match="needs one sub-folder of images per class .* has no sub-folders"):
        ImageFolderDataModule(root=str(nothing), conditional=True)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageFolderDataModule(root=str(tmp_path / "missing"), conditional=True)
    (flat / "stray.png").unlink()
    (flat / "empty").mkdir()
    with pytest.raises(ValueError, match=r"the class folders empty under .* hold no image files"):
        ImageFolderDataModule(root=str(flat), conditional=True)

    split = tmp_path / "split"
    write_image_folder_labeled(split / "train", n_per_class=3)
    write_image_folder_labeled(split / "test", classes=("ants", "moths"), n_per_class=1)
    dm = ImageFolderDataModule(root=str(split), image_size=8, batch_size=2, conditional=True)
    with pytest.raises(ValueError, match=r"class folder .*moths, which is not a class of the training images"):
        dm.setup()
    shutil.rmtree(split / "test" / "moths")
    shutil.copy(split / "test" / "ants" / "more" / "0.png", split / "test" / "0.png")
    dm = ImageFolderDataModule(root=str(split), image_size=8, batch_size=2, conditional=True)
    with pytest.raises(ValueError, match=r"but .*test/0\.png sits directly in it"):
        dm.setup()


def test_vision_labels_follow_a_mid_epoch_resume(tmp_path: Path) -> None:
    write_mnist_labeled(tmp_path, "MNIST")  # 30 training images after the validation split: 3 batches per epoch

    def dm(conditional: bool = True) -> MNISTDataModule:
        return MNISTDataModule(root=str(tmp_path), batch_size=8, val_fraction=0.25, seed=3, conditional=conditional)

    full = fit_recording(dm(), 8)
    first = fit_recording(dm(), 4, ckpt_dir=tmp_path / "ckpt")  # stops after the first batch of epoch 2
    torch.manual_seed(1234)  # the order must come from the checkpoint, not from the process state
    rest = fit_recording(dm(), 8, ckpt_path=str(tmp_path / "ckpt" / "step=4.ckpt"))
    assert len(first) == 4 and len(rest) == 4
    assert_same_pairs(first + rest, full)
    for x, y in full:
        assert torch.equal(decode_label(x), y)
    plain = MNISTDataModule(root=str(tmp_path), batch_size=8, val_fraction=0.25, seed=3)
    plain.setup()
    epoch = [batch for batch in plain.train_dataloader()]
    for (x, _), plain_x in zip(full[:3], epoch, strict=True):
        assert torch.equal(x, plain_x)  # labels change nothing about the order

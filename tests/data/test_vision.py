"""Image datamodules read tiny files written here in the real on-disk formats; nothing downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fakes import scaled, write_celeba, write_cifar10, write_image_folder, write_mnist, write_svhn

from lit_gen.data import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    SVHNDataModule,
)
from lit_gen.data.vision_datasets import ImageFiles, ImageReadError


def _check_batch(batch: torch.Tensor, shape: tuple[int, ...], resized: bool = False) -> None:
    assert isinstance(batch, torch.Tensor)  # labels dropped
    assert tuple(batch.shape) == shape and batch.dtype == torch.float32
    assert float(batch.min()) >= -1.0 and float(batch.max()) <= 1.0
    if resized:  # resampling averages the uniform noise pixels: centred, not constant
        assert abs(float(batch.mean())) < 0.1 and float(batch.std()) > 0.05
    else:  # every written image holds the pixel values 0 and 255
        assert float(batch.min()) == -1.0 and float(batch.max()) == 1.0


MNIST_LIKE = [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")]


@pytest.mark.parametrize(("cls", "folder"), MNIST_LIKE)
def test_mnist_formats(tmp_path: Path, cls: type[MNISTDataModule], folder: str) -> None:
    written = write_mnist(tmp_path, folder)
    dm = cls(root=str(tmp_path), batch_size=8, val_fraction=0.25)
    assert dm.data_shape == (1, 28, 28)
    dm.setup("fit")
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [30, 10, 10]
    _check_batch(next(iter(dm.train_dataloader())), (8, 1, 28, 28))
    test = next(iter(dm.test_dataloader()))
    torch.testing.assert_close(test, scaled(written["t10k"][:8])[:, None])
    low, high = dm.bounds()
    assert low.shape == (1, 28, 28) and (low == -1).all() and (high == 1).all()

    resized = cls(root=str(tmp_path), batch_size=4, image_size=32)
    assert resized.data_shape == (1, 32, 32)
    _check_batch(next(iter(resized.val_dataloader())), (2, 1, 32, 32), resized=True)


def test_cifar10_format_without_md5(tmp_path: Path) -> None:
    test = write_cifar10(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=8, val_fraction=0.1, verify=False)
    assert dm.data_shape == (3, 32, 32) and dm.random_flip
    dm.setup("fit")
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [36, 4, 10]
    _check_batch(next(iter(dm.train_dataloader())), (8, 3, 32, 32))
    torch.testing.assert_close(next(iter(dm.test_dataloader())), scaled(test[:8]))
    assert len(dm.train_dataloader()) == 36 // 8  # drop_last


def test_svhn_format_without_md5(tmp_path: Path) -> None:
    test = write_svhn(tmp_path)
    dm = SVHNDataModule(root=str(tmp_path), batch_size=4, val_fraction=0.2, image_size=16, verify=False)
    assert dm.data_shape == (3, 16, 16) and not dm.random_flip
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [24, 6, 10]
    _check_batch(next(iter(dm.train_dataloader())), (4, 3, 16, 16), resized=True)
    native = SVHNDataModule(root=str(tmp_path), batch_size=4, verify=False)
    torch.testing.assert_close(next(iter(native.test_dataloader())), scaled(test[:4]))


def test_celeba_layout_without_attribute_files(tmp_path: Path) -> None:
    write_celeba(tmp_path)
    dm = CelebADataModule(root=str(tmp_path), batch_size=2)
    assert dm.data_shape == (3, 32, 32)
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [6, 2, 2]
    _check_batch(next(iter(dm.train_dataloader())), (2, 3, 32, 32), resized=True)
    big = CelebADataModule(root=str(tmp_path), batch_size=2, image_size=64)
    _check_batch(next(iter(big.test_dataloader())), (2, 3, 64, 64), resized=True)


def test_image_folder_tree(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    root = str(tmp_path / "imgs")
    dm = ImageFolderDataModule(root=root, image_size=16, batch_size=4, val_fraction=0.2, test_fraction=0.2)
    assert dm.data_shape == (3, 16, 16)
    dm.setup()
    sizes = [len(dm.dataset(s)) for s in ("train", "val", "test")]
    assert sizes == [6, 3, 3]  # 12 PNGs; the .txt file is ignored
    _check_batch(next(iter(dm.train_dataloader())), (4, 3, 16, 16), resized=True)
    gray = ImageFolderDataModule(root=str(tmp_path / "imgs"), image_size=8, channels=1, batch_size=3)
    _check_batch(next(iter(gray.val_dataloader())), (1, 1, 8, 8), resized=True)


def test_image_folder_with_train_test_subfolders(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs" / "train", n_per_class=5)
    write_image_folder(tmp_path / "imgs" / "test", n_per_class=2)
    dm = ImageFolderDataModule(root=str(tmp_path / "imgs"), image_size=8, batch_size=2, val_fraction=0.1)
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [9, 1, 4]


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (MNISTDataModule, "MNIST/raw/train-images-idx3-ubyte"),
        (FashionMNISTDataModule, "FashionMNIST/raw/t10k-labels-idx1-ubyte"),
        (CIFAR10DataModule, "cifar-10-batches-py/data_batch_1"),
        (SVHNDataModule, "train_32x32.mat"),
        (CelebADataModule, "celeba/list_eval_partition.txt"),
    ],
)
def test_missing_files_error_names_root_files_and_download(tmp_path: Path, cls: type, expected: str) -> None:
    root = tmp_path / "empty_root"
    dm = cls(root=str(root))  # constructing never touches the disk
    assert len(dm.data_shape) == 3
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    msg = str(info.value)
    assert str(root) in msg and expected in msg
    assert "download: true" in msg and "data.init_args.download=true" in msg and "`root`" in msg
    dm.prepare_data()  # download=False: does nothing (and in particular no network access)
    assert not root.exists()
    with pytest.raises(FileNotFoundError, match=r"prepare_data\(\)"):
        cls(root=str(root), download=True).setup()


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder not found") as info:
        ImageFolderDataModule(root=str(tmp_path / "missing")).setup()
    assert str(tmp_path / "missing") in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no image files under root=.*\.png"):
        ImageFolderDataModule(root=str(tmp_path / "empty")).setup()
    with pytest.raises(ValueError, match="channels must be 1"):
        ImageFolderDataModule(root=str(tmp_path), channels=2)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_broken_image_in_a_folder_names_its_path(tmp_path: Path, damage: str) -> None:
    write_image_folder(tmp_path / "imgs")
    bad = tmp_path / "imgs" / "cats" / "3.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a png at all" * 20)
    dm = ImageFolderDataModule(root=str(tmp_path / "imgs"), image_size=8, batch_size=2, val_fraction=0.2,
                               test_fraction=0.2)
    dm.setup()
    splits = [dm.dataset(s) for s in ("train", "val", "test")]
    with pytest.raises(ImageReadError, match=r"could not read image .*3\.png") as info:
        for ds in splits:
            for i in range(len(ds)):
                ds[i]
    assert str(bad) in str(info.value) and "truncated, corrupted or not an image" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_broken_celeba_image_names_its_path(tmp_path: Path) -> None:
    write_celeba(tmp_path)
    bad = tmp_path / "celeba" / "img_align_celeba" / "000001.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    dm = CelebADataModule(root=str(tmp_path), batch_size=2)
    dm.setup()
    train = dm.dataset("train")
    with pytest.raises(ImageReadError, match=r"could not read image .*000001\.jpg"):
        for i in range(len(train)):
            train[i]


def test_image_in_a_format_pil_would_hand_to_ghostscript_is_refused(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    (tmp_path / "imgs" / "cats" / "0.png").write_bytes(eps)  # content decides PIL's decoder, not the name
    files = ImageFiles([tmp_path / "imgs" / "cats" / "0.png"])
    with pytest.raises(ImageReadError, match=r"could not read image .*0\.png: UnidentifiedImageError"):
        files[0]  # never opened as EPS (whose decoder would run Ghostscript)

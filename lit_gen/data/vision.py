"""torchvision-backed image datamodules (MNIST, Fashion-MNIST, CIFAR-10, SVHN, CelebA, an image folder).

Images are read from ``root`` as float32 ``(C, H, W)`` in [-1, 1] (``ToTensor`` then ``(x − 0.5) / 0.5``),
labels dropped. With ``conditional=True`` batches are ``(x, y)`` with the dataset's class labels ``y`` (MNIST,
Fashion-MNIST, CIFAR-10, SVHN: 10 classes from the files; an image folder: one class per sub-folder; CelebA has
none). Nothing is downloaded unless ``download=True``; with missing files ``setup`` raises a
FileNotFoundError that names the root, the expected files and the ``download`` switch.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import datasets
from torchvision import transforms as T
from torchvision.datasets.folder import IMG_EXTENSIONS

from lit_gen.data.base import (
    GenerativeDataModule,
    ResumableTrainOrder,
    check_bool,
    check_positive_int,
    derive_seed,
    labeled_collate,
    split_sizes,
)
from lit_gen.data.vision_datasets import (
    CelebAImages,
    CIFAR10Files,
    ImageFiles,
    ImagesOnly,
    LabeledImages,
    SVHNFiles,
    dataset_targets,
    find_classes,
    find_images,
)


class VisionDataModule(ResumableTrainOrder, GenerativeDataModule):
    """Base of the image datamodules: transforms, held-out validation split, loaders, missing-file errors.

    Args:
        root: folder holding the dataset in torchvision's layout (see each subclass).
        batch_size: batch size of every loader (train drops the last incomplete batch).
        num_workers: DataLoader worker processes (workers persist across epochs when > 0).
        download: fetch the files into ``root`` in ``prepare_data`` (never done by default).
        image_size: output side length (default: the dataset's native size); resize + centre crop.
        val_fraction: part of the training split held out for validation when the dataset has no
            validation split of its own.
        random_flip: random horizontal flips for training (default: the dataset's convention,
            off for digits and characters, on for natural images and faces).
        seed: seeds the validation split and the training order.
        conditional: serve ``(x, y)`` batches with the class labels ``y`` (``torch.long``, ``(B,)``) of the
            dataset's files; the images and their order are the same as with ``conditional=False``. A dataset
            without class labels raises ValueError.
    """

    channels: ClassVar[int] = 3
    native_size: ClassVar[int] = 32
    default_flip: ClassVar[bool] = False
    has_val_split: ClassVar[bool] = False
    #: Number of classes of the dataset's labels; None when it has none (``conditional=True`` is then an error).
    label_classes: ClassVar[int | None] = None
    #: What to do instead, for a dataset without class labels.
    no_labels_hint: ClassVar[str] = "set conditional: false"
    #: Centre crop applied before resizing (e.g. 140 for aligned CelebA faces); None = none.
    center_crop: int | None = None

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        download: bool = False,
        image_size: int | None = None,
        val_fraction: float = 0.05,
        random_flip: bool | None = None,
        seed: int = 0,
        conditional: bool = False,
    ) -> None:
        super().__init__()
        if type(self).__init__ is VisionDataModule.__init__:  # subclasses with their own arguments save theirs
            self.save_hyperparameters()
        self.conditional = check_bool(conditional, "conditional")
        if self.conditional and self.label_classes is None:
            name = type(self).__name__
            raise ValueError(f"{name}(conditional=True): {name.removesuffix('DataModule')} has no class labels; "
                             f"{self.no_labels_hint}")
        self.root = str(root)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
        self.num_workers = num_workers
        self.download = bool(download)
        if image_size is not None:
            check_positive_int(image_size, "image_size")
        self.image_size = self.native_size if image_size is None else image_size
        split_sizes(10**6, val_fraction, 0.0)  # validates the fraction now
        self.val_fraction = val_fraction
        self.random_flip = self.default_flip if random_flip is None else bool(random_flip)
        derive_seed(seed)  # validates the seed now rather than at setup
        self.seed = seed
        self._datasets: dict[str, Dataset] | None = None

    # ----- what each dataset defines -------------------------------------------------------------

    @abstractmethod
    def expected_paths(self) -> list[str]:
        """Files/folders, relative to ``root``, that must exist before ``setup``."""

    @abstractmethod
    def download_files(self) -> None:
        """Fetch the dataset into ``root`` with torchvision (called from ``prepare_data`` only)."""

    @abstractmethod
    def raw_split(self, split: str) -> Dataset:
        """The untransformed dataset (PIL images, maybe with labels) of ``split`` in {"train", "test"}
        (and "val" when ``has_val_split``)."""

    # ----- interface ----------------------------------------------------------------------------

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int | None:
        """The number of classes (10 for MNIST, Fashion-MNIST, CIFAR-10 and SVHN) when ``conditional``, else None."""
        return self.label_classes if self.conditional else None

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Images live in [-1, 1]."""
        return -torch.ones(self.data_shape), torch.ones(self.data_shape)

    def missing_paths(self) -> list[Path]:
        """The expected files/folders that do not exist under ``root``."""
        root = Path(self.root).expanduser()
        return [root / p for p in self.expected_paths() if not (root / p).exists()]

    def missing_files_message(self, missing: list[Path]) -> str:
        """The error text for missing files: the root, the files expected there and the ``download`` switch."""
        name = type(self).__name__.removesuffix("DataModule")
        root = Path(self.root).expanduser()
        lines = "\n".join(f"  - {p}" for p in missing)
        expected = ", ".join(self.expected_paths())
        hint = (
            "download=True was given but the files are still missing: `prepare_data()` downloads them (the "
            "Trainer calls it; call it yourself when using the datamodule by hand)"
            if self.download
            else f"set `download: true` (data.init_args.download=true) to fetch them into {root}, or point "
            f"`root` at the folder that holds {expected}"
        )
        where = f"root={root} (absolute: {root.resolve()})"
        return f"{name} data not found under {where}. Missing:\n{lines}\n{hint}."

    def check_files(self) -> None:
        """Raise FileNotFoundError (root, missing paths, how to fix) when the dataset is not on disk."""
        missing = self.missing_paths()
        if missing:
            raise FileNotFoundError(self.missing_files_message(missing))

    def prepare_data(self) -> None:
        if self.download and self.missing_paths():
            Path(self.root).expanduser().mkdir(parents=True, exist_ok=True)
            self.download_files()

    def transform(self, train: bool) -> T.Compose:
        """PIL image → float32 ``(C, S, S)`` in [-1, 1]; random flips only for training."""
        steps: list = []
        if self.center_crop is not None:
            steps.append(T.CenterCrop(self.center_crop))
        if self.center_crop is not None or self.image_size != self.native_size:
            steps += [T.Resize(self.image_size, antialias=True), T.CenterCrop(self.image_size)]
        if train and self.random_flip:
            steps.append(T.RandomHorizontalFlip())
        steps += [T.ToTensor(), T.Normalize([0.5] * self.channels, [0.5] * self.channels)]
        return T.Compose(steps)

    def _raw_splits(self) -> dict[str, Dataset]:
        train = self.raw_split("train")
        test = self.raw_split("test")
        if self.has_val_split:
            return {"train": train, "val": self.raw_split("val"), "test": test}
        n = len(train)  # type: ignore[arg-type]
        sizes = split_sizes(n, self.val_fraction, 0.0, what=f"the {type(self).__name__} training split")
        g = torch.Generator().manual_seed(derive_seed(self.seed, 0xB1))
        perm = torch.randperm(n, generator=g).tolist()
        return {
            "train": Subset(train, perm[: sizes["train"]]),
            "val": Subset(train, perm[sizes["train"] :]),
            "test": test,
        }

    def setup(self, stage: str | None = None) -> None:
        if self._datasets is not None:
            return
        self.check_files()
        raw = self._raw_splits()
        if not self.conditional:
            self._datasets = {s: ImagesOnly(ds, self.transform(s == "train")) for s, ds in raw.items()}
            return
        self._datasets = {s: LabeledImages(ds, self.transform(s == "train"), self._checked_targets(s, ds))
                          for s, ds in raw.items()}

    def _checked_targets(self, split: str, dataset: Dataset) -> torch.Tensor:
        """The labels of ``dataset`` (the raw ``split``), each checked to lie in ``0 .. num_classes - 1``."""
        name = type(self).__name__.removesuffix("DataModule")
        targets = dataset_targets(dataset)
        if targets is None:
            raise ValueError(f"{name}: the {split} split under root={self.root} holds no class labels; "
                             f"{self.no_labels_hint}")
        num_classes = self.num_classes
        assert num_classes is not None
        bad = (targets < 0) | (targets >= num_classes)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{name}: image {i} of the {split} split under root={self.root} has the label {int(targets[i])}, "
                f"outside 0..{num_classes - 1} ({num_classes} classes); the label files are damaged or not the "
                f"standard ones. Replace them, or set conditional: false to train without labels"
            )
        return targets

    def dataset(self, split: str) -> Dataset:
        """The transformed dataset of ``split`` ("train", "val" or "test"); items are image tensors (``conditional``:
        ``(image, label)`` pairs)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; choose one of ('train', 'val', 'test')")
        self.setup()
        assert self._datasets is not None
        return self._datasets[split]

    def _collate(self) -> Callable | None:
        # None: PyTorch's default (stacked images); conditional: an (x, y) tuple rather than its [x, y] list
        return labeled_collate if self.conditional else None

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(self.dataset(split), batch_size=self.batch_size, shuffle=False, drop_last=False,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          collate_fn=self._collate())

    def train_dataloader(self) -> DataLoader:
        """Full batches in a seeded order that a resumed run continues (mid-epoch too)."""
        dataset = self.dataset("train")
        batches = self.train_batch_sampler(dataset, self.batch_size, as_list=True, items="images")
        return self.train_loader(dataset, batches, num_workers=self.num_workers,
                                 persistent_workers=self.num_workers > 0, collate_fn=self._collate())

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


class MNISTDataModule(VisionDataModule):
    """MNIST digits, ``(1, 28, 28)`` by default; reads ``root/MNIST/raw/*-ubyte`` (LeCun et al., 1998)."""

    channels = 1
    native_size = 28
    default_flip = False
    label_classes = 10
    tv_class: ClassVar[type[datasets.MNIST]] = datasets.MNIST

    @property
    def mnist_root(self) -> str | None:
        """``root`` when its files are byte for byte the original MNIST (FD-MNIST applies; checked once), else
        ``None`` (Fashion-MNIST, subsets, other files)."""
        if self.tv_class is not datasets.MNIST:
            return None
        if not hasattr(self, "_mnist_root_checked"):
            from lit_gen.data.mnist_prepare import is_original_mnist

            raw = Path(self.root).expanduser() / "MNIST" / "raw"
            self._mnist_root_checked = str(Path(self.root).expanduser()) if is_original_mnist(raw) else None
        return self._mnist_root_checked

    def expected_paths(self) -> list[str]:
        folder = f"{self.tv_class.__name__}/raw"
        kinds = ("images-idx3-ubyte", "labels-idx1-ubyte")
        return [f"{folder}/{prefix}-{kind}" for prefix in ("train", "t10k") for kind in kinds]

    def download_files(self) -> None:
        for train in (True, False):
            self.tv_class(self.root, train=train, download=True)

    def raw_split(self, split: str) -> Dataset:
        return self.tv_class(self.root, train=split == "train", download=False)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST, ``(1, 28, 28)``; reads ``root/FashionMNIST/raw/*-ubyte`` (Xiao et al., 2017)."""

    tv_class = datasets.FashionMNIST


class ChecksummedVisionDataModule(VisionDataModule):
    """A torchvision data set whose standard files have md5 sums: ``verify`` checks them.

    Args:
        verify: check the files against torchvision's md5 sums of the standard files (a mismatch is a ValueError
            naming the file); ``False`` accepts re-packed or subset files.
        others: see :class:`VisionDataModule`.
    """

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        download: bool = False,
        image_size: int | None = None,
        val_fraction: float = 0.05,
        random_flip: bool | None = None,
        seed: int = 0,
        verify: bool = True,
        conditional: bool = False,
    ) -> None:
        super().__init__(root, batch_size, num_workers, download, image_size, val_fraction, random_flip, seed,
                         conditional)
        self.verify = bool(verify)
        self.save_hyperparameters()


class CIFAR10DataModule(ChecksummedVisionDataModule):
    """CIFAR-10, ``(3, 32, 32)``; reads ``root/cifar-10-batches-py/`` (Krizhevsky, 2009). Flips on.

    The batch files are pickles; they are read with a restricted unpickler that builds only dicts, lists,
    numbers, strings and numpy arrays, so a crafted folder is refused without running any of it.

    Args:
        verify: check every file against torchvision's md5 sums of the standard CIFAR-10 files (a mismatch is a
            ValueError naming the file); ``False`` accepts re-packed or subset files.
        others: see :class:`VisionDataModule`.
    """

    channels = 3
    native_size = 32
    default_flip = True
    label_classes = 10

    def expected_paths(self) -> list[str]:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
        return [f"{CIFAR10Files.base_folder}/{name}" for name in names]

    def download_files(self) -> None:
        # torchvision fetches the archive and checks its md5 sum; the batches are then read without pickle.load.
        CIFAR10Files(self.root, train=False, download=True, verify=True)

    def raw_split(self, split: str) -> Dataset:
        return CIFAR10Files(self.root, train=split == "train", download=False, verify=self.verify)


class SVHNDataModule(ChecksummedVisionDataModule):
    """SVHN house numbers, ``(3, 32, 32)``; reads ``root/{train,test}_32x32.mat`` (Netzer et al., 2011).

    ``scipy.io.loadmat`` parses the ``.mat`` files as data and runs no code from them. Labels follow torchvision:
    the files store the digit 0 as 10, read as the label 0, so the labels are the digits 0..9.

    Args:
        verify: check both files against torchvision's md5 sums of the standard SVHN files (a mismatch is a
            ValueError naming the file); ``False`` accepts re-packed or subset files.
        others: see :class:`VisionDataModule`.
    """

    channels = 3
    native_size = 32
    default_flip = False
    label_classes = 10

    def expected_paths(self) -> list[str]:
        return ["train_32x32.mat", "test_32x32.mat"]

    def download_files(self) -> None:
        for split in ("train", "test"):
            datasets.SVHN(self.root, split=split, download=True)

    def raw_split(self, split: str) -> Dataset:
        return SVHNFiles(self.root, split=split, download=False, verify=self.verify)


class CelebADataModule(VisionDataModule):
    """Aligned CelebA faces (Liu et al., 2015): centre crop 140, resize to ``image_size`` (default 32, or 64).

    Reads ``root/celeba/img_align_celeba/*.jpg`` and ``root/celeba/list_eval_partition.txt`` (official
    train/valid/test partition); no attribute files or md5 checks needed. Flips on by default. CelebA has no
    class labels, so ``conditional=True`` is a ValueError.
    """

    channels = 3
    native_size = 32
    default_flip = True
    has_val_split = True
    no_labels_hint = (
        "its files carry 40 binary attributes (not read here), not classes. For class-conditional faces sort the "
        "images into one sub-folder per class and use ImageFolderDataModule(conditional=True), or set "
        "conditional: false"
    )

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        download: bool = False,
        image_size: int | None = None,
        val_fraction: float = 0.05,
        random_flip: bool | None = None,
        seed: int = 0,
        center_crop: int | None = 140,
        conditional: bool = False,
    ) -> None:
        super().__init__(root, batch_size, num_workers, download, image_size, val_fraction, random_flip, seed,
                         conditional)
        self.center_crop = None if center_crop is None else check_positive_int(center_crop, "center_crop")
        self.save_hyperparameters()

    def expected_paths(self) -> list[str]:
        return ["celeba/img_align_celeba", "celeba/list_eval_partition.txt"]

    def download_files(self) -> None:
        # torchvision fetches from Google Drive (needs the `gdown` package) and verifies md5 sums.
        datasets.CelebA(self.root, split="all", target_type=[], download=True)

    def raw_split(self, split: str) -> Dataset:
        return CelebAImages(self.root, split=split)


class ImageFolderDataModule(VisionDataModule):
    """Any folder of images (PNG, JPEG, ...; searched recursively), resized and centre-cropped.

    If ``root`` has a ``train/`` subfolder, it is the training set, ``val/`` (or ``valid/``) the
    validation set (else ``val_fraction`` of train) and ``test/`` the test set (else the validation
    set). Otherwise all images under ``root`` are split with ``val_fraction`` and ``test_fraction``.
    Class subfolders (torchvision ``ImageFolder`` trees) are fine; labels are ignored unless ``conditional``.

    With ``conditional=True`` the class of an image is its top sub-folder (``root/<class>/...``, or
    ``root/train/<class>/...`` with ``val/`` and ``test/`` using the same class names), and the classes are the
    sub-folder names of ``root`` (or ``root/train``) sorted, as in torchvision's ``ImageFolder``: ``classes``
    and ``class_to_idx`` give them. They are read in ``__init__`` (so ``num_classes`` is known before ``setup``);
    image files directly in that folder, or a class folder without images, are a ValueError.

    Args:
        root: the image folder.
        image_size: output side length.
        channels: 3 (RGB) or 1 (grayscale).
        conditional: serve ``(x, y)`` batches with ``y`` the class index of each image's sub-folder.
    """

    default_flip = True

    def __init__(
        self,
        root: str,
        image_size: int = 32,
        channels: int = 3,
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        random_flip: bool | None = None,
        seed: int = 0,
        conditional: bool = False,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        self.channels = channels  # type: ignore[misc]  # instance value shadows the class default
        image_size = check_positive_int(image_size, "image_size")
        self.native_size = image_size  # type: ignore[misc]
        #: the class names (sorted sub-folder names) when ``conditional``, else None
        self.classes: list[str] | None = None
        if check_bool(conditional, "conditional"):
            self.classes = find_classes(self._class_root(Path(str(root)).expanduser()))
            self.label_classes = len(self.classes)  # type: ignore[misc]  # instance value shadows the class default
        super().__init__(root, batch_size, num_workers, False, image_size, val_fraction, random_flip, seed,
                         conditional)
        split_sizes(10**6, val_fraction, test_fraction)
        self.test_fraction = test_fraction
        self.save_hyperparameters()

    @property
    def class_to_idx(self) -> dict[str, int] | None:
        """Class name → label, when ``conditional`` (as torchvision's ``ImageFolder.class_to_idx``), else None."""
        return None if self.classes is None else {c: i for i, c in enumerate(self.classes)}

    @staticmethod
    def _class_root(root: Path) -> Path:
        """The folder whose sub-folders are the classes: ``root/train`` when it exists, else ``root``."""
        return root / "train" if (root / "train").is_dir() else root

    def _file_targets(self, files: list[Path], root: Path) -> list[int]:
        """The class index of each file, from its top sub-folder (below ``train/``, ``val/`` or ``test/`` in the
        split layout)."""
        class_to_idx = self.class_to_idx
        assert class_to_idx is not None
        depth = 1 if self._class_root(root) != root else 0
        targets = []
        for f in files:
            parts = f.relative_to(root).parts
            folder = root.joinpath(*parts[:depth])
            if len(parts) < depth + 2:
                raise ValueError(
                    f"conditional=True takes the class of an image from its sub-folder of {folder}, but {f} sits "
                    f"directly in it: move it into one of the class folders ({', '.join(class_to_idx)}), or set "
                    f"conditional: false"
                )
            name = parts[depth]
            if name not in class_to_idx:
                raise ValueError(
                    f"{f} is in the class folder {folder / name}, which is not a class of the training images "
                    f"(the sub-folders of {self._class_root(root)}: {', '.join(class_to_idx)}); rename or remove it"
                )
            targets.append(class_to_idx[name])
        return targets

    def transform(self, train: bool) -> T.Compose:
        # Files may have any size and aspect ratio: always resize the short side, then crop square.
        steps: list = [T.Resize(self.image_size, antialias=True), T.CenterCrop(self.image_size)]
        if train and self.random_flip:
            steps.append(T.RandomHorizontalFlip())
        steps += [T.ToTensor(), T.Normalize([0.5] * self.channels, [0.5] * self.channels)]
        return T.Compose(steps)

    def expected_paths(self) -> list[str]:
        return ["."]

    def check_files(self) -> None:
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"image folder not found: root={root} (absolute: {root.resolve()}); point `root` "
                f"(data.init_args.root) at a folder of images ({', '.join(IMG_EXTENSIONS)})"
            )
        if not find_images(root):
            raise FileNotFoundError(
                f"no image files under root={root} (absolute: {root.resolve()}); expected files with one of "
                f"the extensions {', '.join(IMG_EXTENSIONS)}, searched recursively"
            )

    def download_files(self) -> None:
        raise ValueError("ImageFolderDataModule reads local files only; there is nothing to download")

    def raw_split(self, split: str) -> Dataset:
        raise NotImplementedError  # splits are built in _raw_splits

    def _raw_splits(self) -> dict[str, Dataset]:
        root = Path(self.root).expanduser()
        mode = "RGB" if self.channels == 3 else "L"
        g = torch.Generator().manual_seed(derive_seed(self.seed, 0xB2))

        def shuffled(files: list[Path]) -> list[Path]:
            return [files[i] for i in torch.randperm(len(files), generator=g).tolist()]

        if (root / "train").is_dir():
            train = find_images(root / "train")
            val_dir = next((root / d for d in ("val", "valid") if (root / d).is_dir()), None)
            if val_dir is not None:
                val = find_images(val_dir)
            else:
                files = shuffled(train)
                n_train = split_sizes(len(files), self.val_fraction, 0.0, what=str(root / "train"))["train"]
                train, val = files[:n_train], files[n_train:]
            test = find_images(root / "test") if (root / "test").is_dir() else val
        else:
            files = shuffled(find_images(root))
            sizes = split_sizes(len(files), self.val_fraction, self.test_fraction, what=str(root))
            train = files[: sizes["train"]]
            val = files[sizes["train"] : sizes["train"] + sizes["val"]]
            test = files[sizes["train"] + sizes["val"] :]
        parts = {"train": train, "val": val, "test": test}
        if not self.conditional:
            return {split: ImageFiles(paths, mode) for split, paths in parts.items()}
        return {split: ImageFiles(paths, mode, self._file_targets(paths, root)) for split, paths in parts.items()}

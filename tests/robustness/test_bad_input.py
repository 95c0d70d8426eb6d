"""Bad input, everywhere: one table of inputs and the message fragment each must produce.

Every row goes through a real entry point (the `lit-gen` CLI via ``build_cli``, module constructors, samplers,
``Trainer.fit`` with data or a checkpoint) and writes into ``tmp_path/run``. Besides the message, every row checks
that the failure left no checkpoint there (a crash before or during set-up must not leave a partial or empty
``.ckpt`` that a later ``--ckpt_path last`` would pick up), and the checkpoint row checks that the checkpoint it
was given is unchanged. Direct unit checks of each loader's messages live in tests/data/.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from fakes import write_cifar10, write_image_folder
from torch.utils.data import DataLoader

from lit_gen.cli import build_cli
from lit_gen.data import ArrayDataModule
from lit_gen.mcmc import Langevin
from lit_gen.models import DCDModule, DiffusionModule, EBMModule
from lit_gen.nn import EnergyMLP, TimeMLP

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _toy_args(tmp_path: Path, method: str = "diffusion") -> list[str]:
    return ["fit", "--config", str(CONFIGS / method / "toy2d.yaml"), "--trainer.default_root_dir",
            str(tmp_path / "run"), "--trainer.fast_dev_run", "true", "--trainer.enable_progress_bar", "false"]


def _yaml(tmp_path: Path, cfg: dict) -> str:
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _trainer(tmp_path: Path, **kwargs: object) -> L.Trainer:
    return L.Trainer(default_root_dir=tmp_path / "run", max_steps=2, accelerator="cpu", devices=1,
                     enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                     inference_mode=False, **kwargs)


def _ebm(data_shape: tuple[int, ...] = (2,)) -> EBMModule:
    return EBMModule(EnergyMLP, data_shape=data_shape, mcmc_steps=2, init_low=-3.0, init_high=3.0)


def _points(tmp_path: Path, x: np.ndarray, name: str = "points.npy") -> str:
    np.save(tmp_path / name, x)
    return str(tmp_path / name)


# ------------------------------------------------------------------ the rows: each raises when called
def cli_unknown_trainer_key(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--trainer.max_stepz", "3"])


def cli_unknown_data_key_in_yaml(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--config", _yaml(tmp_path, {"data": {"init_args": {"batch_sise": 8}}})])


def cli_wrong_type_on_command_line(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--model.init_args.sampler_steps", "many"])


def cli_wrong_type_in_yaml(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--config", _yaml(tmp_path, {"trainer": {"max_steps": "ten"}})])


def cli_missing_config_file(tmp_path: Path) -> None:
    build_cli(["fit", "--config", str(tmp_path / "nowhere.yaml")])


def cli_unknown_network_class(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--model.init_args.net", "lit_gen.nn.NoSuchNet"])


def cli_unknown_module_package(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--model", "my_missing_project.models.Model"])


def cli_sampler_steps_zero(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--model.init_args.sampler_steps", "0"])


def cli_mcmc_steps_negative(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path, "ebm"), "--model.init_args.mcmc_steps", "-1"])


def dcd_mcmc_steps_zero(tmp_path: Path) -> None:
    DCDModule(EnergyMLP, mcmc_steps=0)


def langevin_zero_steps(tmp_path: Path) -> None:
    Langevin(step_size=0.1).run(lambda x: 0.5 * (x**2).sum(1), torch.randn(4, 2), num_steps=0)


def diffusion_sample_zero_steps(tmp_path: Path) -> None:
    DiffusionModule(TimeMLP).sample(4, sampler="ddim", steps=0)


def ebm_sample_negative_steps(tmp_path: Path) -> None:
    _ebm().sample(4, steps=-5)


def cli_empty_user_file(tmp_path: Path) -> None:
    (tmp_path / "points.csv").write_text("x,y\n")
    build_cli([*_toy_args(tmp_path), "--data", "lit_gen.data.ArrayDataModule",
               "--data.init_args.path", str(tmp_path / "points.csv")])


def cli_nan_in_user_file(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 2))
    x[17, 1] = np.nan
    build_cli([*_toy_args(tmp_path), "--data", "lit_gen.data.ArrayDataModule",
               "--data.init_args.path", _points(tmp_path, x)])


def cli_missing_user_file(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--data", "lit_gen.data.ArrayDataModule",
               "--data.init_args.path", str(tmp_path / "no_points.npy")])


def _user_file_args(tmp_path: Path, path: Path | str) -> list[str]:
    return [*_toy_args(tmp_path), "--data", "lit_gen.data.ArrayDataModule", "--data.init_args.path", str(path)]


def cli_csv_non_numeric_first_row(tmp_path: Path) -> None:
    (tmp_path / "points.csv").write_text("0.5,O.7\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))  # O for 0
    build_cli(_user_file_args(tmp_path, tmp_path / "points.csv"))


def cli_directory_as_data_path(tmp_path: Path) -> None:
    (tmp_path / "points").mkdir()
    _points(tmp_path / "points", np.random.default_rng(0).normal(size=(50, 2)), "train.npy")
    build_cli(_user_file_args(tmp_path, tmp_path / "points"))


def cli_float_overflow_in_npy(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 2))
    x[7, 0] = 1e300
    build_cli(_user_file_args(tmp_path, _points(tmp_path, x)))


def cli_data_at_1e30_scale(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32) * np.float32(1e30)
    build_cli(_user_file_args(tmp_path, _points(tmp_path, x)))


class _TouchesMarker:
    """Unpickles as ``os.system("touch marker")``: a crafted data file that runs code under ``pickle.load``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return os.system, (f"touch {self.marker}",)


def _cifar_args(tmp_path: Path) -> list[str]:
    return ["fit", "--config", str(CONFIGS / "diffusion" / "cifar10.yaml"), "--trainer.accelerator", "cpu",
            "--trainer.default_root_dir", str(tmp_path / "run"), "--data.init_args.root", str(tmp_path / "cifar")]


def _crafted_cifar(tmp_path: Path) -> Path:
    write_cifar10(tmp_path / "cifar")
    marker = tmp_path / "pwned"
    with open(tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({"data": _TouchesMarker(marker), "labels": [0]}, f, protocol=2)
    return marker


def cli_crafted_cifar_folder(tmp_path: Path) -> None:
    marker = _crafted_cifar(tmp_path)
    try:
        build_cli([*_cifar_args(tmp_path), "--data.init_args.verify", "false"])
    finally:
        assert not marker.exists(), "the crafted CIFAR-10 batch ran code"


def cli_crafted_cifar_folder_md5(tmp_path: Path) -> None:
    marker = _crafted_cifar(tmp_path)
    try:
        build_cli(_cifar_args(tmp_path))  # verify: true by default
    finally:
        assert not marker.exists(), "the crafted CIFAR-10 batch ran code"


def cli_broken_image_in_image_folder(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs" / "train", n_per_class=3)
    write_image_folder(tmp_path / "imgs" / "val", n_per_class=1)
    bad = tmp_path / "imgs" / "train" / "dogs" / "1.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated inside the image data
    build_cli(["fit", "--config", str(CONFIGS / "diffusion" / "digits.yaml"), "--trainer.default_root_dir",
               str(tmp_path / "run"), "--trainer.fast_dev_run", "true", "--trainer.enable_progress_bar", "false",
               "--data", "lit_gen.data.ImageFolderDataModule", "--data.init_args.root", str(tmp_path / "imgs"),
               "--data.init_args.image_size", "8", "--data.init_args.channels", "1",
               "--data.init_args.batch_size", "6"])


def cli_missing_dataset_root(tmp_path: Path) -> None:
    build_cli(["fit", "--config", str(CONFIGS / "diffusion" / "cifar10.yaml"), "--trainer.accelerator", "cpu",
               "--trainer.default_root_dir", str(tmp_path / "run"), "--data.init_args.root", str(tmp_path / "cifar")])


def fit_data_of_another_dimension(tmp_path: Path) -> None:
    data = ArrayDataModule(_points(tmp_path, np.random.default_rng(0).normal(size=(64, 3))), batch_size=16)
    _trainer(tmp_path).fit(_ebm((2,)), datamodule=data)


def fit_float64_batches(tmp_path: Path) -> None:
    loader = DataLoader(torch.randn(64, 2, dtype=torch.float64), batch_size=16)
    _trainer(tmp_path).fit(_ebm(), train_dataloaders=loader)


def fit_integer_batches(tmp_path: Path) -> None:
    loader = DataLoader(torch.randint(0, 255, (64, 2)), batch_size=16)
    _trainer(tmp_path).fit(DiffusionModule(TimeMLP), train_dataloaders=loader)


def fit_nan_batches(tmp_path: Path) -> None:
    x = torch.randn(64, 2)
    x[3, 0] = float("nan")
    _trainer(tmp_path).fit(DiffusionModule(TimeMLP), train_dataloaders=DataLoader(x, batch_size=64))


def _checkpoint_of_diffusion(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    trainer = L.Trainer(default_root_dir=other, max_steps=1, accelerator="cpu", logger=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(DiffusionModule(TimeMLP), train_dataloaders=DataLoader(torch.randn(32, 2), batch_size=32))
    path = other / "diffusion.ckpt"
    trainer.save_checkpoint(path)
    return path


def fit_resuming_another_modules_checkpoint(tmp_path: Path) -> None:
    ckpt = _checkpoint_of_diffusion(tmp_path)
    before = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    try:
        _trainer(tmp_path).fit(_ebm(), train_dataloaders=DataLoader(torch.randn(32, 2), batch_size=16),
                               ckpt_path=ckpt)
    finally:
        assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == before, "the given checkpoint was modified"


def cli_resuming_another_modules_checkpoint(tmp_path: Path) -> None:
    build_cli(["fit", "--config", str(CONFIGS / "diffusion" / "toy2d.yaml"), "--trainer.default_root_dir",
               str(tmp_path / "other"), "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0",
               "--trainer.enable_progress_bar", "false", "--model.init_args.net.init_args.hidden", "8"])
    (ckpt,) = (tmp_path / "other").rglob("last.ckpt")
    before = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    try:
        build_cli([*_toy_args(tmp_path, "ebm"), "--ckpt_path", str(ckpt)])
    finally:
        assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == before, "the given checkpoint was modified"


def fit_missing_checkpoint(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--ckpt_path", str(tmp_path / "run" / "last.ckpt")])


def cli_resume_from_truncated_checkpoint(tmp_path: Path) -> None:
    cut = tmp_path / "cut" / "last.ckpt"
    cut.parent.mkdir()
    cut.write_bytes(_checkpoint_of_diffusion(tmp_path).read_bytes()[:2048])  # a save cut short by a kill
    build_cli([*_toy_args(tmp_path), "--ckpt_path", str(cut)])


def cli_ckpt_path_last_with_nothing_to_resume(tmp_path: Path) -> None:
    build_cli([*_toy_args(tmp_path), "--ckpt_path", "last"])


def cli_weights_from_with_ckpt_path(tmp_path: Path) -> None:
    ckpt = str(_checkpoint_of_diffusion(tmp_path))
    build_cli([*_toy_args(tmp_path), "--ckpt_path", ckpt, "--weights_from", ckpt])


# input -> (exception type, message fragment); SystemExit rows are parser errors whose message is on stderr
TABLE: list[tuple[Callable[[Path], None], type[BaseException], str]] = [
    (cli_unknown_trainer_key, SystemExit, "unrecognized arguments: --trainer.max_stepz"),
    (cli_unknown_data_key_in_yaml, SystemExit, "batch_sise"),
    (cli_wrong_type_on_command_line, SystemExit, "Parser key \"sampler_steps\""),
    (cli_wrong_type_in_yaml, SystemExit, "trainer.max_steps"),
    (cli_missing_config_file, SystemExit, "File does not exist"),
    (cli_unknown_network_class, SystemExit, "has no attribute 'NoSuchNet'"),
    (cli_unknown_module_package, SystemExit, "my_missing_project.models.Model"),
    (cli_sampler_steps_zero, ValueError, "sampler_steps must be a positive integer, got 0"),
    (cli_mcmc_steps_negative, ValueError, "mcmc_steps must be a positive number of MCMC steps, got -1"),
    (dcd_mcmc_steps_zero, ValueError, "mcmc_steps must be a positive int, got 0"),
    (langevin_zero_steps, ValueError, "num_steps must be a positive number of MCMC steps, got 0"),
    (diffusion_sample_zero_steps, ValueError, "num_steps must be a positive integer, got 0"),
    (ebm_sample_negative_steps, ValueError, "steps must be a positive number of MCMC steps, got -5"),
    (cli_empty_user_file, ValueError, "has a header row but no data rows"),
    (cli_nan_in_user_file, ValueError, "1 of 50 rows contain NaN or inf (first at row 17"),
    (cli_missing_user_file, FileNotFoundError, "data file not found"),
    (cli_missing_dataset_root, FileNotFoundError, "data not found under root="),
    (cli_csv_non_numeric_first_row, ValueError, "non-numeric value 'O.7' on line 1, column 2"),
    (cli_directory_as_data_path, IsADirectoryError, "is a directory, not a data file; it holds train.npy"),
    (cli_float_overflow_in_npy, ValueError, "1 values overflow float32 (|x| above float32's max 3.403e+38)"),
    (cli_data_at_1e30_scale, ValueError, "beyond max_abs=1e+06"),
    (cli_crafted_cifar_folder, pickle.UnpicklingError, "data_batch_1: refused to load: the pickle asks for the "
     "global posix.system"),
    (cli_crafted_cifar_folder_md5, ValueError, "data_batch_1 does not match torchvision's md5 sum"),
    (cli_broken_image_in_image_folder, ValueError, f"could not read image {os.sep}"),
    (fit_data_of_another_dimension, ValueError, "model was built for data of shape (2,)"),
    (fit_float64_batches, TypeError, "data batch has dtype torch.float64, but the model's weights are torch.float32"),
    (fit_integer_batches, TypeError, "data batch has dtype torch.int64"),
    (fit_nan_batches, FloatingPointError, "holds 1 NaN or infinite values"),
    (fit_resuming_another_modules_checkpoint, RuntimeError, "the checkpoint does not fit EBMModule"),
    (cli_resuming_another_modules_checkpoint, ValueError, "was written by lit_gen.models.DiffusionModule, but the "
     "config builds lit_gen.models.EBMModule"),
    (fit_missing_checkpoint, FileNotFoundError, "last.ckpt"),
    (cli_resume_from_truncated_checkpoint, RuntimeError, "last.ckpt is truncated or corrupt (2048 bytes"),
    (cli_ckpt_path_last_with_nothing_to_resume, FileNotFoundError, "so there is nothing to resume"),
    (cli_weights_from_with_ckpt_path, ValueError, "give either --ckpt_path"),
]


@pytest.mark.parametrize(("make", "error", "fragment"), TABLE, ids=[row[0].__name__ for row in TABLE])
def test_bad_input_gets_a_clear_error_and_leaves_no_checkpoint(
    make: Callable[[Path], None], error: type[BaseException], fragment: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(error) as info:
        make(tmp_path)
    message = capsys.readouterr().err if error is SystemExit else str(info.value)
    assert fragment in message, message[-2000:]
    if error is SystemExit:
        assert info.value.code != 0
    run = tmp_path / "run"
    assert not list(run.rglob("*.ckpt")), "a failed run left a checkpoint in its run directory"

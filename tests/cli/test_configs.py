"""Every shipped config runs through `lit-gen fit` + `test` (fast_dev_run, CPU), on small real-format data.

New configs are picked up automatically. GPU configs keep their networks but run on CPU with a tiny batch;
precision stays as configured (bf16-mixed runs on CPU too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from fakes import write_celeba, write_cifar10, write_image_folder, write_mnist, write_svhn

from lit_gen.callbacks import AtomicCheckpointIO
from lit_gen.cli import build_cli as main

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
METHOD_CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.parent.name != "trainer")
TOY_CONFIGS = [p for p in METHOD_CONFIGS if "toy2d" in p.stem]  # kernel_toy2d and toy2d_fourier too

FAKE_WRITERS = {
    "MNISTDataModule": lambda root: write_mnist(root, "MNIST"),
    "FashionMNISTDataModule": lambda root: write_mnist(root, "FashionMNIST"),
    "CIFAR10DataModule": write_cifar10,
    "SVHNDataModule": write_svhn,
    "CelebADataModule": write_celeba,
    "ImageFolderDataModule": write_image_folder,
}


def _shrink(cfg: dict[str, Any], tmp_path: Path, keep_devices: bool = False) -> dict[str, Any]:
    trainer = cfg.setdefault("trainer", {})
    if trainer.get("accelerator") == "auto":  # the GPU configs
        _shrink_widths(cfg["model"])  # GPU-sized networks: same architecture, fewer channels
    trainer.update(fast_dev_run=True, default_root_dir=str(tmp_path / "run"))
    if not keep_devices:
        trainer.update(accelerator="cpu", devices=1)
        trainer.pop("strategy", None)
        trainer.pop("num_nodes", None)
    for cb in trainer.get("callbacks") or []:
        if cb["class_path"].endswith("SamplePlotCallback"):
            cb.setdefault("init_args", {})["num_samples"] = 16
    model = cfg["model"].setdefault("init_args", {})
    for key, small in (("sampler_steps", 2), ("sample_steps", 3), ("mcmc_steps", 2), ("denoise_steps", 2)):
        if key in model:
            model[key] = small
    if cfg["model"]["class_path"].rsplit(".", 1)[-1] in ("EBMModule", "DCDModule"):  # the AIS bracket: a smoke run
        model.update(ais_chains=4, ais_steps=2)
    if cfg["model"]["class_path"].endswith(("DiffusionModule", "FlowMatchingModule")):  # test NLL: an ODE smoke run
        model.update(test_nll_samples=8, test_nll_steps=1)
    data = cfg["data"].setdefault("init_args", {})
    name = cfg["data"]["class_path"].rsplit(".", 1)[-1]
    if name in FAKE_WRITERS:
        root = tmp_path / "data"
        FAKE_WRITERS[name](root)
        data["root"] = str(root)
        data["num_workers"] = 0
        data["batch_size"] = 4
    if name in ("CIFAR10DataModule", "SVHNDataModule"):
        data["verify"] = False  # tiny re-packed files: torchvision's md5 sums of the full files cannot match
    return cfg


def _shrink_widths(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "channels" and isinstance(value, int):
                node[key] = 16
            else:
                _shrink_widths(value)
    elif isinstance(node, list):
        for item in node:
            _shrink_widths(item)


def _write(cfg: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_every_config_and_preset_writes_checkpoints_atomically() -> None:
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        plugins = (yaml.safe_load(path.read_text()).get("trainer") or {}).get("plugins") or []
        paths = [p["class_path"] if isinstance(p, dict) else p for p in plugins]
        assert "lit_gen.callbacks.AtomicCheckpointIO" in paths, path


def test_configs_exist() -> None:
    names = {str(p.relative_to(CONFIG_DIR)) for p in METHOD_CONFIGS}
    assert {"diffusion/toy2d.yaml", "diffusion/digits.yaml", "diffusion/cifar10.yaml"} <= names


def test_gpu_configs_start_on_a_cpu_machine_as_they_are(tmp_path: Path) -> None:
    """No method config names `accelerator: gpu`: the GPU configs say `auto`, so a smoke run of one starts on a
    CPU-only machine with the config's own accelerator, devices, strategy and bf16-mixed precision."""
    accelerators = {str(p.relative_to(CONFIG_DIR)): (yaml.safe_load(p.read_text()).get("trainer") or {}).get(
        "accelerator") for p in METHOD_CONFIGS}
    assert not [name for name, acc in accelerators.items() if acc == "gpu"], accelerators
    assert accelerators["diffusion/cifar10.yaml"] == "auto"
    cfg = _shrink(yaml.safe_load((CONFIG_DIR / "diffusion" / "cifar10.yaml").read_text()), tmp_path,
                  keep_devices=True)
    cli = main(["fit", "--config", _write(cfg, tmp_path)])
    assert cli.trainer.global_step == 1 and cli.trainer.precision == "bf16-mixed"
    assert type(cli.trainer.accelerator).__name__ == "CPUAccelerator"


@pytest.mark.parametrize("config", METHOD_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_fit_and_test(config: Path, tmp_path: Path) -> None:
    cfg = _shrink(yaml.safe_load(config.read_text()), tmp_path)
    cli = main(["fit", "--config", _write(cfg, tmp_path), "--test_after_fit", "true"])
    assert cli.trainer.global_step >= 1
    assert type(cli.trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    report = cli.model.last_test_report
    if cli.model.eval_metrics:
        assert np.isfinite(report["sw1"]) and np.isfinite(report["sw1_floor"])


@pytest.mark.parametrize("config", TOY_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_toy_config_trains_on_user_points_of_any_dimension(config: Path, tmp_path: Path) -> None:
    points = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32) * [1.0, 2.0, 0.5]
    np.save(tmp_path / "points.npy", points)
    cfg = _shrink(yaml.safe_load(config.read_text()), tmp_path)
    args = ["fit", "--config", _write(cfg, tmp_path), "--data", "lit_gen.data.ArrayDataModule",
            "--data.init_args.path", str(tmp_path / "points.npy"), "--data.init_args.batch_size", "32",
            "--test_after_fit", "true"]
    cli = main(args)
    assert cli.model.data_shape == (3,)
    assert cli.model.sample(5).shape == (5, 3)


def test_bad_config_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _shrink(yaml.safe_load((CONFIG_DIR / "diffusion/toy2d.yaml").read_text()), tmp_path)
    cfg["model"]["init_args"]["sampler_stepz"] = 3
    with pytest.raises(SystemExit):
        main(["fit", "--config", _write(cfg, tmp_path)])
    assert "sampler_stepz" in capsys.readouterr().err


MNIST_CONFIGS = [CONFIG_DIR / method / "mnist.yaml" for method in ("diffusion", "ebm", "dcd", "ddaebm")]


@pytest.mark.parametrize("config", MNIST_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_mnist_config_trains_class_conditional_with_one_switch(config: Path, tmp_path: Path) -> None:
    """`--data.init_args.conditional true` makes each MNIST config class-conditional (the benchmark's MNIST rows):
    the CLI links the ten classes into the model, and guided sampling of chosen classes runs."""
    cfg = _shrink(yaml.safe_load(config.read_text()), tmp_path)
    cli = main(["fit", "--config", _write(cfg, tmp_path), "--data.init_args.conditional", "true"])
    assert cli.trainer.global_step >= 1 and cli.model.num_classes == 10
    x = cli.model.sample(4, y=torch.tensor([0, 3, 7, 9]), guidance_scale=2.0)
    assert x.shape == (4, 1, 28, 28) and torch.isfinite(x).all()

"""`make gpu-check` (benchmarks/gpu_check.py), checked on CPU with its ``--tiny`` settings before any GPU sees it:
it finds every image config, trains each on synthetic files in the real formats, reports speed, memory and the last
loss, and fails, naming the config, on a non-finite loss or a crash (after running the other configs)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml

from lit_gen.data import CelebADataModule, CIFAR10DataModule, MNISTDataModule
from lit_gen.models import DiffusionModule

ROOT = Path(__file__).resolve().parents[2]
IMAGE_CONFIGS = {
    "dcd/celeba32.yaml", "dcd/mnist.yaml", "ddaebm/cifar10.yaml", "ddaebm/mnist.yaml", "diffusion/cifar10.yaml",
    "diffusion/mnist.yaml", "ebm/cifar10.yaml", "ebm/mnist.yaml", "flow/cifar10.yaml", "flow/mnist.yaml",
}


@pytest.fixture
def gpu_check(import_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return import_benchmark("gpu_check")


def test_every_image_config_is_checked(gpu_check: ModuleType) -> None:
    names = {gpu_check.config_name(p) for p in gpu_check.image_configs()}
    assert IMAGE_CONFIGS <= names
    assert not any("toy2d" in n or "digits" in n for n in names)
    assert [gpu_check.config_name(p) for p in gpu_check.select_configs(["diffusion/*"])] == [
        "diffusion/cifar10.yaml", "diffusion/mnist.yaml"]
    with pytest.raises(SystemExit, match="no image config matches"):
        gpu_check.select_configs(["nothing/here"])


@pytest.mark.parametrize(("kind", "cls", "kwargs"), [
    ("MNISTDataModule", MNISTDataModule, {}),
    ("CIFAR10DataModule", CIFAR10DataModule, {"verify": False}),
    ("CelebADataModule", CelebADataModule, {}),
])
def test_synthetic_files_are_read_by_the_data_modules(gpu_check: ModuleType, tmp_path: Path, kind: str, cls: type,
                                                      kwargs: dict[str, Any]) -> None:
    folder, write = gpu_check.SYNTHETIC[kind]
    root = tmp_path / folder
    data = {"class_path": f"lit_gen.data.{kind}", "init_args": {"root": str(root), **kwargs}}
    assert gpu_check.missing_data(data)  # nothing there yet: the check falls back to synthetic files
    write(root, True)
    assert gpu_check.missing_data(data) == []
    dm = cls(root=str(root), batch_size=2, **kwargs)
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch.shape[1:]) == dm.data_shape
    assert -1.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def _check_row(row: Any) -> None:
    assert row.status == "ok", row
    assert row.data == "synthetic" and row.batch_size == 4 and row.batches == 3
    assert math.isfinite(row.loss) and row.steps_per_s > 0 and row.images_per_s > 0
    assert row.peak_mem_gib is None  # CPU: "n/a"


def test_tiny_run_of_one_config(gpu_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    rows = gpu_check.main(["--tiny", "--configs", "diffusion/mnist", "--out", str(out)])
    assert [r.config for r in rows] == ["diffusion/mnist.yaml"]
    _check_row(rows[0])
    text = out.read_text()
    assert "on CPU, precision bf16-mixed" in text and "| diffusion/mnist.yaml | synthetic | 4 | 3 |" in text
    assert "| n/a |" in text


def test_a_non_finite_loss_fails_the_check(gpu_check: ModuleType, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Adam at lr 1e30 sends the weights to ~1e28 after one step, so the loss is inf/NaN from the second step on.
    # The module's own guard (check_finite) is switched off: the script's check of the loss must catch it.
    monkeypatch.setattr(DiffusionModule, "check_finite", lambda self, *args, **kwargs: None)
    out = tmp_path / "gpu_check.md"
    with pytest.raises(SystemExit, match=r"gpu-check failed: diffusion/mnist\.yaml \(non-finite loss\)"):
        gpu_check.main(["--tiny", "--configs", "diffusion/mnist", "--out", str(out),
                        "--extra=--model.init_args.optimizer.init_args.lr 1e30"])
    row = next(line for line in out.read_text().splitlines() if line.startswith("| diffusion/mnist.yaml"))
    assert "non-finite loss" in row and ("nan" in row or "inf" in row)


def test_a_guard_stop_or_a_crash_fails_the_check_after_the_other_configs(
    gpu_check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI is replaced by a stand-in: one config stops on the module's NaN guard, one crashes, one trains."""
    import lit_gen.cli

    ran = []

    def fake_build_cli(args: list[str]) -> Any:
        cfg = yaml.safe_load(Path(args[args.index("--config") + 1]).read_text())
        model = cfg["model"]["class_path"].rsplit(".", 1)[-1]
        ran.append(model)
        assert cfg["trainer"]["callbacks"][-1]["class_path"] == "benchmarks.gpu_check.StepTimer"
        if model == "DCDModule":
            raise FloatingPointError("the DCD loss became non-finite ([nan]) at global step 7.")
        if model == "EBMModule":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        timer = gpu_check.StepTimer(warmup=1)
        timer.batches, timer.timed_batches, timer.timed_steps, timer.batch_size, timer.seconds = 3, 2, 2, 4, 1.0
        timer.loss = gpu_check.torch.tensor(0.5)
        return SimpleNamespace(trainer=SimpleNamespace(callbacks=[timer], callback_metrics={}))

    monkeypatch.setattr(lit_gen.cli, "build_cli", fake_build_cli)
    out = tmp_path / "gpu_check.md"
    with pytest.raises(SystemExit) as failure:
        gpu_check.main(["--tiny", "--configs", "dcd/mnist", "ebm/mnist", "flow/mnist", "--out", str(out)])
    message = str(failure.value)
    assert "dcd/mnist.yaml (non-finite (the module's guard): the DCD loss became non-finite" in message
    assert "ebm/mnist.yaml (crashed: RuntimeError: CUDA error" in message
    assert "flow/mnist" not in message
    assert ran == ["DCDModule", "EBMModule", "FlowMatchingModule"]
    assert "| flow/mnist.yaml | synthetic | 4 | 3 | 2.00 | 8.0 | n/a | 0.5 | ok |" in out.read_text()


def test_without_a_gpu_the_full_check_says_to_use_tiny(gpu_check: ModuleType, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU.*--tiny"):
        gpu_check.main([])


@pytest.mark.slow
def test_tiny_check_over_every_image_config(gpu_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    rows = gpu_check.main(["--tiny", "--out", str(out)])
    assert {r.config for r in rows} >= IMAGE_CONFIGS
    for row in rows:
        _check_row(row)
    table = [line for line in out.read_text().splitlines() if line.startswith("| ") and "synthetic" in line]
    assert len(table) == len(rows)

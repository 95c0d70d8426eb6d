"""The energy rows of the MNIST image benchmark (benchmarks/bench_images_energy.py) on tiny fake MNIST files: both
configs build as shipped, DCD stops by wall-clock at the EBM's training time, and the table has every row with
finite figures. An untrained classifier stands in for the cached FD-MNIST one (its features are as good as any for
checking that FD is computed)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
from fakes import write_mnist

from lit_gen.mcmc import Langevin
from lit_gen.metrics import MNISTClassifier
from lit_gen.models import DCDModule, EBMModule
from lit_gen.nn import ConvEnergyNet, UNetEnergy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(import_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return import_benchmark("bench_images_energy")


def test_the_configs_build_as_shipped(bench: ModuleType) -> None:
    ebm = bench.module_from_config(bench.load_config(bench.CONFIGS["EBMModule"]))
    assert isinstance(ebm, EBMModule) and isinstance(ebm.energy_net, ConvEnergyNet)
    assert isinstance(ebm.sampler, Langevin) and ebm.sampler.step_size == 10.0 and ebm.mcmc_steps == 30
    assert ebm.sample_steps == 256 and ebm.chains.capacity == 8192
    dcd = bench.module_from_config(bench.load_config(bench.CONFIGS["DCDModule"]))
    assert isinstance(dcd, DCDModule) and isinstance(dcd.energy_net, UNetEnergy) and dcd.num_levels == 6
    assert dcd.mcmc_steps == 5 and dcd.sample_steps == 20


def test_shrinkage_baseline_and_psnr(bench: ModuleType) -> None:
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert bench.psnr(x + 0.1, x) == pytest.approx(10 * math.log10(4 / 0.01))
    mean = torch.zeros(1, 28, 28)
    y = torch.full((2, 1, 28, 28), 0.5)
    assert torch.allclose(bench.shrinkage(y, mean, total_var=784 * 0.3, sigma=math.sqrt(0.3)), y / 2)
    digits = bench.sklearn_digits_28()
    assert digits.shape == (1797, 1, 28, 28) and -1 <= float(digits.min()) and float(digits.max()) <= 1


def test_tiny_run_writes_every_row_and_dcd_stops_by_time(bench: ModuleType, tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST", n_train=120, n_test=24)
    torch.manual_seed(0)
    settings = bench.Settings(
        steps=2, samples=8, n_test=16, root=str(tmp_path), batch_size=16,
        model_overrides={"EBMModule": {"mcmc_steps": 3, "sample_steps": 4, "buffer_capacity": 64},
                         "DCDModule": {"mcmc_steps": 1, "sample_steps": 1}})
    out = bench.run(settings, classifier=MNISTClassifier().eval(), log=lambda _msg: None)
    ebm, dcd = out["train"]["EBMModule"], out["train"]["DCDModule"]
    assert ebm["steps"] == 2 and not ebm["stopped_by_time"]
    assert dcd["stopped_by_time"] and 1 <= dcd["steps"] < settings.dcd_max_steps
    assert dcd["seconds"] >= ebm["seconds"]

    path = tmp_path / "results" / "images_energy.md"
    text = bench.write(out, path, "python benchmarks/bench_images_energy.py --steps 2")
    assert path.read_text() == text and path.with_suffix(".png").is_file()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")
            and not line.startswith("| σ")]
    assert [r.split("|")[1].strip() for r in rows] == ["EBMModule", "DCDModule", "0.1", "0.2", "0.3"]
    for row in rows:
        numbers = [float(v) for v in re.findall(r"[-+]?\d[\d,]*\.?\d*", row.replace(",", ""))]
        assert numbers and all(math.isfinite(v) for v in numbers), row
    assert len(rows[0].split("|")) == len(rows[1].split("|")) == 13  # 11 cells: FD and the four AUROCs included
    assert all(0.0 <= out["results"][m]["ood"][k] <= 1.0 for m in out["results"] for k in bench.OOD_SETS)
    assert "Reading" in text and "nan" not in text
    assert "DCDModule by its config's `denoise_method` (tweedie" in text  # each energy through its own denoiser


def test_the_wall_clock_stops_after_the_batch_that_reaches_the_budget(bench: ModuleType) -> None:
    class FakeTrainer:
        should_stop = False
        global_step = 3

    clock = bench.WallClock(budget_s=0.0)
    trainer = FakeTrainer()
    clock.on_train_batch_start(trainer, None, None, 0)
    clock.on_train_batch_end(trainer, None, None, None, 0)
    assert trainer.should_stop and clock.stopped_by_time and clock.steps == 3
    free = bench.WallClock()
    free.on_train_batch_start(trainer := FakeTrainer(), None, None, 0)
    free.on_train_batch_end(trainer, None, None, None, 0)
    assert not trainer.should_stop and free.elapsed >= 0


def test_missing_mnist_names_the_preparation_command(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="python -m lit_gen.data.mnist_prepare --root data"):
        bench.run(bench.Settings(steps=1, samples=2, n_test=2, root=str(tmp_path / "nowhere")), log=lambda _m: None)

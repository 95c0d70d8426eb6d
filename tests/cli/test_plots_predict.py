"""Every run leaves pictures, and plain `lit-gen predict` writes its samples: plots at the end of fit and test
whatever the validation cadence, titled with the real step; pair plots for d > 2; upscaled image grids beside real
images; energy maps with a colour bar."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from matplotlib.image import imread

from lit_gen.cli import build_cli
from lit_gen.utils.plotting import ENERGY_LABEL, plot_image_grids, plot_pairs, plot_samples_2d

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def _argv_of_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sys.argv`` as the console script sees it (pytest's own arguments made LightningCLI warn)."""
    monkeypatch.setattr(sys, "argv", ["lit-gen"])


def _config(tmp_path: Path, name: str, **trainer: object) -> str:
    cfg = yaml.safe_load((CONFIGS / name).read_text())
    cfg["trainer"].update(default_root_dir=str(tmp_path / "run"), enable_progress_bar=False,
                          enable_model_summary=False, accelerator="cpu", **trainer)
    cfg["trainer"]["callbacks"][0]["init_args"].update(num_samples=16 if "digits" in name else 400)
    model = cfg["model"]["init_args"]
    model.update(sampler_steps=2, test_nll_samples=0)
    if "hidden" in model["net"].get("init_args", {}):
        model["net"]["init_args"].update(hidden=16, depth=1)
    else:
        model["net"]["init_args"].update(channels=8, num_res_blocks=1)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """200 steps of the toy diffusion config with validation far beyond the end of the run."""
    tmp_path = tmp_path_factory.mktemp("short")
    config = _config(tmp_path, "diffusion/toy2d.yaml", max_steps=200, check_val_every_n_epoch=1000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["lit-gen"])
        build_cli(["fit", "--config", config, "--data.init_args.n_train", "2000", "--data.init_args.batch_size",
                   "100"])
    return tmp_path / "run" / "lightning_logs" / "version_0", config


def test_run_shorter_than_the_validation_cadence_still_writes_a_plot(short_run: tuple[Path, str],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = short_run
    assert (run / "plots" / "samples.png").is_file()
    assert (run / "plots" / "fit_step0000200.png").is_file()  # named (and titled) with the real step


def test_test_plot_carries_the_checkpoints_step(short_run: tuple[Path, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run, config = short_run
    build_cli(["test", "--config", config, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    out = capsys.readouterr().out
    plots = sorted(p.name for p in (run.parent).rglob("test_step*.png"))
    assert plots == ["test_step0000200.png"], plots  # not step 0: the trainer's counter is not restored in test
    assert "latest sample plot" in out


def test_plain_predict_writes_npy_and_png_in_the_run_directory(short_run: tuple[Path, str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run, config = short_run
    build_cli(["predict", "--config", config, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    out = capsys.readouterr().out
    samples = np.load(run / "predictions" / "samples.npy")
    assert samples.shape == (1000, 2) and np.isfinite(samples).all()
    assert (run / "predictions" / "samples.png").is_file()
    assert str((run / "predictions").resolve()) in out


def test_image_run_writes_an_upscaled_grid_beside_real_images(tmp_path: Path) -> None:
    config = _config(tmp_path, "diffusion/digits.yaml", max_steps=2, limit_val_batches=0)
    build_cli(["fit", "--config", config])
    (png,) = (tmp_path / "run").rglob("fit_step*.png")
    height, width = imread(png).shape[:2]
    grid = 4 * 64  # 16 samples: a 4 x 4 grid of 8 x 8 digits, each upscaled to 64 px
    assert height >= grid and width >= 2 * grid, (height, width)  # two panels: samples and real digits


def test_image_figure_has_titled_sample_and_data_panels() -> None:
    fig = plot_image_grids(torch.rand(9, 1, 8, 8) * 2 - 1, torch.rand(20, 1, 8, 8) * 2 - 1, title="step 7")
    assert [ax.get_title() for ax in fig.axes] == ["samples", "data"]
    assert fig.axes[0].images[0].get_array().shape[0] >= 3 * 64  # nearest-neighbour upscaled
    assert fig._suptitle.get_text() == "step 7"


def test_vectors_of_four_dimensions_get_a_pair_plot(tmp_path: Path) -> None:
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32))
    config = _config(tmp_path, "diffusion/toy2d.yaml", max_steps=3, limit_val_batches=0)
    build_cli(["fit", "--config", config, "--data", "lit_gen.data.ArrayDataModule",
               "--data.init_args.path", str(tmp_path / "points.npy"), "--data.init_args.batch_size", "64"])
    assert list((tmp_path / "run").rglob("plots/samples.png"))
    fig = plot_pairs(torch.randn(50, 6), torch.randn(80, 6), title="t")
    assert len(fig.axes) == 16 and "first 4 of 6 coordinates" in fig._suptitle.get_text()


def test_energy_heat_map_has_a_labelled_colour_bar() -> None:
    fig = plot_samples_2d(torch.randn(50, 2), torch.randn(50, 2), energy=lambda x: 0.5 * (x**2).sum(1))
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == ENERGY_LABEL

"""The installed `lit-gen` console script, and `predict` writing samples from a checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from lit_gen.cli import build_cli

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "diffusion" / "toy2d.yaml"


def _tiny_config(tmp_path: Path) -> str:
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["trainer"].update(max_steps=3, default_root_dir=str(tmp_path / "run"), check_val_every_n_epoch=1,
                          limit_val_batches=1, enable_progress_bar=False)
    cfg["trainer"]["callbacks"][1]["init_args"]["every_n_train_steps"] = 3
    cfg["model"]["init_args"].update(sampler_steps=2)
    cfg["model"]["init_args"]["net"]["init_args"].update(hidden=16, depth=1)
    cfg["data"]["init_args"].update(name="moons", batch_size=64)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_console_script_exits_zero_and_writes_run_directory(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("lit-gen")
    assert script.exists(), "install the package (make install) so that the lit-gen entry point exists"
    proc = subprocess.run([str(script), "fit", "--config", _tiny_config(tmp_path), "--test_after_fit", "true"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SW1 of the samples" in proc.stdout and "floor" in proc.stdout
    run = tmp_path / "run" / "lightning_logs" / "version_0"
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "plots" / "samples.png").exists() and (run / "test_report.json").exists()


def test_predict_writes_samples_from_checkpoint(tmp_path: Path) -> None:
    config = _tiny_config(tmp_path)
    build_cli(["fit", "--config", config])
    ckpt = tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    out = tmp_path / "samples"
    build_cli(["predict", "--config", config, "--ckpt_path", str(ckpt),
               "--trainer.callbacks+=lit_gen.callbacks.SampleWriter", "--trainer.callbacks.num_samples", "130",
               "--trainer.callbacks.batch_size", "50", "--trainer.callbacks.output_dir", str(out)])
    samples = np.load(out / "samples.npy")
    assert samples.shape == (130, 2) and np.isfinite(samples).all()
    assert (out / "samples.png").exists()

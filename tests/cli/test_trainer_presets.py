"""Trainer presets (configs/trainer/) compose with method configs; SLURM runs pick Lightning's SLURM environment.

`tests/cli/test_configs.py` walks the method configs only; here each preset is composed with a method config
(`--config METHOD --config PRESET`, the later file wins) the way the README and the sbatch script use them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_gen.cli import LitGenCLI, build_cli
from lit_gen.data import GenerativeDataModule
from lit_gen.models import GenerativeModule

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "configs" / "trainer").glob("*.yaml"))
TOY = ROOT / "configs" / "diffusion" / "toy2d.yaml"
SBATCH = ROOT / "scripts" / "slurm" / "train.sbatch"

# 2 nodes × 4 tasks, this process being task 5 = the second task on the second node
SLURM_ENV = {"SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_NAME": "lit-gen", "SLURM_JOB_ID": "4242",
             "SLURM_NODELIST": "gpu[07-08]", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NODEID": "1"}


def _cli(args: list[str]) -> LitGenCLI:
    return LitGenCLI(GenerativeModule, GenerativeDataModule, subclass_mode_model=True, subclass_mode_data=True,
                     args=args, run=False)


def test_presets_exist() -> None:
    assert {p.name for p in PRESETS} >= {"cpu.yaml", "gpu.yaml", "ddp.yaml", "slurm.yaml"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_preset_overrides_trainer_and_keeps_method_settings(
    preset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_cli(["fit", "--config", str(TOY), "--config", str(preset), "--print_config"])
    assert info.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    method = yaml.safe_load(TOY.read_text())
    for key, value in yaml.safe_load(preset.read_text())["trainer"].items():
        if key != "plugins":
            assert resolved["trainer"][key] == value, key  # the preset wins
    # what the preset does not mention stays as the method config set it
    assert resolved["trainer"]["max_steps"] == method["trainer"]["max_steps"]
    assert [c["class_path"] for c in resolved["trainer"]["callbacks"]] == [
        c["class_path"] for c in method["trainer"]["callbacks"]]
    assert resolved["model"]["class_path"] == method["model"]["class_path"]


def test_cpu_preset_trains(tmp_path: Path) -> None:
    cli = build_cli(["fit", "--config", str(TOY), "--config", str(ROOT / "configs/trainer/cpu.yaml"),
                     "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path),
                     "--model.init_args.sampler_steps", "2"])
    assert cli.trainer.global_step == 1 and cli.trainer.precision == "32-true"


def test_simulated_slurm_job_selects_slurm_environment_with_its_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SLURM_ENV.items():
        monkeypatch.setenv(key, value)
    cli = _cli(["--config", str(TOY), "--config", str(ROOT / "configs/trainer/slurm.yaml"),
                "--trainer.accelerator", "cpu", "--trainer.precision", "32-true"])
    trainer = cli.trainer
    env = trainer.strategy.cluster_environment
    assert type(env).__name__ == "SLURMEnvironment"
    assert env.auto_requeue and env.requeue_signal == signal.SIGUSR1
    assert env.creates_processes_externally  # srun starts the ranks, Lightning must not spawn any
    assert (trainer.world_size, trainer.global_rank, trainer.node_rank, trainer.local_rank) == (8, 5, 1, 1)
    assert (trainer.num_nodes, trainer.num_devices) == (2, 4)
    assert env.main_address == "gpu07"  # rank 0 lives on the first node of the list


def test_slurm_job_shape_is_checked_against_the_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**SLURM_ENV, "SLURM_NNODES": "2"}.items():
        monkeypatch.setenv(key, value)
    args = ["--config", str(TOY), "--config", str(ROOT / "configs/trainer/slurm.yaml"),
            "--trainer.accelerator", "cpu", "--trainer.precision", "32-true"]
    trainer = _cli(args).trainer
    trainer.strategy.cluster_environment.validate_settings(num_devices=trainer.num_devices, num_nodes=2)
    trainer = _cli([*args, "--trainer.devices", "2"]).trainer  # a job of 4 tasks per node, a trainer of 2
    with pytest.raises(ValueError, match="ntasks-per-node=4"):
        trainer.strategy.cluster_environment.validate_settings(num_devices=trainer.num_devices, num_nodes=2)


def _sbatch_option(name: str) -> str:
    match = re.search(rf"^#SBATCH --{name}=(\S+)$", SBATCH.read_text(), flags=re.MULTILINE)
    assert match, f"#SBATCH --{name} missing"
    return match.group(1)


def test_sbatch_resources_match_the_slurm_preset() -> None:
    trainer = yaml.safe_load((ROOT / "configs/trainer/slurm.yaml").read_text())["trainer"]
    assert int(_sbatch_option("nodes")) == trainer["num_nodes"]
    assert int(_sbatch_option("ntasks-per-node")) == trainer["devices"]
    assert int(_sbatch_option("gpus-per-node")) == trainer["devices"]
    assert _sbatch_option("signal").startswith("SIGUSR1@")
    assert "#SBATCH --requeue" in SBATCH.read_text()


def _run_sbatch(tmp_path: Path, job_id: str) -> str:
    """Run the batch script with a stand-in `srun` that prints the command it would launch."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "srun").write_text('#!/bin/bash\necho "$@"\n')
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": job_id,
           "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SBATCH), "configs/diffusion/cifar10.yaml", "--trainer.max_steps", "7"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _checkpoint(path: Path, newer_than: Path | None = None) -> Path:
    """A small loadable checkpoint file (optionally 10 s newer than another file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(3)}, "global_step": 1}, path)
    if newer_than is not None:
        os.utime(path, (os.path.getmtime(newer_than) + 10,) * 2)
    return path


def test_sbatch_uses_a_stable_run_directory_and_resumes_from_the_newest_checkpoint(tmp_path: Path) -> None:
    first = _run_sbatch(tmp_path, "77")
    run_dir = "runs/slurm/diffusion_cifar10-77"
    assert f"--trainer.default_root_dir {run_dir}" in first and "--ckpt_path" not in first
    assert "--config configs/trainer/slurm.yaml" in first and first.rstrip().endswith("--trainer.max_steps 7")
    ckpts = tmp_path / run_dir / "lightning_logs" / "version_0" / "checkpoints"
    last = _checkpoint(ckpts / "last.ckpt")  # a node failure: only the periodic checkpoint exists
    assert f"--ckpt_path {run_dir}/lightning_logs/version_0/checkpoints/last.ckpt" in _run_sbatch(tmp_path, "77")
    _checkpoint(tmp_path / run_dir / "hpc_ckpt_1.ckpt", newer_than=last)  # written on SIGUSR1, newer
    assert f"--ckpt_path {run_dir}/hpc_ckpt_1.ckpt" in _run_sbatch(tmp_path, "77")
    assert "--ckpt_path" not in _run_sbatch(tmp_path, "78")  # another job: a fresh run directory


def test_sbatch_skips_a_truncated_checkpoint_and_prunes_old_hpc_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs/slurm/diffusion_cifar10-79"
    last = _checkpoint(run_dir / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt")
    old_hpc = _checkpoint(run_dir / "hpc_ckpt_1.ckpt", newer_than=last)
    good_hpc = _checkpoint(run_dir / "hpc_ckpt_2.ckpt", newer_than=old_hpc)
    cut = run_dir / "hpc_ckpt_3.ckpt"  # the newest file, cut short by a kill during its save
    cut.write_bytes(good_hpc.read_bytes()[:100])
    os.utime(cut, (os.path.getmtime(good_hpc) + 10,) * 2)
    out = _run_sbatch(tmp_path, "79")
    assert "--ckpt_path runs/slurm/diffusion_cifar10-79/hpc_ckpt_2.ckpt" in out
    assert sorted(p.name for p in run_dir.glob("*.ckpt")) == ["hpc_ckpt_2.ckpt", "unloadable-hpc_ckpt_3.ckpt"]

"""Resumes do what the command line says; broken or missing checkpoints get clear errors; weights-only starts.

Semantics (README, "Resuming a run"): on ``fit --ckpt_path`` the config and command line win over the values saved
in the checkpoint, for the module's settings and for the restored optimizer and LR scheduler; the differing module
values are printed. ``--weights_from`` starts a new run from a checkpoint's weights (fresh optimizer, step 0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from lit_gen.callbacks import BrokenCheckpointError
from lit_gen.cli import build_cli
from lit_gen.mcmc import Langevin
from lit_gen.models import DiffusionModule, EBMModule
from lit_gen.models.resume import apply_configured_optimizer_settings
from lit_gen.nn import EnergyMLP, TimeMLP

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _diffusion(root: Path, *extra: str):
    return build_cli([
        "fit", "--config", str(CONFIGS / "diffusion" / "toy2d.yaml"), "--trainer.default_root_dir", str(root),
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--model.init_args.net.init_args.hidden", "16", *extra,
    ])


def _last(root: Path) -> Path:
    (path,) = sorted(root.rglob("last.ckpt"))[-1:]
    return path


def test_command_line_values_win_on_resume_for_module_optimizer_and_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _diffusion(tmp_path, "--trainer.max_steps", "2", "--model.init_args.lr_scheduler.init_args.T_max", "6000")
    ckpt = _last(tmp_path)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["optimizer_states"][0]["param_groups"][0]["initial_lr"] == pytest.approx(1e-3)
    capsys.readouterr()
    cli = _diffusion(
        tmp_path, "--trainer.max_steps", "3", "--ckpt_path", str(ckpt),
        "--model.init_args.sampler_steps", "7",
        "--model.init_args.optimizer.init_args.lr", "0.0001",
        "--model.init_args.optimizer.init_args.weight_decay", "0.01",
        "--model.init_args.lr_scheduler.init_args.T_max", "100",
    )
    err = capsys.readouterr().err
    assert cli.trainer.global_step == 3  # it did resume (2 restored steps + 1)
    assert cli.model.sampler_steps == 7
    assert "model.init_args.sampler_steps: 7 (checkpoint: 35)" in err
    group = cli.trainer.optimizers[0].param_groups[0]
    assert group["initial_lr"] == pytest.approx(1e-4)
    assert group["lr"] == pytest.approx(1e-4, rel=0.01)  # the schedule scaled by 1e-4 / 1e-3, 3 steps in
    assert group["weight_decay"] == 0.01
    assert cli.trainer.lr_scheduler_configs[0].scheduler.T_max == 100
    log = caplog.text  # Lightning's info log, as its own "Restored all states" line
    assert "lr 0.001 -> 0.0001" in log and "weight_decay 0.0 -> 0.01" in log and "T_max 6000 -> 100" in log


def test_unchanged_settings_leave_the_restored_optimizer_untouched() -> None:
    module = DiffusionModule(TimeMLP, lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 5, 0.5))
    optimizer = module.configure_optimizers()["optimizer"]
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 5, 0.5)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    before = (optimizer.state_dict()["param_groups"], scheduler.state_dict())
    assert apply_configured_optimizer_settings(module, [optimizer], [scheduler]) == []
    assert (optimizer.state_dict()["param_groups"], scheduler.state_dict()) == before


def test_ckpt_path_last_with_nothing_to_resume_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no loadable last\\*.ckpt under .*nothing to resume"):
        _diffusion(tmp_path / "empty", "--trainer.max_steps", "1", "--ckpt_path", "last")


def test_ckpt_path_last_takes_the_newest_loadable_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _diffusion(tmp_path, "--trainer.max_steps", "2")
    cli = _diffusion(tmp_path, "--trainer.max_steps", "3", "--ckpt_path", "last")
    assert cli.trainer.global_step == 3
    assert "--ckpt_path last: resuming from" in capsys.readouterr().err


def test_a_truncated_checkpoint_is_named_and_the_newest_loadable_one_offered(tmp_path: Path) -> None:
    _diffusion(tmp_path, "--trainer.max_steps", "2")
    last = _last(tmp_path)
    good = last.with_name("step2.ckpt")
    shutil.copy(last, good)
    last.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BrokenCheckpointError) as info:
        _diffusion(tmp_path, "--trainer.max_steps", "3", "--ckpt_path", str(last))
    message = str(info.value)
    assert f"cannot resume from checkpoint {last}" in message and "truncated" in message
    assert f"resume with --ckpt_path {good}" in message
    with pytest.raises(FileNotFoundError, match="none loadable"):
        good.unlink()
        _diffusion(tmp_path, "--trainer.max_steps", "3", "--ckpt_path", "last")


def test_weights_from_starts_a_new_run_from_the_weights(tmp_path: Path) -> None:
    _diffusion(tmp_path / "a", "--trainer.max_steps", "3")
    ckpt = _last(tmp_path / "a")
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    # lr 0 and no schedule: the one step of the new run leaves the weights where the new run started
    cli = _diffusion(tmp_path / "b", "--trainer.max_steps", "1", "--weights_from", str(ckpt),
                     "--model.init_args.optimizer.init_args.lr", "0.0", "--model.init_args.lr_scheduler", "null")
    assert cli.trainer.global_step == 1  # step counters start at 0, not at the checkpoint's 3
    assert all(int(s["step"]) == 1 for s in cli.trainer.optimizers[0].state.values())  # a fresh Adam
    now = cli.model.state_dict()
    assert all(torch.equal(now[k], saved[k]) for k in saved if k.startswith("net."))
    with pytest.raises(ValueError, match="either --ckpt_path .* or --weights_from"):
        _diffusion(tmp_path / "c", "--trainer.max_steps", "1", "--weights_from", str(ckpt), "--ckpt_path", str(ckpt))


class _BoundAt(Callback):
    """Make the EBM's divergence guard fire at ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if trainer.global_step == self.step:
            pl_module.energy_bound = 1e-12


def _ebm_fit(tmp_path: Path, callbacks: list[Callback], sampler: Langevin | None = None) -> None:
    model = EBMModule(EnergyMLP, mcmc_steps=2, init_low=-4.0, init_high=4.0, sampler=sampler)
    trainer = L.Trainer(default_root_dir=tmp_path, max_steps=4, accelerator="cpu", logger=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        inference_mode=False, callbacks=callbacks)
    trainer.fit(model, train_dataloaders=DataLoader(torch.randn(256, 2), batch_size=32))


def test_the_divergence_message_names_a_checkpoint_only_when_one_exists(tmp_path: Path) -> None:
    with pytest.raises(FloatingPointError, match="diverged") as info:
        _ebm_fit(tmp_path / "none", [_BoundAt(0)])
    assert "No checkpoint was saved before this step" in str(info.value)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpts", save_last=True, every_n_train_steps=1)
    with pytest.raises(FloatingPointError, match="diverged") as info:
        _ebm_fit(tmp_path / "some", [saver, _BoundAt(2)])
    message = str(info.value)
    named = message.split("The last checkpoint saved before this step is ")[1].split(":")[0]
    assert Path(named).is_file() and torch.load(named, weights_only=True)["global_step"] == 2
    assert f"--ckpt_path {named}" in message and f"--weights_from {named}" in message


def test_chains_that_fly_off_or_do_not_move_warn_once(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="MCMC chains left the data's box: max \\|x\\| = ") as record:
        _ebm_fit(tmp_path / "far", [], sampler=Langevin(step_size=500.0, noise_scale=300.0))
    assert sum("left the data's box" in str(w.message) for w in record) == 1
    with pytest.warns(UserWarning, match="MCMC chains hardly moved"):
        _ebm_fit(tmp_path / "still", [], sampler=Langevin(step_size=1e-12))


def test_a_resumed_run_continues_its_own_folder_without_loader_warnings(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resume mid-epoch: the same version folder (one TensorBoard curve, checkpoints beside the old ones), the
    original config kept and the resumed one beside it, and no "not resumable" / "dirpath has changed" warning."""
    first = _diffusion(tmp_path, "--trainer.max_steps", "3")
    assert first.trainer.num_training_batches > 3  # the stop is mid-epoch
    run_dir = Path(first.trainer.log_dir)
    original = (run_dir / "config.yaml").read_text()
    recwarn.clear()
    cli = _diffusion(tmp_path, "--trainer.max_steps", "5", "--ckpt_path", "last")
    assert cli.trainer.global_step == 5
    assert Path(cli.trainer.log_dir) == run_dir
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]
    assert (run_dir / "config.yaml").read_text() == original
    assert "max_steps: 5" in (run_dir / "config_resumed_step3.yaml").read_text()
    assert len(list(run_dir.glob("events.out.tfevents.*"))) >= 1
    assert f"continuing the run in {run_dir}" in capsys.readouterr().err
    messages = [str(w.message) for w in recwarn]
    assert not [m for m in messages if "not resumable" in m or "dirpath has changed" in m], messages


def test_the_train_loader_is_stateful_and_its_state_resumes_the_order() -> None:
    """The train loader follows Lightning's stateful protocol; loading a mid-epoch state into a fresh data module's
    loader yields exactly the batches the interrupted one had left."""
    from lightning.fabric.utilities.types import _Stateful

    from lit_gen.data import ResumableDataLoader, Toy2DDataModule

    def make() -> Toy2DDataModule:
        data = Toy2DDataModule(name="8gaussians", n_train=512, n_val=64, n_test=64, batch_size=64, seed=3)
        data.setup()
        return data

    data = make()
    loader = data.train_dataloader()
    assert isinstance(loader, ResumableDataLoader) and isinstance(loader, _Stateful)
    batches = [b.clone() for b in loader]
    state = {"generator_state": loader.batch_sampler.epoch_start_state, "skip": 3, "epoch": 0}
    fresh = make().train_dataloader()
    fresh.load_state_dict(state)
    rest = list(fresh)
    assert len(rest) == len(batches) - 3
    assert all(torch.equal(a, b) for a, b in zip(rest, batches[3:], strict=True))


def test_the_lr_schedule_follows_an_overridden_max_steps(tmp_path: Path) -> None:
    """configs/diffusion/toy2d.yaml leaves the cosine's T_max out: it spans the run, whatever max_steps says."""
    cli = _diffusion(tmp_path, "--trainer.max_steps", "4")
    (scheduler,) = cli.trainer.lr_scheduler_configs
    assert scheduler.scheduler.T_max == 4
    # the cosine reached its end: eta_min
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-4)


def test_a_schedule_spanning_the_run_without_max_steps_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CosineToEndLR of DiffusionModule spans the run.*no max_steps"):
        _diffusion(tmp_path, "--trainer.max_steps", "-1", "--trainer.max_epochs", "1")


def test_an_explicit_t_max_is_kept() -> None:
    from lit_gen.optim import CosineToEndLR, span_run

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    left_out, explicit = CosineToEndLR(optimizer), CosineToEndLR(optimizer, T_max=7)
    span_run(left_out, 40)
    span_run(explicit, 40)
    assert (left_out.T_max, explicit.T_max) == (40, 7)
    with pytest.raises(ValueError, match="T_max must be a number of steps >= 1"):
        CosineToEndLR(optimizer, T_max=0)


def test_ddaebm_max_steps_counts_batches_and_its_schedules_span_them(tmp_path: Path) -> None:
    cli = build_cli([
        "fit", "--config", str(CONFIGS / "ddaebm" / "toy2d.yaml"), "--trainer.default_root_dir", str(tmp_path),
        "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.callbacks", "[]",
    ])
    assert cli.trainer.global_step == 3
    assert cli.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 3
    assert [c.scheduler.T_max for c in cli.trainer.lr_scheduler_configs] == [3, 3]
    assert [c.scheduler.last_epoch for c in cli.trainer.lr_scheduler_configs] == [3, 3]

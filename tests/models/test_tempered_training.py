"""Tempered and adapted training chains: ReplicaExchange as EBMModule's and DCDModule's training sampler (swap rate
logged, hot replicas in checkpoints, a resume that continues them bit for bit) and the opt-in dual averaging of the
training sampler's step (docs/algorithms.md#tempered-and-adapted-training-chains)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_gen.data import Toy2DDataModule
from lit_gen.mcmc import HMC, MALA, Langevin, ReplicaExchange
from lit_gen.models import DCDModule, EBMModule
from lit_gen.nn import EnergyMLP

NET = functools.partial(EnergyMLP, hidden=32, depth=2)


class Bowl(torch.nn.Module):
    """``E(x) = ½ ‖x − 2‖² / 0.35²``: curvature 8, so MALA's acceptance falls well below 0.57 at step 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x - 2.0).pow(2).sum(1) / 0.35**2


class Flat(torch.nn.Module):
    """``E(x) = 0·x``: every MALA proposal is accepted."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.0 * x.sum(1)


def _data(conditional: bool = False) -> Toy2DDataModule:
    return Toy2DDataModule("unequal_gaussians", n_train=256, n_val=64, n_test=64, batch_size=64,
                           conditional=conditional)


def _tempered(persistent: bool = True, base=None) -> ReplicaExchange:
    return ReplicaExchange(base or MALA(0.02), num_replicas=3, max_temperature=4.0, swap_every=2,
                           persistent=persistent)


def _ebm(**kw) -> EBMModule:
    args = dict(energy_net=NET, sampler=_tempered(), mcmc_steps=4, sample_steps=4, chain_init="noise")
    args.update(kw)
    return EBMModule(**args)


def _trainer(root: Path, steps: int, **kw) -> L.Trainer:
    args = dict(max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                enable_model_summary=False, limit_val_batches=0, inference_mode=False, default_root_dir=root,
                enable_checkpointing=False)
    args.update(kw)
    return L.Trainer(**args)


def test_ebm_with_replica_exchange_logs_swap_rate_and_checkpoints_hot_replicas(tmp_path: Path) -> None:
    model = _ebm()
    trainer = _trainer(tmp_path, 3, fast_dev_run=3)
    trainer.fit(model, datamodule=_data())
    rate = float(trainer.callback_metrics["train/mcmc_swap_rate"])
    assert 0.0 <= rate <= 1.0
    hot = model.sampler.hot
    assert hot is not None and hot.shape == (2, 64, 2) and bool(torch.isfinite(hot).all())
    assert float(model.sampler.swap_attempts.sum()) == 3 * 2 * 64  # 3 batches, 2 swap rounds of one pair each
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    saved = checkpoint["ebm_sampler"][0]["sampler"]  # rank 0's entry
    assert torch.equal(saved["hot"], hot.cpu()) and torch.equal(saved["swap_attempts"], model.sampler.swap_attempts)
    fresh = _ebm()
    fresh.on_load_checkpoint(checkpoint)
    assert torch.equal(fresh.sampler.hot, hot) and fresh.sampler.swap_rate == model.sampler.swap_rate
    # sample() runs a non-persistent copy: it neither uses nor overwrites the training chains' hot replicas
    assert model.sample_sampler is not model.sampler and not model.sample_sampler.persistent
    model.sample(64, steps=4)
    assert torch.equal(model.sampler.hot, hot)


def test_conditional_ebm_with_replica_exchange_tiles_the_labels(tmp_path: Path) -> None:
    model = _ebm(num_classes=4)
    trainer = _trainer(tmp_path, 2, fast_dev_run=2)
    trainer.fit(model, datamodule=_data(conditional=True))
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    x = model.sample(8, steps=4, y=torch.arange(8) % 4)
    assert x.shape == (8, 2) and bool(torch.isfinite(x).all())


def _fit(root: Path, steps: int, ckpt_path: str | None = None, every: int | None = None) -> EBMModule:
    L.seed_everything(0, verbose=False)
    model = _ebm(adapt_train_step=True, train_adapt_steps=5)
    callbacks = [] if every is None else [ModelCheckpoint(dirpath=root, every_n_train_steps=every, save_top_k=-1,
                                                          filename="{step}")]
    trainer = _trainer(root, steps, callbacks=callbacks, enable_checkpointing=every is not None)
    trainer.fit(model, datamodule=_data(), ckpt_path=ckpt_path)
    return model


def test_resume_continues_hot_replicas_and_adapted_step_bitwise(tmp_path: Path) -> None:
    full = _fit(tmp_path / "full", 8)
    _fit(tmp_path / "first", 4, every=4)
    L.seed_everything(123, verbose=False)  # everything that matters must come from the checkpoint
    resumed = _fit(tmp_path / "resumed", 8, ckpt_path=str(tmp_path / "first" / "step=4.ckpt"))
    assert torch.equal(full.sampler.hot, resumed.sampler.hot)
    assert torch.equal(full.sampler.swap_attempts, resumed.sampler.swap_attempts)
    assert torch.equal(full.sampler.swap_accepts, resumed.sampler.swap_accepts)
    assert full.sampler.sampler.step_size == resumed.sampler.sampler.step_size
    assert full.train_adaptation.state_dict() == resumed.train_adaptation.state_dict()
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert full.train_adaptation.iteration == 5 and not full.train_adapting  # frozen after 5 of the 8 batches


@pytest.mark.parametrize("make", [lambda: MALA(0.5), lambda: _tempered(base=MALA(0.5))], ids=["mala", "tempered"])
def test_adapt_train_step_moves_towards_the_target_then_freezes(make, tmp_path: Path) -> None:
    # a far too large step (acceptance ≪ 0.57) must shrink; after train_adapt_steps batches it stays put
    model = _ebm(energy_net=lambda shape: Bowl(), sampler=make(), adapt_train_step=True, train_adapt_steps=6,
                 mcmc_steps=5)
    owner = model.sampler.sampler if isinstance(model.sampler, ReplicaExchange) else model.sampler
    assert model.train_adaptation.target_accept == 0.57
    model.set_init_box(torch.full((2,), -4.0), torch.full((2,), 4.0))
    x = torch.randn(128, 2, generator=torch.Generator().manual_seed(0)) * 0.35 + 2.0
    torch.manual_seed(0)
    before = model.negative_phase(x)[1]["mcmc_acceptance"]
    for _ in range(5):
        stats = model.negative_phase(x)[1]
    assert model.train_adaptation.iteration == 6 and not model.train_adapting
    frozen = owner.step_size
    assert frozen < 0.5 and frozen == min(model.train_adaptation.final_step_size, 5.0)
    assert abs(stats["mcmc_acceptance"] - 0.57) < abs(before - 0.57)
    assert stats["mcmc_step_size"] == frozen
    for _ in range(3):
        model.negative_phase(x)
    assert owner.step_size == frozen and model.train_adaptation.iteration == 6


def test_adapted_step_is_capped_at_ten_times_the_configured_one() -> None:
    # a flat energy accepts every proposal: dual averaging alone would grow the step without bound
    model = _ebm(energy_net=lambda shape: Flat(), sampler=MALA(0.01), adapt_train_step=True, train_adapt_steps=50)
    model.set_init_box(torch.full((2,), -4.0), torch.full((2,), 4.0))
    for _ in range(20):
        model.negative_phase(torch.zeros(16, 2))
    assert model.train_adaptation.step_size > 0.1 and model.sampler.step_size == 0.1


def test_adaptation_settings_and_clear_errors() -> None:
    with pytest.raises(ValueError, match="accept/reject .* Langevin has no acceptance probability"):
        _ebm(sampler=Langevin(0.01), adapt_train_step=True)
    with pytest.raises(ValueError, match="Langevin has no acceptance"):
        _ebm(sampler=_tempered(base=Langevin(0.01)), adapt_train_step=True)
    with pytest.raises(ValueError, match="train_target_acceptance"):
        _ebm(sampler=MALA(0.1), adapt_train_step=True, train_target_acceptance=1.5)
    with pytest.raises(ValueError, match="train_adapt_steps"):
        _ebm(sampler=MALA(0.1), adapt_train_step=True, train_adapt_steps=0)
    assert _ebm(sampler=HMC(0.1, 3), adapt_train_step=True).train_adaptation.target_accept == 0.65
    assert _ebm(sampler=MALA(0.1), adapt_train_step=True,
                train_target_acceptance=0.7).train_adaptation.target_accept == 0.7
    assert _ebm(sampler=Langevin(0.01)).train_adaptation is None  # off by default: Langevin trains as before


@pytest.mark.parametrize("conditional", [False, True], ids=["plain", "conditional"])
def test_dcd_with_replica_exchange_posterior_trains_finite(conditional: bool, tmp_path: Path) -> None:
    model = DCDModule(energy_net=NET, sampler=_tempered(base=Langevin()), mcmc_steps=4, sample_steps=4,
                      num_classes=4 if conditional else None)
    level = model.level_samplers[0]
    # the posterior copy: base step c (s/a)², non-persistent (each batch has new posteriors)
    assert isinstance(level, ReplicaExchange) and not level.persistent
    assert math.isclose(level.sampler.step_size, 0.1 * 0.3**2)
    trainer = _trainer(tmp_path, 3, fast_dev_run=3)
    trainer.fit(model, datamodule=_data(conditional))
    metrics = trainer.callback_metrics
    assert math.isfinite(float(metrics["train/loss"])) and 0.0 <= float(metrics["train/mcmc_swap_rate"]) <= 1.0
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    y = torch.arange(8) % 4 if conditional else None
    model.sample_sampler = _tempered(persistent=False, base=MALA(0.01))
    assert bool(torch.isfinite(model.sample(8, steps=4, y=y)).all())

"""Every Lightning internal lit_gen reads (lit_gen/compat.py) is where lit_gen expects it in the installed Lightning.

A Lightning upgrade that moves one fails here, with the accessor's own message, before anything else breaks.
"""

from __future__ import annotations

import types

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from lit_gen.compat import (
    LightningInternalsChanged,
    batches_processed_this_epoch,
    check_cli_ckpt_hook,
    fit_dataloaders,
    loggers_write_this_step,
)
from lit_gen.models import DiffusionModule
from lit_gen.nn import TimeMLP


class _Probe(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, bool, int, int]] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.seen.append((trainer.global_step, loggers_write_this_step(trainer),
                          batches_processed_this_epoch(trainer), len(fit_dataloaders(trainer))))


def test_every_accessor_reads_the_installed_lightning(tmp_path) -> None:
    probe = _Probe()
    trainer = L.Trainer(default_root_dir=tmp_path, max_steps=6, log_every_n_steps=3, accelerator="cpu",
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=[probe], enable_checkpointing=False)
    trainer.fit(DiffusionModule(TimeMLP), train_dataloaders=DataLoader(torch.randn(64, 2), batch_size=16))
    steps = [s for s, *_ in probe.seen]
    writes = {s for s, w, *_ in probe.seen if w}
    assert steps == [1, 2, 3, 4, 5, 6]
    assert writes == {3, 6}  # after step k the flag is that of batch k (logged at steps 3 and 6, 1-based)
    assert [p for *_, p, _ in probe.seen] == [1, 2, 3, 4, 1, 2]  # 4 batches an epoch
    assert all(n == 1 for *_, n in probe.seen)
    check_cli_ckpt_hook()


def test_a_moved_internal_is_named() -> None:
    with pytest.raises(LightningInternalsChanged, match="_logger_connector.should_update_logs"):
        loggers_write_this_step(types.SimpleNamespace())
    with pytest.raises(LightningInternalsChanged, match="fit_loop.epoch_loop.batch_progress"):
        batches_processed_this_epoch(types.SimpleNamespace(fit_loop=types.SimpleNamespace()))

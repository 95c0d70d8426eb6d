"""Image datamodules continue their seeded training order when a run resumes from a checkpoint, mid-epoch too."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from fakes import write_mnist
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_gen.data import MNISTDataModule


class _Recorder(L.LightningModule):
    """Keeps every training batch; one parameter so that the optimizer has something to step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.seen.append(batch.detach().clone())
        return (self.w * batch.mean()) ** 2

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(root: Path, max_steps: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None) -> list:
    module = _Recorder()
    callbacks = [] if ckpt_dir is None else [
        ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=max_steps, save_top_k=-1, filename="{step}")
    ]
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        enable_checkpointing=ckpt_dir is not None, callbacks=callbacks)
    trainer.fit(module, MNISTDataModule(root=str(root), batch_size=8, val_fraction=0.25, seed=3),
                ckpt_path=ckpt_path)
    return module.seen


def test_vision_training_order_continues_after_mid_epoch_resume(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")  # 30 training images after the validation split: 3 full batches per epoch
    full = _fit(tmp_path, 8)
    first = _fit(tmp_path, 4, ckpt_dir=tmp_path / "ckpt")  # stops after the first batch of epoch 2
    # a different global seed: the order must come from the checkpoint, not from the process state
    torch.manual_seed(1234)
    rest = _fit(tmp_path, 8, ckpt_path=str(tmp_path / "ckpt" / "step=4.ckpt"))
    assert len(first) == 4 and len(rest) == 4
    for i, (a, b) in enumerate(zip(first + rest, full, strict=True)):
        assert torch.equal(a, b), f"batch {i} differs after resuming"
    # epochs are reshuffled (the same seed does not mean the same order every epoch), and no image repeats
    # within an epoch
    assert not torch.equal(torch.cat(full[0:3]), torch.cat(full[3:6]))
    epoch = torch.cat(full[0:3]).flatten(1)
    assert len(torch.unique(epoch, dim=0)) == 24

"""Child process of test_checkpoint_kill.py: trains forever, saving ``last.ckpt`` after every step.

``python _kill_target.py ROOT [plain]``; ``plain`` uses Lightning's own writer (a subclass, so lit_gen does not
swap it), to show the failure the atomic writer removes. The network is large enough (~40 MB checkpoints) that
most of the wall time is spent saving, so a kill at a random moment usually lands inside a save.
"""

import functools
import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import DataLoader

from lit_gen.models import DiffusionModule
from lit_gen.nn import TimeMLP


class PlainCheckpointIO(TorchCheckpointIO):
    """Lightning's writer as it is."""


def main() -> None:
    root = sys.argv[1]
    plugins = [PlainCheckpointIO()] if sys.argv[2:] == ["plain"] else None
    torch.manual_seed(0)
    model = DiffusionModule(functools.partial(TimeMLP, hidden=800, depth=4), data_shape=(2,))
    trainer = L.Trainer(
        default_root_dir=root, max_steps=100_000, accelerator="cpu", devices=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, plugins=plugins,
        callbacks=[ModelCheckpoint(dirpath=f"{root}/checkpoints", save_last=True, every_n_train_steps=1)],
    )
    trainer.fit(model, train_dataloaders=DataLoader(torch.randn(4096, 2), batch_size=64))


if __name__ == "__main__":
    main()

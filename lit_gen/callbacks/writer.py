"""Write samples from a trained model to disk: ``lit-gen predict`` with this callback.

``lit-gen predict --config run/config.yaml --ckpt_path run/checkpoints/last.ckpt \
    --trainer.callbacks+=lit_gen.callbacks.SampleWriter --trainer.callbacks.num_samples=10000``
writes ``samples.npy`` (and ``samples.png`` for 2D points and images) to ``output_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_gen.utils.plotting import plot_samples_2d, save_image_grid


class SampleWriter(BasePredictionWriter):
    """Collect the samples of ``predict`` and save them as ``.npy`` (+ ``.png`` when they can be drawn).

    Args:
        num_samples: how many samples to draw.
        batch_size: samples drawn per predict step.
        output_dir: folder for the files; defaults to the trainer's log directory.
    """

    def __init__(self, num_samples: int = 1000, batch_size: int = 500, output_dir: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        if num_samples <= 0 or batch_size <= 0:
            raise ValueError(f"num_samples and batch_size must be positive, got {num_samples}, {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.output_dir = output_dir
        self.paths: list[Path] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # the module's predict_dataloader reads these (see GenerativeModule.predict_dataloader)
        pl_module.predict_num_samples = self.num_samples
        pl_module.predict_batch_size = self.batch_size

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        samples = torch.cat([b.detach().float().cpu() for b in batches])
        if trainer.world_size > 1:
            path_suffix = f"_rank{trainer.global_rank}"
        else:
            path_suffix = ""
        out = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        npy = out / f"samples{path_suffix}.npy"
        np.save(npy, samples.numpy())
        self.paths = [npy]
        png = out / f"samples{path_suffix}.png"
        if samples.dim() == 4:
            save_image_grid(samples[:64], png)
            self.paths.append(png)
        elif samples.dim() == 2 and samples.shape[1] == 2:
            plot_samples_2d(samples, title=f"{len(samples)} samples", path=png)
            self.paths.append(png)
        print(f"wrote {len(samples)} samples to {', '.join(str(p) for p in self.paths)}")

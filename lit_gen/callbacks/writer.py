"""Write samples from a trained model to disk: what ``lit-gen predict`` does.

``lit-gen predict --config run/config.yaml --ckpt_path run/checkpoints/last.ckpt`` adds a :class:`SampleWriter`
when the config has no prediction writer, and writes ``samples.npy`` and ``samples.png`` to ``predictions/`` in the
checkpoint's run directory (or in ``trainer.default_root_dir`` for a checkpoint outside a run). Set the number of
samples or the folder by naming the writer yourself::

    lit-gen predict --config run/config.yaml --ckpt_path run/checkpoints/last.ckpt \\
        --trainer.callbacks+=lit_gen.callbacks.SampleWriter --trainer.callbacks.num_samples 10000 \\
        --trainer.callbacks.output_dir my_samples
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_gen.callbacks.plots import MAX_IMAGES, real_global_step
from lit_gen.contract import data_split, data_to_data_space
from lit_gen.utils.plotting import plot_samples


def default_output_dir(trainer: L.Trainer) -> Path:
    """``predictions/`` in the run directory of the checkpoint being used (``<run>/checkpoints/x.ckpt`` →
    ``<run>/predictions``), else in ``trainer.default_root_dir``."""
    ckpt = getattr(trainer, "ckpt_path", None)
    if ckpt and Path(ckpt).parent.name == "checkpoints":
        return Path(ckpt).resolve().parent.parent / "predictions"
    return Path(trainer.default_root_dir) / "predictions"


class SampleWriter(BasePredictionWriter):
    """Collect the samples of ``predict`` and save them as ``samples.npy`` and ``samples.png``.

    The picture is the one the plotting callback draws (:func:`lit_gen.utils.plotting.plot_samples`): 2-D points
    over the held-out data, a pair plot of the first coordinates for other vectors, a grid of (up to 64) sample
    images beside real ones.

    Args:
        num_samples: how many samples to draw.
        batch_size: samples drawn per predict step.
        output_dir: folder for the files; by default ``predictions/`` in the checkpoint's run directory
            (:func:`default_output_dir`).
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
        model_space = torch.cat([b.detach().float().cpu() for b in batches])
        samples = data_to_data_space(trainer, model_space)  # e.g. standardised user data: back to the file's units
        mapped = samples is not model_space
        suffix = f"_rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        out = Path(self.output_dir) if self.output_dir else default_output_dir(trainer)
        out.mkdir(parents=True, exist_ok=True)
        npy = out / f"samples{suffix}.npy"
        np.save(npy, samples.numpy())
        self.paths = [npy]
        png = out / f"samples{suffix}.png"
        data = data_split(trainer, "test")
        if data is not None:
            data = data_to_data_space(trainer, data[: MAX_IMAGES if samples.dim() == 4 else 2000])
        energy = getattr(pl_module, "energy_for_plot", None) if samples.dim() == 2 and samples.shape[1] == 2 else None
        if mapped:
            energy = None  # the energy lives in the model's units, the picture in the data's
        title = f"{type(pl_module).__name__} · predict · step {real_global_step(trainer)} · {len(samples)} samples"
        if plot_samples(samples, data, energy=energy, title=title, path=png) is not None:
            self.paths.append(png)
        names = " and ".join(p.name for p in self.paths)
        print(f"predict: wrote {len(samples)} samples of shape {tuple(samples.shape[1:])} to {out.resolve()} "
              f"({names}){' in the data file units (standardize: mapped back)' if mapped else ''}", file=sys.stdout)

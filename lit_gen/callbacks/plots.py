"""Sample plots: 2D scatters over the data, image grids; saved as PNG and logged to TensorBoard.

The callback only uses the shared module interface (``sample``, ``data_shape``, optional ``energy``),
so it works for every method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from lit_gen.contract import data_split
from lit_gen.utils.plotting import plot_samples_2d, save_image_grid


class SamplePlotCallback(L.Callback):
    """Draw ``num_samples`` samples after validation (every ``every_n_epochs``) and after test.

    2D data: a scatter of the samples over held-out data (with the energy as a heat map when the module
    has one). Images: a grid. Files go to ``<log_dir>/plots/{stage}_step{N}.png``; the latest is also
    copied to ``<log_dir>/plots/samples.png``.
    """

    def __init__(self, num_samples: int = 2000, every_n_epochs: int = 1, on_validation: bool = True) -> None:
        super().__init__()
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        self.num_samples = num_samples
        self.every_n_epochs = max(1, every_n_epochs)
        self.on_validation = on_validation
        self.last_path: Path | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.on_validation or trainer.sanity_checking:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs and not trainer.should_stop:
            return
        self._plot(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._plot(trainer, pl_module, "test")

    def _plot(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        shape = tuple(pl_module.data_shape)
        if len(shape) == 3:
            n = min(self.num_samples, 64)
        elif shape == (2,):
            n = self.num_samples
        else:
            return  # no picture for vectors of other sizes
        with torch.inference_mode(False), torch.enable_grad():
            samples = pl_module.eval_sample(n).detach().float().cpu()
        out_dir = Path(trainer.log_dir or trainer.default_root_dir) / "plots"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{stage}_step{trainer.global_step:07d}.png"
        if len(shape) == 3:
            grid = save_image_grid(samples, path)
            self._log_image(trainer, f"{stage}/samples", grid)
        else:
            data = _reference_data(trainer, stage, max(n, 2000))
            energy = getattr(pl_module, "energy_for_plot", None)
            fig = plot_samples_2d(samples, data, energy=energy, title=f"{type(pl_module).__name__} — step "
                                  f"{trainer.global_step}", path=path)
            self._log_figure(trainer, f"{stage}/samples", fig)
        latest = out_dir / "samples.png"
        latest.write_bytes(path.read_bytes())
        self.last_path = latest

    @staticmethod
    def _log_image(trainer: L.Trainer, tag: str, grid: Tensor) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(tag, grid, trainer.global_step)

    @staticmethod
    def _log_figure(trainer: L.Trainer, tag: str, fig: Any) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, fig, trainer.global_step, close=False)


def _reference_data(trainer: L.Trainer, stage: str, max_points: int) -> Tensor | None:
    """At most ``max_points`` points of the held-out split (a seeded subsample: the plot costs no more for a
    10⁶-point file than for a small one)."""
    data = data_split(trainer, "test" if stage == "test" else "val")
    if data is None:
        return None
    if len(data) > max_points:
        keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:max_points]
        data = data[keep.to(data.device)]
    return data.float().cpu()

"""Sample plots at the end of ``fit`` and of ``test`` (and every few validation epochs): PNGs and TensorBoard figures.

The callback only uses the shared module interface (``sample``/``eval_sample``, ``data_shape``, optional
``energy_for_plot``), so it works for every method. What it draws depends on the data
(:func:`lit_gen.utils.plotting.plot_samples`): 2-D points over held-out data (with the energy's heat map when the
module has one), a pair plot of the first 4 coordinates for other vectors, and for images a grid of samples beside
a grid of real images, upscaled to a readable size. Titles carry the module, the stage and the real training step
(read from the checkpoint in ``validate``/``test``/``predict``, where the trainer's own counter starts at 0).

A sampling trajectory is not drawn: the modules' public ``sample`` returns only the final samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from lit_gen.contract import data_split
from lit_gen.utils.plotting import plot_samples

#: images drawn in a grid (samples, and as many real images beside them)
MAX_IMAGES = 64


class SamplePlotCallback(L.Callback):
    """Draw ``num_samples`` samples at the end of ``fit`` and of ``test``, and after validation every
    ``every_n_epochs`` epochs.

    The end-of-fit plot is drawn whatever the validation cadence (a run shorter than ``check_val_every_n_epoch``,
    or without validation, still gets one), unless validation has just plotted the same step; it is skipped
    under ``fast_dev_run`` (a smoke run, which also saves no checkpoint). Files go to
    ``<log_dir>/plots/{stage}_step{N}.png``; the latest is copied to ``<log_dir>/plots/samples.png``
    (:attr:`last_path`).

    Args:
        num_samples: samples drawn per plot (image grids show at most 64).
        every_n_epochs: plot after every n-th validation epoch (and the last one).
        on_validation: plot after validation at all.
        on_fit_end: plot at the end of ``fit``.
    """

    def __init__(self, num_samples: int = 2000, every_n_epochs: int = 1, on_validation: bool = True,
                 on_fit_end: bool = True) -> None:
        super().__init__()
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        self.num_samples = num_samples
        self.every_n_epochs = max(1, every_n_epochs)
        self.on_validation = on_validation
        self.on_fit_end = on_fit_end
        self.last_path: Path | None = None
        self._last_plotted_step: int | None = None
        self._seen: dict[str, Tensor] = {}  # a first batch of real data per stage, when no split is in memory

    # ------------------------------------------------------------------ hooks
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._remember(batch, "fit")

    def on_test_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int,
                            dataloader_idx: int = 0) -> None:
        self._remember(batch, "test")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.on_validation or trainer.sanity_checking:
            return
        in_fit = trainer.state.fn == "fit"
        if in_fit and (trainer.current_epoch + 1) % self.every_n_epochs and not trainer.should_stop:
            return
        self._plot(trainer, pl_module, "val")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.on_fit_end or trainer.fast_dev_run or self._last_plotted_step == trainer.global_step:
            return
        self._plot(trainer, pl_module, "fit")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._plot(trainer, pl_module, "test")

    # ---------------------------------------------------------------- drawing
    def _remember(self, batch: Any, stage: str) -> None:
        if stage in self._seen:
            return
        if isinstance(batch, (list, tuple)) and batch:
            batch = batch[0]
        if isinstance(batch, Tensor) and batch.dim() >= 2:
            self._seen[stage] = batch[: min(len(batch), self.num_samples)].detach().float().cpu()

    def _plot(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        shape = tuple(pl_module.data_shape)
        if len(shape) not in (1, 3):
            return  # no picture for other shapes
        log_dir = trainer.log_dir  # on every rank: Lightning broadcasts it
        if not trainer.is_global_zero:
            return
        n = min(self.num_samples, MAX_IMAGES) if len(shape) == 3 else self.num_samples
        device = pl_module.device
        cuda = [device.index or 0] if device.type == "cuda" else []
        # the plot draws from forked generators: training continues with the random numbers it would have had, so
        # a run with plots is the run without them, and a checkpoint saved after the end-of-fit plot resumes exactly
        with torch.random.fork_rng(devices=cuda), torch.inference_mode(False), torch.enable_grad():
            samples = pl_module.eval_sample(n).detach().float().cpu()
        step = real_global_step(trainer)
        out_dir = Path(log_dir or trainer.default_root_dir) / "plots"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{stage}_step{step:07d}.png"
        data = self._reference_data(trainer, stage, n if len(shape) == 3 else max(n, 2000))
        energy = getattr(pl_module, "energy_for_plot", None) if shape == (2,) else None
        title = f"{type(pl_module).__name__} · {_STAGE_NAMES[stage]} · step {step} · {len(samples)} samples"
        if plot_samples(samples, data, energy=energy, title=title, path=path) is None:
            return
        self._log_image(trainer, f"{stage}/samples", path, step)
        latest = out_dir / "samples.png"
        latest.write_bytes(path.read_bytes())
        self.last_path = latest
        self._last_plotted_step = trainer.global_step

    def _reference_data(self, trainer: L.Trainer, stage: str, max_points: int) -> Tensor | None:
        """At most ``max_points`` points of the held-out split (a seeded subsample: the plot costs no more for a
        10⁶-point file than for a small one), else the first batch of real data this callback saw."""
        data = data_split(trainer, "test" if stage == "test" else "val")
        if data is None:
            data = self._seen.get(stage, self._seen.get("fit"))
        if data is None:
            return None
        if len(data) > max_points:
            keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:max_points]
            data = data[keep.to(data.device)]
        return data.float().cpu()

    @staticmethod
    def _log_image(trainer: L.Trainer, tag: str, png: Path, step: int) -> None:
        """The saved PNG to TensorBoard (read back: drawing the figure a second time costs as much as the first)."""
        loggers = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not loggers:
            return
        from matplotlib.image import imread

        image = imread(png)[..., :3]
        for logger in loggers:
            logger.experiment.add_image(tag, image, step, dataformats="HWC")


_STAGE_NAMES = {"val": "validation", "fit": "end of fit", "test": "test", "predict": "predict"}

_STEP_CACHE: dict[tuple[str, int, int], int | None] = {}


def checkpoint_global_step(path: str | Path) -> int | None:
    """The ``global_step`` a Lightning checkpoint was saved at (``None`` when the file holds none or is not a
    checkpoint that loads as data)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)  # a rewritten last.ckpt is read again
    if key not in _STEP_CACHE:
        try:
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            step = ckpt.get("global_step") if isinstance(ckpt, dict) else None
            _STEP_CACHE[key] = int(step) if step is not None else None
        except Exception:  # unreadable here: Lightning's own loading reports it
            _STEP_CACHE[key] = None
    return _STEP_CACHE[key]


def real_global_step(trainer: L.Trainer) -> int:
    """The training step of the weights in use: the trainer's own counter in ``fit`` (and after it), the
    checkpoint's in ``validate``/``test``/``predict`` with a ``ckpt_path`` (Lightning restores no loop state there,
    so the trainer's counter reads 0)."""
    ckpt_path = getattr(trainer, "ckpt_path", None)
    if trainer.state.fn != "fit" and ckpt_path:
        step = checkpoint_global_step(ckpt_path)
        if step is not None:
            return step
    return int(trainer.global_step)

"""The interface every lit_gen method shares, and the evaluation wiring built on it.

A ``GenerativeModule`` can ``sample(n, **sampler_kwargs)``; modules with an energy also implement
``energy(x)``. Validation and test compare ``n`` fresh samples with ``n`` held-out points through the
sliced Wasserstein-1 distance and the unbiased MMD² (SPEC §2) for vector data; the test report adds the
data-vs-data floor (the same metric between train and test points: what a perfect model would score)
and whatever a method adds through ``extra_test_metrics``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lit_gen.metrics import (
    MaximumMeanDiscrepancy,
    SlicedWassersteinDistance,
    mmd2_unbiased,
    sliced_wasserstein,
)
from lit_gen.models._checkpoint import state_dict_mismatch
from lit_gen.utils.rank_state import (
    capture_rng_state,
    decorrelate_rank_rngs,
    gather_to_rank_zero,
    restore_rng_state,
    select_rank,
)

NetFactory = Callable[[tuple[int, ...]], nn.Module]
"""A network class (or any callable) taking the data shape and returning the module.

In YAML, give ``class_path`` and the hyper-parameters; the data shape comes from the data module."""


def build_network(net: NetFactory | nn.Module, data_shape: Sequence[int]) -> nn.Module:
    """Instantiate ``net`` for ``data_shape`` unless it is already a module."""
    if isinstance(net, nn.Module):
        return net
    if not callable(net):
        raise TypeError(f"expected a network class, factory or nn.Module, got {type(net).__name__}")
    module = net(tuple(int(s) for s in data_shape))
    if not isinstance(module, nn.Module):
        raise TypeError(f"the network factory returned {type(module).__name__}, expected an nn.Module")
    return module


class GenerativeModule(L.LightningModule):
    """Base class of every lit_gen method: sampling interface, optimizers, evaluation and the test report.

    Args:
        data_shape: shape of one data point, e.g. ``(2,)`` or ``(1, 28, 28)``. The CLI links it from the
            data module, so configs never state it.
        optimizer: optimizer factory (``class_path``/``init_args`` in YAML).
        lr_scheduler: optional LR scheduler factory, stepped every optimizer step.
        eval_metrics: compute SW1/MMD² between samples and held-out data in validation and test (vector
            data); for grey images trained on the sklearn digits, the test report adds FD-digits (Fréchet
            distance on a small digit classifier's features, :mod:`lit_gen.metrics.digits_classifier`) and its
            floor FD(test, train).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
    ) -> None:
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        if not self.data_shape or any(s <= 0 for s in self.data_shape):
            raise ValueError(f"data_shape must be a non-empty tuple of positive sizes, got {data_shape}")
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.eval_metrics = bool(eval_metrics) and len(self.data_shape) == 1
        if self.eval_metrics:
            self.val_sw1 = SlicedWassersteinDistance()
            self.val_mmd = MaximumMeanDiscrepancy()
            self.test_sw1 = SlicedWassersteinDistance()
            self.test_mmd = MaximumMeanDiscrepancy()
        # FD-digits (model vs test, and the train-vs-test floor) for grey images trained on the sklearn digits;
        # a plain dict, so the metrics are neither sub-modules nor saved in checkpoints.
        self.fd_metrics = bool(eval_metrics) and self.is_image and self.data_shape[0] == 1
        self._fd: dict[str, Any] | None = None
        self.last_test_report: dict[str, float] = {}

    # ----------------------------------------------------------------- interface
    @property
    def is_image(self) -> bool:
        """True for (C, H, W) data."""
        return len(self.data_shape) == 3

    def sample(self, n: int, **kwargs: Any) -> Tensor:
        """Draw ``n`` samples of shape ``(n, *data_shape)``."""
        raise NotImplementedError

    def eval_sample(self, n: int) -> Tensor:
        """Samples used by validation, test and plots (the method's default sampler)."""
        return self.sample(n)

    def extra_test_metrics(self, test_data: Tensor | None) -> dict[str, float]:
        """Method-specific test figures (NLL, ...); ``test_data`` is the whole test split when in memory."""
        return {}

    def check_batch(self, batch: Tensor) -> Tensor:
        """Validate a data batch and return it as a tensor of shape ``(B, *data_shape)``."""
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if not isinstance(batch, Tensor):
            raise TypeError(f"expected a tensor batch, got {type(batch).__name__}")
        if tuple(batch.shape[1:]) != self.data_shape:
            raise ValueError(
                f"data batch has shape {tuple(batch.shape)}, but the model was built for data of shape "
                f"{self.data_shape}: check that the model's data_shape matches the data module"
            )
        weight = next(self.parameters(), None)
        if not batch.is_floating_point() or (weight is not None and batch.dtype != weight.dtype):
            want = weight.dtype if weight is not None else torch.float32
            raise TypeError(
                f"data batch has dtype {batch.dtype}, but the model's weights are {want}: give the data as {want} "
                f"(lit_gen's data modules yield float32), or set trainer.precision to match the data (64-true)"
            )
        self._last_batch = batch  # looked at by check_finite only when a loss goes non-finite
        return batch

    def logs_this_step(self) -> bool:
        """Whether Lightning's loggers write this training step's values (every ``trainer.log_every_n_steps``).

        Training steps call ``self.log`` only then: each call costs Lightning result-collection work
        (~0.2 ms on CPU, and a device sync for ``float(...)`` statistics on GPU) that is wasted on the steps whose
        values no logger writes. The progress bar shows the last logged loss in between. Outside a fit
        (no trainer attached), always True.
        """
        trainer = self._trainer
        # Lightning's own flag (its LearningRateMonitor reads it too); should it move, log every step rather than fail
        should = getattr(getattr(trainer, "_logger_connector", None), "should_update_logs", None)
        if should is None:
            return True
        return bool(should or trainer.fast_dev_run)

    def check_finite(self, value: Tensor, what: str, hint: str) -> None:
        """Stop training with a clear message when ``value`` is NaN or infinite (never patch it)."""
        if not torch.isfinite(value).all():
            batch = getattr(self, "_last_batch", None)
            if batch is not None and not torch.isfinite(batch).all():  # checked only once something failed
                bad = int((~torch.isfinite(batch)).sum())
                raise FloatingPointError(
                    f"the data batch at global step {self.global_step} holds {bad} NaN or infinite values, which "
                    f"made {what} non-finite: clean the data (remove or impute those entries; lit_gen's file "
                    f"loaders refuse them). The last good checkpoint is kept in the run directory."
                )
            raise FloatingPointError(
                f"{what} became non-finite ({value.detach().flatten()[:4].tolist()}) at global step "
                f"{self.global_step}. {hint} The last good checkpoint is kept in the run directory."
            )

    # ------------------------------------------------------------ optimization
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def predict_dataloader(self) -> Any:
        """Indices of the samples to draw; ``predict_step`` turns each batch into that many samples."""
        n = int(getattr(self, "predict_num_samples", 1000))
        batch_size = int(getattr(self, "predict_batch_size", 500))
        return torch.utils.data.DataLoader(torch.arange(n), batch_size=batch_size)

    def predict_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        """Generate ``len(batch)`` samples (``lit-gen predict`` with :class:`~lit_gen.callbacks.SampleWriter`)."""
        return self.sample(len(batch))

    def trainable_parameters(self) -> Any:
        """Parameters handed to the optimizer (EMA copies excluded)."""
        return [p for name, p in self.named_parameters() if p.requires_grad and not name.startswith("ema.")]

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``; a checkpoint of another module or network gets an error saying so."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as err:
            reason = state_dict_mismatch(self, state_dict)
            if reason is None:
                raise
            raise RuntimeError(reason) from err

    # ---------------------------------------------------------- distributed
    def setup(self, stage: str) -> None:
        """Under DDP, give each rank its own RNG streams (Lightning seeds all ranks alike; see
        :func:`lit_gen.utils.rank_state.decorrelate_rank_rngs`). Runs after the networks were built, so the
        replicas still start from the same weights. Subclasses that override it must call ``super().setup(stage)``."""
        if stage == "fit" and self._trainer is not None and self.trainer.world_size > 1:
            decorrelate_rank_rngs(self.global_rank)

    # ---------------------------------------------------------- checkpointing
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save every rank's global RNG states (torch, CUDA, NumPy, ``random``), indexed by rank.

        The modules draw their noise (diffusion ε, MCMC noise, replay-buffer restarts) from the global generators,
        which Lightning's checkpoint does not hold; without them a resumed run would not continue bit for bit.
        Subclasses that override this hook must call ``super().on_save_checkpoint(checkpoint)``.
        """
        checkpoint["rng_states"] = gather_to_rank_zero(capture_rng_state())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep this rank's saved RNG states; they are set in ``on_train_start``.

        Not earlier: the sanity-check validation and the loaders' set-up run between loading and the first
        training batch, and in the interrupted run nothing drew random numbers between the save and the next batch.
        """
        states = checkpoint.get("rng_states")
        # only when fit resumes (not load_from_checkpoint, validate or test: a new run keeps its own seed)
        resuming = self._trainer is not None and self.trainer.state.fn == "fit"
        self._pending_rng_state = (
            select_rank(states, self.global_rank, "RNG states") if states is not None and resuming else None
        )

    def on_train_start(self) -> None:
        state = getattr(self, "_pending_rng_state", None)
        if state is not None:
            restore_rng_state(state)
            self._pending_rng_state = None
            _replay_epoch_start_draws(self.trainer)

    # -------------------------------------------------------------- evaluation
    def _update_sample_metrics(self, batch: Tensor, sw1: Any, mmd: Any) -> None:
        fake = self.eval_sample(batch.shape[0]).to(batch.dtype)
        sw1.update(fake, batch)
        mmd.update(fake, batch)

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        batch = self.check_batch(batch)
        if self.eval_metrics:
            self._update_sample_metrics(batch, self.val_sw1, self.val_mmd)
            self.log("val/sw1", self.val_sw1, prog_bar=True)
            self.log("val/mmd", self.val_mmd)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        batch = self.check_batch(batch)
        if self.eval_metrics:
            self._update_sample_metrics(batch, self.test_sw1, self.test_mmd)
        if self.fd_metrics and _trained_on_digits(self):
            self._update_fd_digits(batch)

    def _update_fd_digits(self, batch: Tensor) -> None:
        """Feed FD-digits: this batch as real, as many samples as fake; the floor pairs it with train rows."""
        from lit_gen.metrics import FrechetDistance, load_digits_classifier
        from lit_gen.metrics.digits_classifier import FEATURES

        if self._fd is None:
            features = load_digits_classifier().features
            self._fd = {k: FrechetDistance(features, FEATURES) for k in ("model", "floor")}
        real = batch.detach().float().cpu()
        fake = self.eval_sample(real.shape[0]).detach().float().cpu()
        self._fd["model"].update(real, real=True)
        self._fd["model"].update(fake, real=False)
        train = _datamodule_split(self, "train")
        start = int(self._fd["floor"].fake_n)
        if train is not None and start < len(train):
            self._fd["floor"].update(real, real=True)
            self._fd["floor"].update(train[start : start + real.shape[0]].float(), real=False)

    def _fd_digits_report(self) -> dict[str, float]:
        if self._fd is None:
            return {}
        out = {"fd_digits": float(self._fd["model"].compute())}
        if self._fd["floor"].fake_n >= 2:
            out["fd_digits_floor"] = float(self._fd["floor"].compute())
        self._fd = None
        return out

    def on_test_epoch_end(self) -> None:
        report: dict[str, float] = {}
        test_data = _datamodule_split(self, "test")
        report.update(self._fd_digits_report())
        if self.eval_metrics:
            report["sw1"] = float(self.test_sw1.compute())
            report["mmd"] = float(self.test_mmd.compute())
            self.test_sw1.reset()
            self.test_mmd.reset()
            train_data = _datamodule_split(self, "train")
            if test_data is not None and train_data is not None and len(train_data) >= len(test_data):
                # the floor: what the same metric gives for a second independent draw of the data
                ref = train_data[: len(test_data)].to(test_data.device)
                report["sw1_floor"] = float(sliced_wasserstein(ref, test_data))
                report["mmd_floor"] = float(mmd2_unbiased(ref, test_data))
        report.update(self.extra_test_metrics(test_data))
        for key, value in report.items():
            self.log(f"test/{key}", value, sync_dist=False, rank_zero_only=True)
        self.last_test_report = report
        if self.trainer is not None and self.trainer.is_global_zero:
            # without a logger there is no run directory: print only (never litter the working directory)
            log_dir = self.trainer.log_dir if self.trainer.loggers else None
            write_report(report, log_dir, type(self).__name__)


def _replay_epoch_start_draws(trainer: L.Trainer) -> None:
    """After restoring the RNG at an epoch boundary, make the draws that starting the next epoch made.

    A ``DataLoader`` without its own generator draws one number from the global torch RNG each time an epoch's
    iterator is created. The interrupted run did that after saving (when the next epoch began); the resumed run
    created its iterator before ``on_train_start`` restored the saved state, so it repeats those draws here.
    Mid-epoch there is nothing to repeat: the interrupted run kept its iterator.
    """
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    if progress.processed < trainer.num_training_batches:
        return
    loader = trainer.fit_loop._combined_loader
    for dl in loader.flattened if loader is not None else []:
        if isinstance(dl, torch.utils.data.DataLoader) and dl.generator is None:
            torch.empty((), dtype=torch.int64).random_()


def _trained_on_digits(module: L.LightningModule) -> bool:
    """True when the module's data module serves the sklearn digits (or says ``digits_like = True``)."""
    from lit_gen.data.digits import DigitsDataModule

    trainer = module._trainer
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    return bool(getattr(datamodule, "digits_like", isinstance(datamodule, DigitsDataModule)))


def _datamodule_split(module: L.LightningModule, split: str) -> Tensor | None:
    trainer = module._trainer
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    getter = getattr(datamodule, "tensor", None)
    if getter is None:
        return None
    try:
        return getter(split)
    except (KeyError, ValueError, RuntimeError):
        return None


def write_report(report: dict[str, float], log_dir: str | None, title: str) -> None:
    """Print the test report as a table and save it as ``test_report.json`` / ``.md`` in ``log_dir``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} — test report")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, f"{value:.4f}" if math.isfinite(value) else str(value))
    Console().print(table)
    if log_dir is None:
        return
    out = Path(log_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "test_report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# {title} — test report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in report.items()]
    (out / "test_report.md").write_text("\n".join(lines) + "\n")

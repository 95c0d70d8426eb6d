"""The interface every lit_gen method shares, and the evaluation wiring built on it.

A ``GenerativeModule`` can ``sample(n, **sampler_kwargs)``; modules with an energy also implement
``energy(x)``. Validation and test compare ``n`` fresh samples with ``n`` held-out points through the
sliced Wasserstein-1 distance (Rabin et al. 2011; Bonneel et al. 2015) and the unbiased MMD² (Gretton et al.
2012) for vector data; the test report adds the data-vs-data floor (the same metric between train and test
points: what a perfect model would score) and whatever a method adds through ``extra_test_metrics``.

Evaluation cost does not grow with the split: the metrics see a capped, seeded random subsample of the held-out
split (``eval_max_points`` for SW1, ``mmd_max_points`` for MMD², ``val_max_points`` in validation), the model
samples only that many points, and the floor uses the same test subsample against as many train points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from lit_gen._env import relax_cuda_check_without_gpu
from lit_gen.callbacks.checkpoint_io import use_atomic_checkpoints
from lit_gen.compat import batches_processed_this_epoch, fit_dataloaders, loggers_write_this_step
from lit_gen.contract import data_digits_like, data_seed, data_split
from lit_gen.mcmc.sanity import chain_sanity_problems
from lit_gen.metrics import (
    MaximumMeanDiscrepancy,
    SlicedWassersteinDistance,
    mmd2_unbiased,
    sliced_wasserstein,
)
from lit_gen.models._checkpoint import state_dict_mismatch
from lit_gen.models.resume import apply_configured_optimizer_settings
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
        eval_max_points: at most this many test points (and as many samples) enter the test SW1, its floor and
            FD-digits. When the split is in memory (``datamodule.tensor(split)``) they are a seeded random subsample
            of it (the whole split, in order, when it fits); otherwise the first points the loader serves. Test
            batches beyond the cap are not sampled from at all, so a 10⁶-point split costs what 10⁴ points do.
        mmd_max_points: cap of the MMD² sets (O(n²) kernel evaluations): the first ``mmd_max_points`` points of
            the SW1 subsample (and of its samples), in validation and test; the MMD² floor uses the same points.
        val_max_points: cap of the validation SW1 subsample (validation runs every few epochs during training, and
            sampling, e.g. an EBM's long MCMC chain, is paid per point); drawn like the test one, fixed across
            epochs.

    The subsample is drawn from a generator seeded by the data module's ``seed`` (never the global RNG, so
    training draws are untouched), the same in every epoch and run. Under DDP the subsample is split among the
    ranks (rank r takes entries r, r + W, ... of it, W the world size), so the gathered metric states hold
    exactly the capped points, and the MMD² ones exactly the subsample's first ``mmd_max_points``. Without an
    in-memory split, each rank takes at most ceil(cap / W) points in loader order. The test report states the
    sizes used: ``eval_n_sw1``, ``eval_n_mmd``, ``eval_n_floor`` (train points of the floor) and
    ``eval_n_test_split``.
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
    ) -> None:
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        if not self.data_shape or any(s <= 0 for s in self.data_shape):
            raise ValueError(f"data_shape must be a non-empty tuple of positive sizes, got {data_shape}")
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.eval_metrics = bool(eval_metrics) and len(self.data_shape) == 1
        for name, value in (("eval_max_points", eval_max_points), ("mmd_max_points", mmd_max_points),
                            ("val_max_points", val_max_points)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(f"{name} must be an int >= 2 (points entering the metrics), got {value!r}")
        self.eval_max_points = eval_max_points
        self.mmd_max_points = mmd_max_points
        self.val_max_points = val_max_points
        self._eval_subsamples: dict[str, EvalSubsample] = {}
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
        if trainer is None:
            return True
        return loggers_write_this_step(trainer) or bool(trainer.fast_dev_run)

    def check_finite(self, value: Tensor, what: str, hint: str) -> None:
        """Stop training with a clear message when ``value`` is NaN or infinite (never patch it)."""
        if not torch.isfinite(value).all():
            batch = getattr(self, "_last_batch", None)
            if batch is not None and not torch.isfinite(batch).all():  # checked only once something failed
                bad = int((~torch.isfinite(batch)).sum())
                raise FloatingPointError(
                    f"the data batch at global step {self.global_step} holds {bad} NaN or infinite values, which "
                    f"made {what} non-finite: clean the data (remove or impute those entries; lit_gen's file "
                    f"loaders refuse them). {self.checkpoint_advice()}"
                )
            raise FloatingPointError(
                f"{what} became non-finite ({value.detach().flatten()[:4].tolist()}) at global step "
                f"{self.global_step}. {hint} {self.checkpoint_advice()}"
            )

    def checkpoint_advice(self) -> str:
        """The sentence a stopped run ends its error with: the newest checkpoint saved so far and how to go on.

        Names a checkpoint only if one exists on disk (from the trainer's ``ModelCheckpoint`` callbacks), since
        it was saved before the failing step its weights were finite; otherwise says that none was saved.
        """
        trainer = self._trainer
        paths = []
        for callback in trainer.checkpoint_callbacks if trainer is not None else []:
            for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")):
                if path and Path(path).is_file():
                    paths.append(Path(path))
        if not paths:
            return (
                "No checkpoint was saved before this step (add a ModelCheckpoint with every_n_train_steps, as the "
                "lit_gen configs do, to keep one): start a new run with the changed settings."
            )
        newest = max(paths, key=lambda p: p.stat().st_mtime_ns)
        return (
            f"The last checkpoint saved before this step is {newest}: resume from it with changed settings "
            f"(`lit-gen fit --config <the run's config.yaml> --ckpt_path {newest} "
            "--model.init_args.optimizer.init_args.lr <lower>`: values on the command line apply on resume, to the "
            f"restored optimizer too), or start a new run from its weights with `--weights_from {newest}`."
        )

    def check_chains(self, init: Tensor, final: Tensor, low: Tensor, high: Tensor) -> None:
        """Warn once per kind when training chains fly out of the data's box or do not move
        (:func:`lit_gen.mcmc.sanity.chain_sanity_problems`). Checked on the first step and on logged steps only
        (one device sync each)."""
        if self.global_step > 0 and not self.logs_this_step():
            return
        warned = self.__dict__.setdefault("_chain_warnings", set())
        for kind, message in chain_sanity_problems(init, final, low, high).items():
            if kind not in warned:
                warned.add(kind)
                rank_zero_warn(f"{message} (global step {self.global_step})")

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
        relax_cuda_check_without_gpu()  # at set-up, not at import: importing lit_gen changes no environment
        if self._trainer is not None:
            use_atomic_checkpoints(self.trainer)
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
        self._resuming = resuming

    def on_train_start(self) -> None:
        if getattr(self, "_resuming", False):
            # the configured optimizer/schedule settings win over the checkpoint's (lit_gen.models.resume)
            self._resuming = False
            changes = apply_configured_optimizer_settings(
                self, self.trainer.optimizers, [c.scheduler for c in self.trainer.lr_scheduler_configs]
            )
            if changes:
                rank_zero_info("resumed with the configured settings instead of the checkpoint's:\n  "
                               + "\n  ".join(changes))
        state = getattr(self, "_pending_rng_state", None)
        if state is not None:
            restore_rng_state(state)
            self._pending_rng_state = None
            _replay_epoch_start_draws(self.trainer)

    # -------------------------------------------------------------- evaluation
    def eval_subsample(self, split: str, batch_idx: int = 0) -> EvalSubsample:
        """This rank's share of the capped evaluation subsample of ``split`` ("val" or "test") for this epoch.

        Built at the epoch's first batch (``batch_idx == 0``) and kept until the next one; see the class
        docstring for the rule (seeded subsample of the in-memory split, split among DDP ranks).
        """
        sub = self._eval_subsamples.get(split)
        if sub is None or batch_idx == 0:
            sub = self._build_eval_subsample(split)
            self._eval_subsamples[split] = sub
        return sub

    def _build_eval_subsample(self, split: str) -> EvalSubsample:
        cap = self.val_max_points if split == "val" else self.eval_max_points
        mmd_cap = min(cap, self.mmd_max_points)
        trainer = self._trainer
        world, rank = (int(trainer.world_size), int(trainer.global_rank)) if trainer is not None else (1, 0)
        data = _datamodule_split(self, split)
        if data is None or len(data) == 0:
            return EvalSubsample(None, math.ceil(cap / world), math.ceil(mmd_cap / world), None)
        idx = subsample_indices(len(data), cap, _eval_seed(self, split))
        mine = idx[rank::world]
        # rank r's first entries r, r + W, ... below the MMD² cap: together exactly the subsample's first points
        mmd_limit = len(range(rank, min(mmd_cap, len(idx)), world))
        return EvalSubsample(data[mine], len(mine), mmd_limit, len(data))

    def _update_sample_metrics(self, batch: Tensor, sw1: Any, mmd: Any, sub: EvalSubsample | None = None) -> None:
        """Feed ``sw1`` and ``mmd`` with this step's share of the subsample ``sub`` and as many fresh samples.

        Without ``sub``, the whole batch. Once the share is used up, nothing is sampled (the step is free).
        """
        if sub is None:
            sub = EvalSubsample(None, batch.shape[0], batch.shape[0], None)
        start = sub.used
        k = min(batch.shape[0], sub.limit - start)
        if k <= 0:
            return
        if sub.rows is None:
            real = batch[:k]
        else:
            real = sub.rows[start : start + k].to(device=batch.device, dtype=batch.dtype)
        fake = self.eval_sample(k).to(batch.dtype)
        sub.used += k
        sw1.update(fake, real)
        m = min(k, sub.mmd_limit - start)
        if m > 0:
            mmd.update(fake[:m], real[:m])

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        batch = self.check_batch(batch)
        if self.eval_metrics:
            sub = self.eval_subsample("val", batch_idx)
            self._update_sample_metrics(batch, self.val_sw1, self.val_mmd, sub)
            self.log("val/sw1", self.val_sw1, prog_bar=True)
            self.log("val/mmd", self.val_mmd)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        batch = self.check_batch(batch)
        if self.eval_metrics:
            sub = self.eval_subsample("test", batch_idx)
            self._update_sample_metrics(batch, self.test_sw1, self.test_mmd, sub)
        if self.fd_metrics and _trained_on_digits(self):
            self._update_fd_digits(batch)

    def _update_fd_digits(self, batch: Tensor) -> None:
        """Feed FD-digits: this batch as real, as many samples as fake; the floor pairs it with train rows.

        At most ``eval_max_points`` test images in all (ceil(cap / W) per DDP rank, in loader order: the digits
        splits are seeded random permutations); batches beyond are not sampled from.
        """
        from lit_gen.metrics import FrechetDistance, load_digits_classifier
        from lit_gen.metrics.digits_classifier import FEATURES

        if self._fd is None:
            features = load_digits_classifier().features
            self._fd = {k: FrechetDistance(features, FEATURES) for k in ("model", "floor")}
        world = int(self.trainer.world_size) if self._trainer is not None else 1
        room = math.ceil(self.eval_max_points / world) - int(self._fd["model"].real_n)
        if room <= 0:
            return
        real = batch[:room].detach().float().cpu()
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
            # the test points the metrics saw, gathered from every rank: the floor uses exactly these
            real_sw1 = self.test_sw1.samples()[1]
            real_mmd = self.test_mmd.samples()[1]
            self.test_sw1.reset()
            self.test_mmd.reset()
            self._eval_subsamples.pop("test", None)
            n = len(real_sw1)
            sizes: dict[str, int] = {"eval_n_sw1": n, "eval_n_mmd": len(real_mmd)}
            train_data = _datamodule_split(self, "train")
            if train_data is not None and len(train_data) >= n:
                # the floor: what the same metric gives for a second independent draw of the data (an equal-size,
                # seeded random subsample of train; its first points for MMD², like the model's sets)
                ref = train_data[subsample_indices(len(train_data), n, _eval_seed(self, "train"))]
                ref = ref.to(device=real_sw1.device, dtype=real_sw1.dtype)
                report["sw1_floor"] = float(sliced_wasserstein(ref, real_sw1))
                report["mmd_floor"] = float(mmd2_unbiased(ref[: len(real_mmd)], real_mmd))
                sizes["eval_n_floor"] = n
            if test_data is not None:
                sizes["eval_n_test_split"] = len(test_data)
            report.update(sizes)
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
    if batches_processed_this_epoch(trainer) < trainer.num_training_batches:
        return
    for dl in fit_dataloaders(trainer):
        if isinstance(dl, torch.utils.data.DataLoader) and dl.generator is None:
            torch.empty((), dtype=torch.int64).random_()


@dataclass
class EvalSubsample:
    """One rank's share of the real points that enter the sample metrics in one validation or test epoch.

    ``rows``: the share, drawn from the in-memory split (``None``: take the loader's batches in order).
    ``limit``: points this rank feeds to SW1 (samples as many); ``mmd_limit``: the first that many also feed MMD².
    ``split_size``: size of the whole split when known. ``used``: points fed so far this epoch.
    """

    rows: Tensor | None
    limit: int
    mmd_limit: int
    split_size: int | None
    used: int = 0


def subsample_indices(n: int, cap: int, seed: int) -> Tensor:
    """Indices of a seeded random subsample of ``min(n, cap)`` of ``range(n)``: ``arange(n)`` when ``n <= cap``
    (all points, in order), else the first ``cap`` entries of a permutation drawn by a generator seeded with
    ``seed`` (so any prefix of it is itself a uniform random subsample)."""
    if n <= cap:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:cap]


def _eval_seed(module: L.LightningModule, split: str) -> int:
    """Seed of the evaluation subsample of ``split``: from the data module's ``seed`` (0 without one)."""
    from lit_gen.utils.seeding import SPLITS, derive_seed

    return derive_seed(data_seed(module._trainer), 0xE7A1, SPLITS.index(split))


def _trained_on_digits(module: L.LightningModule) -> bool:
    """True when the module's data module serves the sklearn digits (``digits_like``)."""
    return data_digits_like(module._trainer)


def _datamodule_split(module: L.LightningModule, split: str) -> Tensor | None:
    return data_split(module._trainer, split)


def _format_value(value: float) -> str:
    """Counts (ints, e.g. ``eval_n_sw1``) as they are, finite floats with 4 decimals, NaN/inf by name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def write_report(report: dict[str, float], log_dir: str | None, title: str) -> None:
    """Print the test report as a table and save it as ``test_report.json`` / ``.md`` in ``log_dir``.

    Counts (the evaluation sizes) are written as integers."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} — test report")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, _format_value(value))
    Console().print(table)
    if log_dir is None:
        return
    out = Path(log_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "test_report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# {title} — test report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_format_value(v)} |" for k, v in report.items()]
    (out / "test_report.md").write_text("\n".join(lines) + "\n")

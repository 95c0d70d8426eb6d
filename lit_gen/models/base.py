"""The interface every lit_gen method shares: sampling, optimizers, checking, resume, and the evaluation loop.

A ``GenerativeModule`` can ``sample(n, **sampler_kwargs)``; modules with an energy also implement ``energy(x)``.
Validation and test run the module's evaluators (:mod:`lit_gen.evaluation`, listed by ``configure_evaluators``):
SW1/MMD² against held-out data with their data-vs-data floors for vector data, FD-digits for the sklearn digits,
and whatever a method adds (probability-flow NLL, grid NLL, OOD AUROCs, denoising PSNR). The test report collects
their figures, is logged under ``test/`` and saved as ``test_report.json``/``.md`` in the run folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from lit_gen._env import relax_cuda_check_without_gpu
from lit_gen.callbacks.checkpoint_io import use_atomic_checkpoints
from lit_gen.compat import batches_processed_this_epoch, fit_dataloaders, loggers_write_this_step
from lit_gen.contract import split_batch
from lit_gen.evaluation import FDMNIST, Evaluator, FDDigits, SampleDistances, write_report
from lit_gen.mcmc.sanity import chain_sanity_problems
from lit_gen.models._checkpoint import state_dict_mismatch
from lit_gen.models.resume import apply_configured_optimizer_settings
from lit_gen.optim import span_run
from lit_gen.utils.config import RecordsInit
from lit_gen.utils.rank_state import (
    capture_rng_state,
    decorrelate_rank_rngs,
    gather_to_rank_zero,
    restore_rng_state,
    select_rank,
)

E = TypeVar("E", bound=Evaluator)

NetFactory = Callable[[tuple[int, ...]], nn.Module]
"""A network class (or any callable) taking the data shape and returning the module.

In YAML, give ``class_path`` and the hyper-parameters; the data shape comes from the data module."""


def build_network(net: NetFactory | nn.Module, data_shape: Sequence[int], num_classes: int | None = None) -> nn.Module:
    """Instantiate ``net`` for ``data_shape`` unless it is already a module; with ``num_classes = K`` the factory is
    called with ``num_classes=K`` (lit_gen's networks then take ``y`` as their last, optional forward argument)."""
    if isinstance(net, nn.Module):
        have = int(getattr(net, "num_classes", 0) or 0)
        if num_classes and have != num_classes:
            raise ValueError(f"the given network was built for num_classes={have}, but the model has "
                             f"num_classes={num_classes}: build it with num_classes={num_classes}")
        return net
    if not callable(net):
        raise TypeError(f"expected a network class, factory or nn.Module, got {type(net).__name__}")
    shape = tuple(int(s) for s in data_shape)
    if num_classes:
        try:
            module = net(shape, num_classes=num_classes)
        except TypeError as err:
            if "num_classes" not in str(err):
                raise
            raise TypeError(
                f"the network factory {getattr(net, '__name__', net)!r} takes no num_classes argument, but the model "
                f"is conditional (num_classes={num_classes}): use a lit_gen network or add num_classes to yours "
                f"(its forward then takes y=None as the last argument; docs/architecture.md#conditioning)"
            ) from err
    else:
        module = net(shape)
    if not isinstance(module, nn.Module):
        raise TypeError(f"the network factory returned {type(module).__name__}, expected an nn.Module")
    return module


def refuse_labels(owner: str, num_classes: int | None) -> None:
    """The error of a module that takes no class labels yet, when the CLI links ``data.num_classes`` into it."""
    if num_classes is not None:
        raise ValueError(
            f"{owner} does not take class labels yet (num_classes={num_classes}): set data.init_args.conditional: "
            "false, or use DiffusionModule, EBMModule, DCDModule or DDAEBMModule for a conditional model"
        )


class GenerativeModule(RecordsInit, L.LightningModule):
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

    How the capped subsample is drawn (seeded by the data module's ``seed``, split among DDP ranks) is described in
    :mod:`lit_gen.evaluation.subsample`; the test report states the sizes used (``eval_n_sw1``, ``eval_n_mmd``,
    ``eval_n_floor``, ``eval_n_test_split``).
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
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int (or None: unconditional), got {num_classes!r}")
        self.num_classes: int | None = num_classes
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
        # FD-digits (model vs test, and the train-vs-test floor) for grey images trained on the sklearn digits
        self.fd_metrics = bool(eval_metrics) and self.is_image and self.data_shape[0] == 1
        self._evaluator_list: nn.ModuleList | None = None  # built by `evaluators` (at set-up at the latest)
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

    def check_labelled_batch(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """A training batch as ``(x, y)``: ``x`` checked by :meth:`check_batch`, ``y`` the class labels (long,
        ``(B,)``, in ``[0, num_classes)``) of a conditional model, ``None`` for an unconditional one."""
        x, y = split_batch(batch)
        x = self.check_batch(x)
        name = type(self).__name__
        if y is None:
            if self.num_classes is not None:
                raise ValueError(
                    f"{name} is conditional (num_classes={self.num_classes}) but the batch has no labels: set "
                    f"data.init_args.conditional: true, or build the model without num_classes"
                )
            return x, None
        if self.num_classes is None:
            raise ValueError(
                f"the batch carries class labels but {name} was built without num_classes: set the model's "
                f"num_classes (lit-gen links it from data.num_classes) or data.init_args.conditional: false"
            )
        return x, self.check_labels(y, x.shape[0])

    def check_labels(self, y: Tensor | int, n: int) -> Tensor:
        """``y`` (an int, or ``(n,)`` integers) as a long tensor ``(n,)`` on the module's device, each in
        ``[0, num_classes)``; a clear error for an unconditional model, a wrong shape or a label out of range."""
        name = type(self).__name__
        if self.num_classes is None:
            raise ValueError(f"{name} was built without num_classes: it takes no class labels (drop y, or train a "
                             f"conditional model with data.init_args.conditional: true)")
        y = torch.as_tensor(y, device=self.device)
        if y.dim() == 0:
            y = y.expand(n)
        if y.is_floating_point() or y.dtype == torch.bool or y.shape != (n,):
            raise ValueError(f"class labels must be {n} integers (shape ({n},)) or one int, got dtype {y.dtype} and "
                             f"shape {tuple(y.shape)}")
        bad = (y < 0) | (y >= self.num_classes)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"class label {int(y[i])} (entry {i}) is out of range for num_classes="
                             f"{self.num_classes}: labels must lie in [0, {self.num_classes})")
        return y.long()

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
        span_run(scheduler, self._trainer.max_steps if self._trainer is not None else None, type(self).__name__)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def predict_dataloader(self) -> Any:
        """Indices of the samples to draw; ``predict_step`` turns each batch into that many samples."""
        n = int(getattr(self, "predict_num_samples", 1000))
        batch_size = int(getattr(self, "predict_batch_size", 500))
        return torch.utils.data.DataLoader(torch.arange(n), batch_size=batch_size)

    def predict_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        """Generate ``len(batch)`` samples (``lit-gen predict`` with :class:`~lit_gen.callbacks.SampleWriter`).

        A conditional model draws class ``predict_class`` when set, else equal contiguous blocks of every class in
        order (sample i of N has class ``i·K // N``: a grid of N/K columns shows one class per row), with guidance
        weight ``predict_guidance`` when set (else the model's default)."""
        if self.num_classes is None:
            return self.sample(len(batch))
        n = int(getattr(self, "predict_num_samples", 1000))
        chosen = getattr(self, "predict_class", None)
        if chosen is not None:
            y = torch.full((len(batch),), int(chosen), dtype=torch.long)
        else:
            y = (batch.long() * self.num_classes) // max(n, 1)
        guidance = getattr(self, "predict_guidance", None)
        kwargs = {} if guidance is None else {"guidance_scale": float(guidance)}
        return self.sample(len(batch), y=y, **kwargs)

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
        self.evaluators  # noqa: B018 -- built here, before Lightning moves the module (and its metrics) to the device
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
        from lit_gen.models.hub import CONFIG_KEY, model_config

        checkpoint[CONFIG_KEY] = model_config(self)

    # ------------------------------------------------------------ reloading
    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: str | Path, map_location: Any = None, hparams_file: Any = None, strict: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Rebuild the exact model from ``checkpoint_path`` alone (:mod:`lit_gen.models.hub`); keyword arguments
        replace single constructor arguments. Checkpoints without lit_gen's configuration go to Lightning's loader."""
        from lit_gen.models.hub import CONFIG_KEY, load_checkpoint

        if hparams_file is None and CONFIG_KEY in torch.load(checkpoint_path, map_location="cpu", weights_only=True,
                                                              mmap=True):
            return load_checkpoint(cls, checkpoint_path, map_location=map_location, strict=strict, **kwargs)
        return super().load_from_checkpoint(checkpoint_path, map_location=map_location, hparams_file=hparams_file,
                                            strict=strict, **kwargs)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (:func:`lit_gen.models.hub.save_pretrained`)."""
        from lit_gen.models.hub import save_pretrained

        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> Any:
        """The module written by :meth:`save_pretrained`, in eval mode, without a trainer."""
        from lit_gen.models.hub import from_pretrained

        return from_pretrained(directory, cls, **overrides)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep this rank's saved RNG states; they are set in ``on_train_start``.

        Not earlier: the sanity-check validation and the loaders' set-up run between loading and the first
        training batch, and in the interrupted run nothing drew random numbers between the save and the next batch.
        """
        self.checkpoint_step = int(checkpoint.get("global_step", 0))  # the training step the weights are from
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
    def configure_evaluators(self) -> list[Evaluator]:
        """The evaluators of validation and test (built once, at set-up, in this order).

        The base list: :class:`~lit_gen.evaluation.FDDigits` for grey images (it reports only when the data module
        serves the sklearn digits) and :class:`~lit_gen.evaluation.SampleDistances` for vector data, when
        ``eval_metrics`` is on. A method appends its own to ``super().configure_evaluators()``.
        """
        evaluators: list[Evaluator] = []
        if self.fd_metrics:
            evaluators.append(FDDigits(self.eval_max_points))
            if self.data_shape == (1, 28, 28):  # reports only on the original MNIST files
                evaluators.append(FDMNIST(min(self.eval_max_points, 2000)))
        if self.eval_metrics:
            evaluators.append(SampleDistances(self.eval_max_points, self.mmd_max_points, self.val_max_points))
        return evaluators

    @property
    def evaluators(self) -> nn.ModuleList:
        """The module's evaluators (:meth:`configure_evaluators`), built on first use."""
        if self._evaluator_list is None:
            self._evaluator_list = nn.ModuleList(self.configure_evaluators())
        return self._evaluator_list

    def evaluator(self, kind: type[E]) -> E:
        """The first evaluator of class ``kind`` (``KeyError`` naming the ones there are when none)."""
        for ev in self.evaluators:
            if isinstance(ev, kind):
                return ev
        have = ", ".join(type(ev).__name__ for ev in self.evaluators) or "none"
        raise KeyError(f"{type(self).__name__} has no {kind.__name__} evaluator (it has: {have})")

    def _run_evaluators(self, batch: Tensor, batch_idx: int, split: str) -> None:
        _, labels = split_batch(batch)
        batch = self.check_batch(batch)
        for ev in self.evaluators:
            if split in ev.splits:
                ev.update(self, (batch, labels) if ev.needs_labels else batch, batch_idx, split)

    def on_validation_epoch_start(self) -> None:
        for ev in self.evaluators:
            ev.start(self, "val")

    def on_test_epoch_start(self) -> None:
        for ev in self.evaluators:
            ev.start(self, "test")

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self._run_evaluators(batch, batch_idx, "val")

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self._run_evaluators(batch, batch_idx, "test")

    def evaluation_report(self) -> dict[str, float]:
        """Collect every evaluator's figures for the finished test epoch (each resets itself)."""
        report: dict[str, float] = {}
        for ev in self.evaluators:
            report.update(ev.report(self))
        return report

    def run_info(self) -> dict[str, Any]:
        """What the test report was computed from: the checkpoint, the training step, and the sampler with its
        network evaluations per sample (from :meth:`sampling_info`)."""
        trainer = self._trainer
        ckpt = getattr(trainer, "ckpt_path", None) if trainer is not None else None
        info: dict[str, Any] = {
            "model": type(self).__name__,
            "checkpoint": str(ckpt) if ckpt else "weights in memory (no checkpoint loaded)",
            # outside fit, Lightning's counter is 0: the step is the loaded checkpoint's
            "global_step": int(self.global_step) or int(getattr(self, "checkpoint_step", 0)),
        }
        info.update(self.sampling_info())
        return info

    def sampling_info(self) -> dict[str, Any]:
        """The sampler behind ``eval_sample`` and its cost, for the report (methods override it)."""
        return {}

    def on_test_epoch_end(self) -> None:
        report = self.evaluation_report()
        for key, value in report.items():
            self.log(f"test/{key}", value, sync_dist=False, rank_zero_only=True)
        self.last_test_report = report
        self.last_test_info = self.run_info()
        if self.trainer is not None and self.trainer.is_global_zero:
            # without a logger there is no run directory: print only (never litter the working directory)
            log_dir = self.trainer.log_dir if self.trainer.loggers else None
            write_report(report, log_dir, type(self).__name__, info=self.last_test_info)


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

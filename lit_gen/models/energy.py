"""``EnergyModule``: what every energy method shares — the energy, the init box, the divergence guard, the report.

An energy model ``p_θ(x) ∝ exp(−E_θ(x))`` is sampled by MCMC from a box around the data (the *init box*: the
data's bounding box padded by 10 % per side, or ``[init_low, init_high]``, or ``[−1, 1]`` for images). The box and
the data's mean and standard deviation live in buffers, so they travel with ``.to(device)`` and checkpoints.
Training stops with a message when the loss or an energy is not finite or ``|E|`` exceeds ``energy_bound`` (the
guard). The energy report of ``lit-gen test``: grid NLL (2-D data; ``docs/algorithms.md#grid-nll``) next to the
true NLL of the mixtures, or OOD AUROC of ``−E`` (images; ``docs/algorithms.md#ood-auroc``).

Subclasses: :class:`~lit_gen.models.EBMModule`, :class:`~lit_gen.models.DCDModule`,
:class:`~lit_gen.models.DDAEBMModule`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.contract import data_bounds, data_split
from lit_gen.evaluation import AISLikelihood, EnergyOOD, Evaluator, GridNLL, JEMAccuracy, jem_logits_available
from lit_gen.mcmc import UniformInit
from lit_gen.models.base import GenerativeModule, NetFactory, build_network

__all__ = ["EnergyModule"]


class EnergyModule(GenerativeModule):
    """Base class of the energy methods.

    Args:
        energy_net: the energy network (class or factory taking the data shape).
        data_shape, optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points: as
            :class:`GenerativeModule`.
        init_low, init_high: the init box of long-run chains; ``None`` derives it from the data at fit start.
        energy_bound: the divergence guard's limit on ``|E|``.
        grid_limit: half-width of the 2-D grid of the grid NLL.
    """

    #: whether MCMC chains start from the init box (a module that samples otherwise trains without one)
    needs_init_box: bool = True
    #: how the guard names the model and its negative samples in its messages
    guard_name: str = "the energy"
    negatives_name: str = "samples"
    guard_hint: str = (
        "Lower the learning rate or the MCMC step size, raise alpha (energy regulariser), or enable "
        "gradient clipping (trainer.gradient_clip_val)."
    )

    def __init__(
        self,
        energy_net: NetFactory,
        data_shape: Sequence[int] = (2,),
        init_low: float | None = None,
        init_high: float | None = None,
        energy_bound: float = 1e4,
        grid_limit: float = 6.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(data_shape, optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points,
                         val_max_points, num_classes=num_classes)
        if (init_low is None) != (init_high is None):
            raise ValueError("give both init_low and init_high, or neither (then the data's bounding box is used)")
        if init_low is not None and not float(init_low) < float(init_high):
            raise ValueError(f"init_low must be below init_high, got {init_low} and {init_high}")
        self.energy_net = build_network(energy_net, self.data_shape, self.num_classes)
        self.configure_ais(64, 200, 0.05)
        self.energy_bound = float(energy_bound)
        self.grid_limit = float(grid_limit)
        self.register_buffer("box_low", torch.full(self.data_shape, -1.0))
        self.register_buffer("box_high", torch.full(self.data_shape, 1.0))
        self.register_buffer("data_mean", torch.zeros(self.data_shape))
        self.register_buffer("data_std", torch.ones(self.data_shape))
        self.register_buffer("stats_ready", torch.tensor(False))
        # a loaded state dict may bring an init box: hand it on (the buffers are updated in place)
        self.register_load_state_dict_post_hook(_after_state_load)
        if init_low is not None:
            low, high = float(init_low), float(init_high)
            self.set_init_box(torch.full(self.data_shape, low), torch.full(self.data_shape, high))
        elif self.is_image:
            self.set_init_box(-torch.ones(self.data_shape), torch.ones(self.data_shape))

    # ------------------------------------------------------------------ energy
    def energy(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``E(x)``, or ``E(x, y)`` of a conditional model (``y``: labels ``(B,)``; ``None``: the null class),
        shape ``(B,)``."""
        return self.energy_net(x) if y is None else self.energy_net(x, y=y)

    def energy_for_plot(self, x: Tensor) -> Tensor:
        """The energy of data points drawn by the plotting callback's heat map (detached, float32)."""
        return self.energy(x.to(self.device)).detach().float()

    def ood_score(self, x: Tensor) -> Tensor:
        """Out-of-distribution score ``−E(x)``: higher means more typical of the training data."""
        return -self.energy_for_plot(x)

    # ---------------------------------------------------------------- init box
    @property
    def init_box(self) -> tuple[Tensor, Tensor] | None:
        """``(low, high)`` of the init box, or ``None`` before it is known."""
        return (self.box_low, self.box_high) if bool(self.stats_ready) else None

    def set_init_box(self, low: Tensor, high: Tensor, data: Tensor | None = None) -> None:
        """Set the init box, and the data's mean/std (from ``data``, else the uniform moments of the box)."""
        self.box_low.copy_(low.reshape(self.data_shape))
        self.box_high.copy_(high.reshape(self.data_shape))
        if data is not None and len(data) > 1:
            self.data_mean.copy_(data.mean(0).reshape(self.data_shape))
            self.data_std.copy_(data.std(0).reshape(self.data_shape))
        else:  # moments of the uniform distribution on the box
            self.data_mean.copy_((self.box_low + self.box_high) / 2)
            self.data_std.copy_((self.box_high - self.box_low) / math.sqrt(12.0))
        self.stats_ready.fill_(True)
        self.on_init_box_set()

    def on_init_box_set(self) -> None:
        """Hook called after the init box changed (e.g. to hand it to the training chains)."""

    def require_init_box(self) -> None:
        """Raise when the init box is not known yet."""
        if not bool(self.stats_ready):
            raise RuntimeError(
                "the MCMC init box is unknown (the data range is unknown): fit the model on a data module first, "
                "or set init_low/init_high"
            )

    def init_distribution(self) -> UniformInit:
        """Uniform distribution on the init box (long-run sampling, noise-started chains)."""
        self.require_init_box()
        return UniformInit(self.box_low, self.box_high)

    def on_fit_start(self) -> None:
        """Derive the init box (padded bounding box) and data moments from the data module's training split."""
        data = data_split(self.trainer, "train")
        data = data.to(self.device) if data is not None else None
        if data is not None and tuple(data.shape[1:]) != self.data_shape:
            data = None  # data of another shape: the first batch's shape check names the mismatch
        if bool(self.stats_ready):
            if data is not None and len(data) > 1:
                self.data_mean.copy_(data.mean(0).reshape(self.data_shape))
                self.data_std.copy_(data.std(0).reshape(self.data_shape))
            self.on_init_box_set()  # the buffers may have moved to another device since
            return
        bounds = data_bounds(self.trainer)
        if bounds is None and not self.needs_init_box:
            return
        if bounds is None:
            raise RuntimeError("the data module has no bounds(); set init_low and init_high in the model")
        low, high = (b.to(self.device) for b in bounds)
        if low.numel() != math.prod(self.data_shape):
            raise ValueError(
                f"the data module's bounds have shape {tuple(low.shape)}, but the model was built for data of shape "
                f"{self.data_shape}: check that the model's data_shape matches the data module"
            )
        pad = 0.1 * (high - low)
        self.set_init_box(low - pad, high + pad, data)

    # -------------------------------------------------------------------- guard
    def guard(self, loss: Tensor | None, energies: Tensor | None) -> None:
        """Stop training when ``loss`` or the energies (data half first, negatives second) are not finite, or
        ``|E|`` exceeds ``energy_bound``; the message names the step, the energies and what to change."""
        if loss is not None:
            self.check_finite(loss, f"{self.guard_name} loss", self.guard_hint)
        if energies is None:
            return
        self.check_finite(energies, "the energies", self.guard_hint)
        peak = float(energies.abs().max())
        if peak > self.energy_bound:
            half = len(energies) // 2
            raise FloatingPointError(
                f"{self.guard_name} diverged at global step {self.global_step}: |E| reached {peak:.3g} "
                f"(bound energy_bound={self.energy_bound:g}; mean energy of data {float(energies[:half].mean()):.3g}, "
                f"of {self.negatives_name} {float(energies[half:].mean()):.3g}). {self.guard_hint} "
                f"{self.checkpoint_advice()}"
            )

    # ------------------------------------------------------------------- report
    def configure_evaluators(self) -> list[Evaluator]:
        """The base evaluators, then :meth:`energy_evaluators`."""
        return super().configure_evaluators() + self.energy_evaluators()

    def sampling_info(self) -> dict[str, Any]:
        """The long-run sampler of ``sample()`` and its steps per sample (one energy gradient each)."""
        sampler = getattr(self, "sample_sampler", None)
        steps = getattr(self, "sample_steps", None)
        info: dict[str, Any] = {}
        if sampler is not None:
            info["sampler"] = repr(sampler)
        if steps is not None:
            levels = int(getattr(self, "num_levels", 1))
            info["sample_steps"] = int(steps) * levels
        return info

    def energy_evaluators(self) -> list[Evaluator]:
        """The energy report: OOD AUROCs of ``−E`` (images) or the grid NLL with the true NLL where known (2-D
        data); nothing for other vector data."""
        evaluators: list[Evaluator] = []
        if self.is_image:
            evaluators.append(EnergyOOD())
        elif self.data_shape == (2,):
            evaluators.append(GridNLL(self.grid_limit))
        if self.data_shape != (2,) and self.ais_steps > 0:
            evaluators.append(AISLikelihood(self.ais_chains, self.ais_steps, self.ais_step_size))
        if self.num_classes is not None and jem_logits_available(self):
            evaluators.append(JEMAccuracy(self.num_classes))
        return evaluators

    def configure_ais(self, chains: int, steps: int, step_size: float) -> None:
        """Settings of the AIS NLL bracket of the test report (off with ``steps = 0``; 2-D data use the grid)."""
        if chains < 2 or steps < 0 or step_size <= 0:
            raise ValueError(f"need ais_chains >= 2, ais_steps >= 0 and ais_step_size > 0, got {chains}, {steps}, "
                             f"{step_size}")
        self.ais_chains, self.ais_steps, self.ais_step_size = int(chains), int(steps), float(step_size)


def _after_state_load(module: EnergyModule, incompatible_keys: Any) -> None:
    if bool(module.stats_ready):
        module.on_init_box_set()

"""On resume, the configured optimizer and LR-schedule settings win over the ones saved in the checkpoint.

Lightning restores an optimizer with ``optimizer.load_state_dict``, which also restores each parameter group's
hyper-parameters (``lr``, ``betas``, ``weight_decay``, ...), and a scheduler with ``scheduler.load_state_dict``,
which restores its settings (``T_max``, ``base_lrs``, ...). A run resumed with a lower learning rate (the advice
of the divergence guard) would silently keep the old one. :func:`apply_configured_optimizer_settings` builds the
module's optimizers and schedulers once more from its configuration, on the same parameters, and copies every
setting that differs into the restored ones, keeping their state (moments, step counts, the schedule's position):

- a learning rate scales the restored schedule: ``lr ← lr · lr₀' / lr₀`` with ``lr₀`` the schedule's base rate in
  the checkpoint and ``lr₀'`` the configured one, so the schedule keeps its shape from the step it reached;
- every other group setting (``betas``, ``weight_decay``, ``eps``, ``momentum``, ...) and every plain scheduler
  setting (``T_max``, ``eta_min``, ``gamma``, ...) is replaced by the configured value.

Unchanged settings are left untouched, so a plain resume stays bit-for-bit identical to the uninterrupted run.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

__all__ = ["apply_configured_optimizer_settings", "split_optimizer_config"]

# scheduler state that is progress, not configuration
_SCHEDULER_PROGRESS = {"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial",
                       "base_lrs", "optimizer", "_schedulers", "_milestones"}


def split_optimizer_config(configured: Any) -> tuple[list[torch.optim.Optimizer], list[Any]]:
    """The optimizers and LR schedulers (in order) of any form ``configure_optimizers`` may return."""
    optimizers: list[torch.optim.Optimizer] = []
    schedulers: list[Any] = []

    def scheduler_of(entry: Any) -> Any:
        return entry.get("scheduler") if isinstance(entry, dict) else entry

    def visit(item: Any) -> None:
        if item is None:
            return
        if isinstance(item, torch.optim.Optimizer):
            optimizers.append(item)
        elif isinstance(item, dict):
            visit(item.get("optimizer"))
            if item.get("lr_scheduler") is not None:
                schedulers.append(scheduler_of(item["lr_scheduler"]))
        elif (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (list, tuple))
              and isinstance(item[1], (list, tuple))):
            for opt in item[0]:
                visit(opt)
            schedulers.extend(scheduler_of(s) for s in item[1])
        elif isinstance(item, (list, tuple)):
            for entry in item:
                visit(entry)

    visit(configured)
    return optimizers, schedulers


def _plain(value: Any) -> bool:
    if isinstance(value, (numbers.Number, str, bool)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (numbers.Number, str, bool)) for v in value)


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return bool(torch.as_tensor(a).ne(torch.as_tensor(b)).any())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):  # betas come back as a list or a tuple
        return tuple(a) != tuple(b)
    return a != b


def _base_lr(group: dict[str, Any]) -> float:
    return float(group.get("initial_lr", group["lr"]))


def apply_configured_optimizer_settings(
    module: Any, optimizers: list[torch.optim.Optimizer], schedulers: list[Any]
) -> list[str]:
    """Copy the module's configured optimizer/scheduler settings into the restored ``optimizers``/``schedulers``.

    ``module.configure_optimizers()`` is called once more to read the configuration (the fresh objects are then
    dropped). Returns one line per changed setting, e.g. ``"optimizer 0, group 0: lr 0.001 -> 0.0001"``.
    Raises ``RuntimeError`` when the configuration builds another number of optimizers, groups or schedulers
    than the checkpoint holds (then the checkpoint cannot continue this configuration).
    """
    fresh_opts, fresh_scheds = split_optimizer_config(module.configure_optimizers())
    if len(fresh_opts) != len(optimizers) or len(fresh_scheds) != len(schedulers):
        raise RuntimeError(
            f"the configuration builds {len(fresh_opts)} optimizer(s) and {len(fresh_scheds)} LR scheduler(s), "
            f"the checkpoint holds {len(optimizers)} and {len(schedulers)}: resume with the configuration the run "
            "was trained with, or start a new run from the checkpoint's weights (--weights_from)"
        )
    changes: list[str] = []
    for i, (fresh, restored) in enumerate(zip(fresh_opts, optimizers, strict=True)):
        if len(fresh.param_groups) != len(restored.param_groups):
            raise RuntimeError(
                f"optimizer {i}: the configuration has {len(fresh.param_groups)} parameter groups, the checkpoint "
                f"{len(restored.param_groups)}"
            )
        for j, (new, old) in enumerate(zip(fresh.param_groups, restored.param_groups, strict=True)):
            where = f"optimizer {i} ({type(restored).__name__}), group {j}"
            new_base, old_base = _base_lr(new), _base_lr(old)
            if new_base != old_base:
                old["lr"] = old["lr"] * (new_base / old_base) if old_base != 0 else new["lr"]
                if "initial_lr" in old:
                    old["initial_lr"] = new_base
                changes.append(f"{where}: lr {old_base:g} -> {new_base:g}")
            for key, value in new.items():
                if key in ("params", "lr", "initial_lr") or key not in old:
                    continue
                if _differs(old[key], value):
                    changes.append(f"{where}: {key} {old[key]} -> {value}")
                    old[key] = value
    for k, (fresh, restored) in enumerate(zip(fresh_scheds, schedulers, strict=True)):
        where = f"LR scheduler {k} ({type(restored).__name__})"
        if hasattr(restored, "base_lrs") and hasattr(fresh, "base_lrs"):
            restored.base_lrs = list(fresh.base_lrs)
        for key, value in fresh.state_dict().items():
            if key in _SCHEDULER_PROGRESS or not _plain(value) or key not in vars(restored):
                continue
            if _differs(getattr(restored, key), value):
                changes.append(f"{where}: {key} {getattr(restored, key)} -> {value}")
                setattr(restored, key, value)
    return changes

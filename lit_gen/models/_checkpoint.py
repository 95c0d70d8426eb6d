"""A readable account of why a checkpoint's weights do not fit a module (wrong module, or another network)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def _groups(keys: set[str] | list[str]) -> str:
    """Top-level sub-module names of state-dict keys, e.g. ``net, ema`` for ``net.0.weight``, ``ema.n``."""
    return ", ".join(sorted({k.split(".", 1)[0] for k in keys})) or "(none)"


def _first(keys: set[str], n: int = 3) -> str:
    shown = sorted(keys)[:n]
    return ", ".join(shown) + (", ..." if len(keys) > n else "")


def state_dict_mismatch(module: nn.Module, state_dict: Mapping[str, Any]) -> str | None:
    """Describe how ``state_dict`` differs from ``module.state_dict()`` (keys and shapes); ``None`` if it fits."""
    own = module.state_dict()
    given = set(state_dict)
    missing, unexpected = set(own) - given, given - set(own)
    resized = {
        k for k in given & set(own)
        if hasattr(state_dict[k], "shape") and hasattr(own[k], "shape") and state_dict[k].shape != own[k].shape
    }
    if not (missing or unexpected or resized):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the module's weights are missing from it ({_first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} of its weights have no place in the module ({_first(unexpected)})")
    if resized:
        k = sorted(resized)[0]
        parts.append(
            f"{len(resized)} weights have another shape (e.g. {k}: {tuple(state_dict[k].shape)} in the checkpoint, "
            f"{tuple(own[k].shape)} in the module)"
        )
    return (
        f"the checkpoint does not fit {type(module).__name__}: " + "; ".join(parts) + ". The checkpoint holds "
        f"sub-modules [{_groups(given)}], the module has [{_groups(set(own))}]. It was written by another module "
        "or with another network configuration: load it with the config it was trained with (config.yaml in its "
        "run directory)."
    )

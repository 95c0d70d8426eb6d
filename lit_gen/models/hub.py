"""Reload a trained model in one call: from a checkpoint, a run folder, or a ``save_pretrained`` folder.

Every ``GenerativeModule`` checkpoint holds ``lit_gen_config``: the module's class and its constructor arguments as
plain data (networks and optimizers as classes with their arguments, schedules, samplers, losses and chain inits as
recorded components; :mod:`lit_gen.utils.config`). So

* ``DiffusionModule.load_from_checkpoint(path)`` rebuilds the exact model (schedule, sampler, ...), keyword
  arguments replacing single parts; an argument the checkpoint could not save (a built network without a recorded
  configuration, a lambda) must be passed again, and leaving it out is an error naming it, never a default;
* :func:`load` finds the newest loadable checkpoint of a run folder and returns the module in eval mode (sampling
  uses the EMA weights where the module has them);
* :func:`save_pretrained` / :func:`from_pretrained` write and read ``config.json`` + ``model.safetensors``: the
  weights in a format that holds only tensors, loadable without Lightning's trainer.

Everything is read without running code from the file: checkpoints with ``torch.load(weights_only=True)``,
weights with safetensors, and the classes a configuration names only under the guard of
:func:`lit_gen.utils.config.resolve_class`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from lit_gen.utils.config import ConfigError, describe, rebuild, resolve_class

__all__ = ["CONFIG_KEY", "from_pretrained", "load", "load_checkpoint", "model_config", "save_pretrained"]

CONFIG_KEY = "lit_gen_config"
_UNSAVED = "__unsaved__"


def model_config(module: Any) -> dict[str, Any]:
    """``{"class_path", "init_args"}`` of ``module``; arguments that cannot be plain data are marked unsaved."""
    init_args: dict[str, Any] = {}
    for name, value in module.init_config().items():
        try:
            init_args[name] = describe(value, name)
        except ConfigError as err:
            init_args[name] = {_UNSAVED: str(err)}
    return {"class_path": f"{type(module).__module__}.{type(module).__qualname__}", "init_args": init_args}


def _build(config: dict[str, Any], expected: type, overrides: dict[str, Any], source: str) -> Any:
    cls = resolve_class(config["class_path"])
    if not issubclass(cls, expected):
        raise ConfigError(f"{source} holds a {cls.__name__}, not a {expected.__name__}: load it with "
                          f"{cls.__name__}.load_from_checkpoint or lit_gen.load")
    kwargs: dict[str, Any] = {}
    missing = []
    for name, value in config["init_args"].items():
        if name in overrides:
            continue
        if isinstance(value, dict) and _UNSAVED in value:
            missing.append(f"{name} ({value[_UNSAVED]})")
            continue
        kwargs[name] = rebuild(value)
    if missing:
        raise ConfigError(f"{source} does not hold everything {cls.__name__} needs; pass again: " + "; ".join(missing))
    return cls(**kwargs, **overrides)


def load_checkpoint(cls: type, path: str | os.PathLike, map_location: Any = None, strict: bool = True,
                    **overrides: Any) -> Any:
    """Rebuild a module of class ``cls`` (or a subclass named by the checkpoint) from ``path``; see the module doc."""
    ckpt = torch.load(path, map_location=map_location or "cpu", weights_only=True)
    config = ckpt.get(CONFIG_KEY)
    if config is None:
        raise ConfigError(f"{path} has no {CONFIG_KEY!r} (written by an older lit_gen): pass every component as a "
                          f"keyword argument to load_from_checkpoint")
    module = _build(config, cls, overrides, str(path))
    module.on_load_checkpoint(ckpt)
    module.load_state_dict(ckpt["state_dict"], strict=strict)
    if map_location is not None:
        module.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return module


def _find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    from lit_gen.utils.checkpoints import newest_loadable

    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a checkpoint file nor a run folder")
    last = sorted(path.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in last:
        from lit_gen.utils.checkpoints import checkpoint_problem

        if checkpoint_problem(candidate) is None:
            return candidate
    found = newest_loadable([path])
    if found is None:
        raise FileNotFoundError(f"no loadable checkpoint (*.ckpt) below {path}: train first, or give the file")
    return found


def load(path: str | os.PathLike, map_location: Any = None) -> Any:
    """The module saved at ``path``: a ``.ckpt`` file, a run folder (its newest loadable ``last.ckpt``, else its
    newest checkpoint), or a :func:`save_pretrained` folder; in eval mode."""
    from lit_gen.models.base import GenerativeModule

    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        module = from_pretrained(path, GenerativeModule)
    else:
        module = load_checkpoint(GenerativeModule, _find_checkpoint(path), map_location=map_location)
    return module.eval()


def save_pretrained(module: Any, directory: str | os.PathLike) -> Path:
    """Write ``config.json`` (the module's configuration) and ``model.safetensors`` (its state dict) to
    ``directory``."""
    from safetensors.torch import save_file

    config = model_config(module)
    unsaved = [f"{k} ({v[_UNSAVED]})" for k, v in config["init_args"].items()
               if isinstance(v, dict) and _UNSAVED in v]
    if unsaved:
        raise ConfigError("save_pretrained needs every constructor argument as plain data; not so: "
                          + "; ".join(unsaved))
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def from_pretrained(directory: str | os.PathLike, cls: type | None = None, **overrides: Any) -> Any:
    """The module written by :func:`save_pretrained` (of class ``cls`` or a subclass), in eval mode."""
    from safetensors.torch import load_file

    from lit_gen.models.base import GenerativeModule

    folder = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: give a folder written by save_pretrained")
    config = json.loads((folder / "config.json").read_text())
    module = _build(config, cls or GenerativeModule, overrides, str(folder))
    module.load_state_dict(load_file(str(folder / "model.safetensors")))
    return module.eval()

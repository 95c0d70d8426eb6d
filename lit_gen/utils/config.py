"""Components that remember how they were built, so a checkpoint can rebuild them from plain data.

Every lit_gen component class (noise schedules, diffusion samplers, diffusion and energy losses, MCMC samplers,
chain initialisations, init distributions, and the ``GenerativeModule`` s themselves) derives from
:class:`RecordsInit`, which keeps the arguments of its constructor call. :func:`describe` turns a value into plain
data (numbers, strings, lists, dicts): a component as ``{"class_path", "init_args", "kind": "instance"}``, a class
or ``functools.partial`` of one (the network and optimizer factories of the configs) as ``kind: "factory"``.
:func:`rebuild` reverses it.

Rebuilding imports and calls the named classes, so it is guarded: a class path is resolved only when its top-level
package is ``lit_gen`` or ``torch``, or is already imported by the running program (import your own package before
loading a checkpoint that names it), and the class must be a subclass of one of :data:`ALLOWED_BASES` — a
checkpoint naming ``os.system`` or ``builtins.eval`` is refused before anything is called.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from typing import Any

__all__ = ["ALLOWED_BASES", "ConfigError", "RecordsInit", "describe", "rebuild", "resolve_class"]


class ConfigError(ValueError):
    """A component that cannot be described as plain data, or a description that cannot be rebuilt."""


class RecordsInit:
    """Mixin: instances keep the positional and keyword arguments of their constructor call (``init_config``)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__new__(cls)
        obj.__dict__["_init_call"] = (args, kwargs)
        return obj

    def init_config(self) -> dict[str, Any]:
        """The constructor's arguments by name (defaults filled in), as they were given."""
        args, kwargs = self.__dict__.get("_init_call", ((), {}))
        sig = inspect.signature(type(self).__init__)
        bound = sig.bind(None, *args, **kwargs)
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            kind = sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise ConfigError(f"{type(self).__name__} was built with extra positional arguments {value!r}")
            else:
                out[name] = value
        return out


def _path(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def describe(value: Any, where: str = "value") -> Any:
    """``value`` as plain data (see the module docstring); :class:`ConfigError` naming ``where`` if impossible."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [describe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{where}: only dicts with string keys can be saved, got keys {list(value)}")
        return {k: describe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, functools.partial):
        if not inspect.isclass(value.func) and value.args and inspect.isclass(value.args[-1]):
            # jsonargparse's factory for a Callable-typed argument: partial(call_without_instantiate_context,
            # instantiator, cls, **init_args)
            return {"class_path": _path(value.args[-1]), "init_args": describe(dict(value.keywords), where),
                    "kind": "factory"}
        if value.args:
            raise ConfigError(f"{where}: a partial with positional arguments cannot be saved; use keywords")
        if not inspect.isclass(value.func):
            raise ConfigError(f"{where}: only partials of classes can be saved, got {value.func!r}")
        return {"class_path": _path(value.func), "init_args": describe(dict(value.keywords), where), "kind": "factory"}
    if inspect.isclass(value):
        return {"class_path": _path(value), "init_args": {}, "kind": "factory"}
    if isinstance(value, RecordsInit):
        return {"class_path": _path(type(value)), "init_args": describe(value.init_config(), where),
                "kind": "instance"}
    # jsonargparse's factories for Callable-typed arguments (e.g. OptimizerCallable) are partial-like
    func, keywords = getattr(value, "func", None), getattr(value, "keywords", None)
    if inspect.isclass(func) and isinstance(keywords, dict) and not getattr(value, "args", ()):
        return {"class_path": _path(func), "init_args": describe(dict(keywords), where), "kind": "factory"}
    raise ConfigError(
        f"{where}: a {type(value).__name__} cannot be saved as plain data (it was given as a built object that "
        f"does not record its arguments); give it as a class with init_args, or pass it again when loading"
    )


def _allowed(cls: type) -> bool:
    import torch

    if issubclass(cls, (RecordsInit, torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)):
        return True
    # a data module (e.g. a flow's source), recognised by name: this layer imports no Lightning
    return any(f"{c.__module__}.{c.__qualname__}" == _DATAMODULE for c in cls.__mro__)


_DATAMODULE = "lightning.pytorch.core.datamodule.LightningDataModule"
ALLOWED_BASES = "lit_gen components, torch.nn.Module, torch.optim.Optimizer, LRScheduler, LightningDataModule"


def resolve_class(class_path: str) -> type:
    """The class named ``class_path``, under the guard of the module docstring."""
    if not isinstance(class_path, str) or "." not in class_path:
        raise ConfigError(f"a class path must be 'package.module.Class', got {class_path!r}")
    module_name, _, name = class_path.rpartition(".")
    top = module_name.split(".")[0]
    if top not in ("lit_gen", "torch") and top not in sys.modules:
        raise ConfigError(
            f"refusing to import {module_name!r} named by the checkpoint: only lit_gen, torch and packages the "
            f"program has already imported are resolved. Import {top!r} first if you trust it"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"the checkpoint names {class_path!r}, which cannot be found: {err}") from err
    if not inspect.isclass(obj) or not _allowed(obj):
        raise ConfigError(
            f"refusing to call {class_path!r} named by the checkpoint: it is not a subclass of {ALLOWED_BASES}"
        )
    return obj


def rebuild(value: Any) -> Any:
    """The inverse of :func:`describe`: components rebuilt, factories as ``functools.partial`` (or the class)."""
    if isinstance(value, list):
        return [rebuild(v) for v in value]
    if isinstance(value, dict):
        if "class_path" in value and value.get("kind") in ("factory", "instance"):
            cls = resolve_class(value["class_path"])
            init_args = {k: rebuild(v) for k, v in (value.get("init_args") or {}).items()}
            if value["kind"] == "instance":
                return cls(**init_args)
            return functools.partial(cls, **init_args) if init_args else cls
        return {k: rebuild(v) for k, v in value.items()}
    return value

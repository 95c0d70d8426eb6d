"""lit_gen: energy-based and diffusion models as PyTorch Lightning modules, driven by the ``lit-gen`` CLI.

The main classes can be imported from here (``from lit_gen import DiffusionModule, Toy2DDataModule, DDIM``), and
``lit_gen.load(run_dir_or_checkpoint)`` returns a trained module; they are loaded on first use, so
``import lit_gen.mcmc`` still does not import Lightning. The subpackages hold the rest: :mod:`lit_gen.models`,
:mod:`lit_gen.data`, :mod:`lit_gen.diffusion`, :mod:`lit_gen.mcmc`, :mod:`lit_gen.nn`, :mod:`lit_gen.metrics`,
:mod:`lit_gen.callbacks`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__: str = version("lit-gen")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

#: public name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("GenerativeModule", "EnergyModule", "DiffusionModule", "KernelDiffusionModule", "EBMModule", "DCDModule",
         "DDAEBMModule"), "lit_gen.models"),
    **dict.fromkeys(
        ("GenerativeDataModule", "InMemoryDataModule", "Toy2DDataModule", "ArrayDataModule", "DigitsDataModule",
         "MNISTDataModule", "FashionMNISTDataModule", "CIFAR10DataModule", "SVHNDataModule", "CelebADataModule",
         "ImageFolderDataModule"), "lit_gen.data"),
    **dict.fromkeys(("DiffusionSampler", "DDPM", "DDIM", "Heun", "EulerMaruyama"), "lit_gen.diffusion.samplers"),
    **dict.fromkeys(("CosineSchedule", "LinearSchedule", "NoiseSchedule"), "lit_gen.diffusion"),
    **dict.fromkeys(("MCMCSampler", "Langevin", "MALA", "HMC", "ReplayBuffer"), "lit_gen.mcmc"),
    **dict.fromkeys(("SamplePlotCallback", "SampleWriter", "AtomicCheckpointIO"), "lit_gen.callbacks"),
    **dict.fromkeys(("load", "save_pretrained", "from_pretrained"), "lit_gen.models.hub"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_gen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""``lit-gen``: the LightningCLI entry point.

``lit-gen fit --config configs/diffusion/toy2d.yaml`` trains; ``validate``, ``test`` and ``predict`` take the
same config plus ``--ckpt_path``. Every method module is a subclass of ``GenerativeModule`` and every data
module of ``GenerativeDataModule`` (subclass mode), so a config picks them by ``class_path`` and users can
plug in their own classes. The data module's ``data_shape`` is linked into the model, so no config states a
data dimension: the same toy config trains on a user's ``.npy`` file of any dimension.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.cli import LightningCLI

from lit_gen.data import GenerativeDataModule
from lit_gen.models import GenerativeModule


class LitGenCLI(LightningCLI):
    """LightningCLI with the data shape linked into the model and an optional test after fit."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("data.data_shape", "model.init_args.data_shape", apply_on="instantiate")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After `fit`, run `test` on the final weights and print the test report.",
        )

    def _parse_ckpt_path(self) -> None:
        """Refuse a ``--ckpt_path`` written by an unrelated module class before Lightning merges its hyper-parameters.

        LightningCLI re-parses the checkpoint's hyper-parameters into the ``model`` config; with another module's
        checkpoint that fails deep in the parser ("the following arguments are required: net").
        """
        check_checkpoint_module(self.config)
        super()._parse_ckpt_path()

    def instantiate_classes(self) -> None:
        """Build the classes; a constructor's own error reaches the user as it is, not inside a parser error.

        jsonargparse reports a failing ``class_path`` constructor as "Does not validate against any of the Union
        subtypes", with the constructor's message buried in a list; re-raising that cause keeps its clear message
        (e.g. an empty data file, ``sampler_steps`` <= 0) and its traceback into the constructor.
        """
        try:
            super().instantiate_classes()
        except ValueError as err:
            cause = err.__cause__
            if not isinstance(cause, Exception) or "Union subtypes" not in str(err):
                raise
            if hasattr(cause, "add_note"):  # Python >= 3.11
                cause.add_note("(raised while building the classes of the config)")
            raise cause from None

    def after_fit(self) -> None:
        if self.config.get(self.subcommand, {}).get("test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule)
        if self.trainer.is_global_zero:
            self._print_outputs()

    def _print_outputs(self) -> None:
        from lit_gen.callbacks import SamplePlotCallback

        lines = [f"run directory: {self.trainer.log_dir}"]
        for cb in self.trainer.callbacks:
            if isinstance(cb, SamplePlotCallback) and cb.last_path is not None:
                lines.append(f"latest sample plot: {cb.last_path}")
        report = getattr(self.model, "last_test_report", {})
        if "sw1" in report and "sw1_floor" in report:
            lines.append(f"SW1 of the samples: {report['sw1']:.4f} (data-vs-data floor {report['sw1_floor']:.4f})")
        print("\n".join(lines))


def _import(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def check_checkpoint_module(config: Any) -> None:
    """Raise a ValueError when the config's ``ckpt_path`` was written by a module class unrelated to the config's.

    A subclass of the writer (or the writer's subclass) is accepted: its weights may well fit.
    """
    subcommand = config.get("subcommand")
    section = config.get(subcommand) if subcommand else None
    path = section.get("ckpt_path") if section is not None else None
    if not path or not Path(path).is_file():
        return
    try:
        hparams = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("hyper_parameters") or {}
    except Exception:  # not a zip checkpoint or not loadable safely: Lightning's own loading reports it
        return
    written, wanted = hparams.get("_class_path"), (section.get("model") or {}).get("class_path")
    if not written or not wanted or written == wanted:
        return
    a, b = _import(written), _import(wanted)
    if isinstance(a, type) and isinstance(b, type) and (issubclass(a, b) or issubclass(b, a)):
        return
    raise ValueError(
        f"--ckpt_path {path} was written by {written}, but the config builds {wanted}: a checkpoint only loads "
        f"into the module (and networks) it was trained with; pass that run's config (config.yaml in its run "
        f"directory) or a checkpoint of {wanted.rsplit('.', 1)[-1]}"
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``lit-gen`` (``args`` as on the command line; ``None`` reads ``sys.argv``)."""
    build_cli(args)


def build_cli(args: list[str] | None = None) -> LitGenCLI:
    """Parse ``args``, run the subcommand and return the CLI object (its ``trainer``, ``model``, ``datamodule``)."""
    # Lightning's own use of a deprecated torch pytree API; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    return LitGenCLI(
        GenerativeModule,
        GenerativeDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":  # pragma: no cover - use the `lit-gen` entry point instead
    main(sys.argv[1:])

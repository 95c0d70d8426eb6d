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

from lit_gen.callbacks.checkpoint_io import BrokenCheckpointError, broken_checkpoint_message
from lit_gen.compat import check_cli_ckpt_hook
from lit_gen.data import GenerativeDataModule
from lit_gen.models import GenerativeModule
from lit_gen.utils.checkpoints import archive_problem, checkpoint_problem, newest_loadable

check_cli_ckpt_hook()  # LitGenCLI overrides it: fail at import, not silently, if Lightning renames it


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
        parser.add_argument(
            "--weights_from",
            type=str | None,
            default=None,
            help="`fit` only: start a new run from this checkpoint's weights (fresh optimizer and step counters). "
            "To continue a run instead, give --ckpt_path.",
        )

    def _parse_ckpt_path(self) -> None:
        """Resolve and check ``--ckpt_path`` before anything is built; the config and command line win on resume.

        - ``--ckpt_path last`` becomes the newest loadable ``last*.ckpt`` under ``trainer.default_root_dir``; with
          none there it is an error (Lightning would warn and silently start a fresh run).
        - A truncated or empty checkpoint is an error naming it and offering the newest loadable one beside it.
        - A checkpoint written by an unrelated module class is refused (LightningCLI would fail deep in the
          parser with "the following arguments are required: net").
        - LightningCLI merges the checkpoint's saved hyper-parameters over the parsed config, so values typed on
          the command line were lost on resume. Here, when the config names a model, the config (files and
          command line) is used as it is and every value that differs from the checkpoint's is printed; the
          restored optimizer and LR scheduler then take the configured settings too
          (:mod:`lit_gen.models.resume`). A config without a model still takes the checkpoint's.
        """
        section = self._subcommand_section()
        if section is None:
            return
        path = section.get("ckpt_path")
        if path == "last":
            section["ckpt_path"] = path = str(resolve_last_checkpoint(section))
        if path and Path(path).exists():
            problem = archive_problem(path)
            if problem is not None:
                raise BrokenCheckpointError(broken_checkpoint_message(path, problem))
        if path and section.get("weights_from"):
            raise ValueError(
                "give either --ckpt_path (resume the run: weights, optimizer, step counters) or --weights_from "
                "(a new run starting from a checkpoint's weights), not both"
            )
        check_checkpoint_module(self.config)
        model = section.get("model")
        if path and Path(path).is_file() and model is not None and model.get("class_path"):
            report_resume_differences(path, model)
            return
        super()._parse_ckpt_path()

    def _subcommand_section(self) -> Any:
        subcommand = self.config.get("subcommand")
        return self.config.get(subcommand) if subcommand else None

    def before_fit(self) -> None:
        """``--weights_from PATH``: a new run that starts from the weights of a checkpoint (fresh optimizer)."""
        path = self._subcommand_section().get("weights_from")
        if not path:
            return
        problem = checkpoint_problem(path)
        if problem is not None:
            raise BrokenCheckpointError(f"--weights_from: {problem}")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if "state_dict" not in checkpoint:
            raise ValueError(f"--weights_from {path}: the file holds no 'state_dict' (not a Lightning checkpoint)")
        self.model.load_state_dict(checkpoint["state_dict"])
        print(f"starting a new run from the weights of {path} (fresh optimizer, step 0)", file=sys.stderr)

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


def resolve_last_checkpoint(section: Any) -> Path:
    """``--ckpt_path last``: the newest loadable ``last*.ckpt`` below the run's ``default_root_dir``.

    Raises ``FileNotFoundError`` naming the folder searched when there is none (nothing to resume).
    """
    trainer = section.get("trainer") or {}
    root = Path(trainer.get("default_root_dir") or ".")
    candidates = sorted(root.rglob("last*.ckpt")) if root.is_dir() else []
    found = newest_loadable(candidates)
    if found is None:
        broken = f" ({len(candidates)} found, none loadable)" if candidates else ""
        raise FileNotFoundError(
            f"--ckpt_path last: no loadable last*.ckpt under {root.resolve()}{broken}, so there is nothing to "
            "resume. Drop --ckpt_path to start a new run, or set --trainer.default_root_dir to the run's folder."
        )
    print(f"--ckpt_path last: resuming from {found}", file=sys.stderr)
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "as_dict"):
        items = value.as_dict() if hasattr(value, "as_dict") else value
        return {k: _plain(v) for k, v in items.items()}
    return value


def report_resume_differences(path: str, model: Any) -> list[str]:
    """Print (and return) the model settings of the config that differ from those saved in checkpoint ``path``."""
    try:
        hparams = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("hyper_parameters") or {}
    except Exception:  # Lightning's own loading reports an unreadable checkpoint
        return []
    init_args = _plain(model.get("init_args") or {})
    lines = []
    for key, saved in hparams.items():
        if key.startswith("_") or key == "data_shape" or key not in init_args:
            continue
        if _plain(saved) != init_args[key]:
            lines.append(f"model.init_args.{key}: {init_args[key]!r} (checkpoint: {_plain(saved)!r})")
    if lines:
        print(f"resuming from {path} with the configured values where they differ from the checkpoint's:\n  "
              + "\n  ".join(lines), file=sys.stderr)
    return lines


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

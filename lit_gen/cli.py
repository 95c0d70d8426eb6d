"""``lit-gen``: the LightningCLI entry point.

``lit-gen fit --config configs/diffusion/toy2d.yaml`` trains; ``validate``, ``test`` and ``predict`` take the
same config plus ``--ckpt_path``. Every method module is a subclass of ``GenerativeModule`` and every data
module of ``GenerativeDataModule`` (subclass mode), so a config picks them by ``class_path`` and users can
plug in their own classes. The data module's ``data_shape`` is linked into the model, so no config states a
data dimension: the same toy config trains on a user's ``.npy`` file of any dimension.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

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

"""GPU check: every image config trains a few hundred steps in ``bf16-mixed`` on one GPU, and nothing breaks.

    make gpu-check                                   # = python -m benchmarks.gpu_check
    python -m benchmarks.gpu_check --steps 300 --configs 'diffusion/*' 'flow/cifar10'
    python -m benchmarks.gpu_check --tiny            # the same code on CPU, tiny settings (the slow test runs it)

The image configs are ``configs/*/mnist*.yaml``, ``configs/*/cifar10*.yaml`` and ``configs/*/celeba*.yaml``. Each
one runs in this process through the ``lit-gen`` CLI (:func:`lit_gen.cli.build_cli`, ``fit``) with the config's
model and data as they ship, and with ``--trainer.accelerator gpu --trainer.devices 1 --trainer.precision
bf16-mixed --trainer.max_steps N`` (default N = 200 training batches), no logger, no validation, no test, no
checkpoints, no sample plots, run folder in a temporary directory. Measured per config:

- steps/s and images/s (batch size × batches/s) from the start of batch ``--warmup`` (default 10) to the end of
  training, data loading included (``torch.cuda.synchronize`` at both ends); a config's training stops early after
  ``--time-limit`` seconds (default 30), so the ten configs take at most about 7 minutes with their start-up, and
  its row says how many batches it ran;
- peak GPU memory (``torch.cuda.max_memory_allocated``; "n/a" on CPU);
- the loss of the last training step (the ``loss`` the training step returns, else the logged ``train/loss``).

A non-finite loss (also when a module's own guard stops the run with ``FloatingPointError``: a NaN/inf loss, energy
or gradient) or a crash marks the config as failed; the others still run, and the script then exits non-zero naming
every failed config. The table is printed and written to ``benchmarks/results/gpu_check.md`` (with the GPU's name).

Data: the dataset files the configs read (``data/MNIST/raw`` from ``make prepare-mnist``, ``data/cifar10``,
``data/celeba``) when they are there; otherwise (or with ``--synthetic``) random images written in the same file
formats (MNIST idx, CIFAR-10 pickles, CelebA JPEGs and partition list) to a temporary directory, so the speed is
measured on a machine without the data sets or internet. The table says which data each row used.

``--tiny`` runs the same code on CPU: 3 steps (1 untimed), batch 4, 16-channel networks, 2 MCMC steps per update,
synthetic data, no time limit, one torch thread (tiny networks run fastest so, bf16 autocast included), results to
``runs/gpu_check/gpu_check_tiny.md`` (not among the benchmark results). All ten image configs take about half a
minute on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import gc
import importlib
import math
import pickle
import shlex
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from PIL import Image
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
IMAGE_PATTERNS = ("mnist*.yaml", "cifar10*.yaml", "celeba*.yaml")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_check.md"
TINY_OUT = ROOT / "runs" / "gpu_check" / "gpu_check_tiny.md"
#: callbacks left out of the check: plots and checkpoints cost time that is not training, and the learning-rate
#: monitor needs a logger
DROPPED_CALLBACKS = ("SamplePlotCallback", "ModelCheckpoint", "LearningRateMonitor")
TIMER_CLASS_PATH = "benchmarks.gpu_check.StepTimer"


def image_configs() -> list[Path]:
    """Every MNIST, CIFAR-10 and CelebA config under ``configs/``, sorted."""
    found = {p for pattern in IMAGE_PATTERNS for p in CONFIG_DIR.glob(f"*/{pattern}")}
    return sorted(found)


def config_name(path: Path) -> str:
    """``diffusion/mnist.yaml`` for ``configs/diffusion/mnist.yaml``."""
    return path.relative_to(CONFIG_DIR).as_posix()


def select_configs(patterns: list[str] | None) -> list[Path]:
    """The image configs whose name (``method/name``, with or without ``.yaml``) matches one of ``patterns``."""
    configs = image_configs()
    if not patterns:
        return configs
    chosen = [p for p in configs if any(fnmatch.fnmatch(config_name(p), pat) or
                                        fnmatch.fnmatch(config_name(p).removesuffix(".yaml"), pat)
                                        for pat in patterns)]
    if not chosen:
        raise SystemExit(f"no image config matches {patterns}; the image configs are "
                         + ", ".join(config_name(p) for p in configs))
    return chosen


# ------------------------------------------------------------------------------------------ timing callback
class StepTimer(L.Callback):
    """Times the training batches from batch ``warmup`` on, keeps the last loss, and stops training after
    ``time_limit`` seconds.

    Device work is waited for (``torch.cuda.synchronize``) only where the clock is read: at the start of batch
    ``warmup`` and at the end of training. The last loss stays a tensor until the end (no sync per step).
    """

    def __init__(self, warmup: int = 10, time_limit: float | None = None) -> None:
        self.warmup = warmup
        self.time_limit = time_limit
        self.batches = 0
        self.timed_batches = 0
        self.timed_steps = 0
        self.batch_size = 0
        self.seconds = float("nan")
        self.loss: torch.Tensor | None = None
        self._start: float | None = None
        self._first = 0.0
        self._start_step = 0

    @staticmethod
    def _sync(module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._first = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int
                             ) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.batch_size = int(x.shape[0])
        if self.batches == self.warmup:
            self._sync(module)
            self._start = time.perf_counter()
            self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.batches += 1
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.loss = loss.detach()
        if self.time_limit is not None and time.perf_counter() - self._first > self.time_limit:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._sync(module)
        end = time.perf_counter()
        if self._start is None:  # fewer batches than the warm-up: time them all
            self._start, self._start_step = self._first, 0
            self.timed_batches = self.batches
        else:
            self.timed_batches = self.batches - self.warmup
        self.timed_steps = trainer.global_step - self._start_step
        self.seconds = end - self._start


# ------------------------------------------------------------------------------------------ synthetic data
def _images(rng: np.random.Generator, n: int, *shape: int) -> np.ndarray:
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[:, :2] = (0, 255)  # every image spans the full range
    return x


def write_mnist(root: Path, n_train: int, n_test: int, folder: str = "MNIST") -> None:
    """``root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with random digits and labels."""
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        header = struct.pack(">IIII", 0x803, n, 28, 28)  # idx3 magic, then big-endian dimensions
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + _images(rng, n, 28, 28).tobytes())
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def write_cifar10(root: Path, per_batch: int, n_test: int) -> None:
    """``root/cifar-10-batches-py/`` (five training batches, the test batch, ``batches.meta``) of random images."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = {"data": _images(rng, n, 3 * 32 * 32), "labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(data, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)


def write_celeba(root: Path, counts: tuple[int, int, int]) -> None:
    """``root/celeba/img_align_celeba/*.jpg`` (218×178, as the aligned faces) and ``list_eval_partition.txt`` with
    ``counts`` = (train, valid, test) images. The images are smooth random fields (JPEG files of a realistic size)."""
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{k + 1:06d}.jpg" for k in range(sum(counts))]
    codes = [code for code, n in enumerate(counts) for _ in range(n)]

    def write(k: int) -> None:
        small = _images(np.random.default_rng(k), 1, 28, 23, 3)[0]
        Image.fromarray(small).resize((178, 218), Image.BILINEAR).save(images / names[k], quality=90)

    with ThreadPoolExecutor(max_workers=8) as pool:  # PIL encodes outside the GIL
        list(pool.map(write, range(len(names))))
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {c}\n" for n, c in zip(names, codes, strict=True)))


#: data module class name -> (sub-folder of the synthetic root, writer(root, tiny))
SYNTHETIC: dict[str, tuple[str, Callable[[Path, bool], None]]] = {
    "MNISTDataModule": ("mnist", lambda r, tiny: write_mnist(r, 40 if tiny else 60000, 10 if tiny else 10000)),
    "FashionMNISTDataModule": ("fashion_mnist", lambda r, tiny: write_mnist(
        r, 40 if tiny else 60000, 10 if tiny else 10000, folder="FashionMNIST")),
    "CIFAR10DataModule": ("cifar10", lambda r, tiny: write_cifar10(r, 8 if tiny else 10000, 10 if tiny else 10000)),
    "CelebADataModule": ("celeba", lambda r, tiny: write_celeba(r, (8, 2, 2) if tiny else (8192, 256, 256))),
}


def missing_data(data: dict[str, Any]) -> list[str]:
    """The dataset files that the config's data module expects and that are missing (all of them if unknown)."""
    class_path = data.get("class_path", "")
    module, _, name = class_path.rpartition(".")
    init_args = dict(data.get("init_args") or {})
    root = Path(init_args.get("root", "data")).expanduser()
    init_args["root"] = str(root if root.is_absolute() else ROOT / root)
    try:
        dm = getattr(importlib.import_module(module), name)(**init_args)
        return [str(p) for p in dm.missing_paths()]
    except Exception as err:  # a module this script cannot build by hand: synthetic data
        return [f"({class_path}: {type(err).__name__})"]


# ------------------------------------------------------------------------------------------ one config
@dataclass
class Row:
    """One config's result; ``status`` is "ok" or what went wrong."""

    config: str
    data: str = "-"
    batch_size: int = 0
    batches: int = 0
    steps_per_s: float = float("nan")
    images_per_s: float = float("nan")
    peak_mem_gib: float | None = None
    loss: float = float("nan")
    status: str = "ok"

    @property
    def failed(self) -> bool:
        return self.status != "ok"


def _shrink(node: Any) -> None:
    """Tiny networks: every ``channels`` 16, every ``num_res_blocks`` 1."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "channels" and isinstance(value, int):
                node[key] = 16
            elif key == "num_res_blocks" and isinstance(value, int):
                node[key] = 1
            else:
                _shrink(value)
    elif isinstance(node, list):
        for item in node:
            _shrink(item)


def prepare_config(cfg: dict[str, Any], *, tiny: bool, data_root: Path | None, warmup: int,
                   time_limit: float | None) -> dict[str, Any]:
    """The config as the check runs it: plots, checkpoints and LR monitor out, the timer in, data at
    ``data_root`` (synthetic files) when given; ``tiny``: small networks, batch 4, no loader workers."""
    trainer = cfg.setdefault("trainer", {})
    callbacks = [cb for cb in trainer.get("callbacks") or []
                 if not (isinstance(cb, dict) and cb.get("class_path", "").rsplit(".", 1)[-1] in DROPPED_CALLBACKS)]
    callbacks.append({"class_path": TIMER_CLASS_PATH, "init_args": {"warmup": warmup, "time_limit": time_limit}})
    trainer["callbacks"] = callbacks
    for key in ("strategy", "num_nodes"):  # one device, whatever the config's multi-GPU settings
        trainer.pop(key, None)
    data = cfg["data"].setdefault("init_args", {})
    name = cfg["data"]["class_path"].rsplit(".", 1)[-1]
    if data_root is not None:
        data["root"] = str(data_root)
        if name in ("CIFAR10DataModule", "SVHNDataModule"):
            data["verify"] = False  # synthetic files: torchvision's md5 sums of the real ones cannot match
    if tiny:
        _shrink(cfg["model"])
        model = cfg["model"].setdefault("init_args", {})
        if "mcmc_steps" in model:
            model["mcmc_steps"] = 2
        data["batch_size"] = 4
        data["num_workers"] = 0
    return cfg


def cli_args(config_file: Path, run_dir: Path, *, accelerator: str, precision: str, steps: int,
             extra: list[str]) -> list[str]:
    """The ``lit-gen fit`` arguments of one run."""
    return ["fit", "--config", str(config_file),
            "--trainer.accelerator", accelerator, "--trainer.devices", "1", "--trainer.precision", precision,
            "--trainer.max_steps", str(steps), "--trainer.max_epochs", "-1",
            "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
            "--trainer.default_root_dir", str(run_dir), "--test_after_fit", "false", *extra]


def _short(err: BaseException, limit: int = 160) -> str:
    """The error's message on one line, cut at ``limit`` characters."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def run_config(path: Path, args: argparse.Namespace, synthetic_root: Path, console: Console) -> Row:
    """Train one config and measure it; never raises (a crash becomes the row's status)."""
    from lit_gen.cli import build_cli

    name = config_name(path)
    row = Row(name)
    cuda = args.accelerator == "gpu"
    cli = None
    try:
        cfg = yaml.safe_load(path.read_text())
        missing = ["(--synthetic)"] if args.synthetic else missing_data(cfg["data"])
        data_root = None
        if missing:
            kind = cfg["data"]["class_path"].rsplit(".", 1)[-1]
            if kind not in SYNTHETIC:
                row.status = f"crashed: no synthetic data for {kind} (and files missing: {missing[0]})"
                return row
            folder, writer = SYNTHETIC[kind]
            data_root = synthetic_root / folder
            if not data_root.exists():
                writer(data_root, args.tiny)
        row.data = "synthetic" if data_root is not None else "real"
        cfg = prepare_config(cfg, tiny=args.tiny, data_root=data_root, warmup=args.warmup,
                             time_limit=args.time_limit)
        work = synthetic_root / "runs" / name.removesuffix(".yaml").replace("/", "_")
        work.mkdir(parents=True, exist_ok=True)
        config_file = work / "config.yaml"
        config_file.write_text(yaml.safe_dump(cfg))
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when given args besides a command line
        try:
            cli = build_cli(cli_args(config_file, work, accelerator=args.accelerator, precision=args.precision,
                                     steps=args.steps, extra=args.extra))
        finally:
            sys.argv = argv
        timer = next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == "StepTimer")
        row.batch_size, row.batches = timer.batch_size, timer.batches
        if timer.timed_batches > 0 and timer.seconds > 0:
            row.steps_per_s = timer.timed_steps / timer.seconds
            row.images_per_s = timer.batch_size * timer.timed_batches / timer.seconds
        loss = timer.loss if timer.loss is not None else cli.trainer.callback_metrics.get("train/loss")
        row.loss = float(loss) if loss is not None else float("nan")
        if loss is None:
            row.status = "no loss: the training step returned and logged none"
        elif not math.isfinite(row.loss):
            row.status = "non-finite loss"
        elif row.batches == 0:
            row.status = "no training batch ran"
    except FloatingPointError as err:  # a module's own guard: the loss (or a gradient) became NaN/inf
        row.status = f"non-finite (the module's guard): {_short(err)}"
    except SystemExit as err:  # a parse error: jsonargparse printed it
        row.status = f"crashed: the CLI refused the arguments (exit {err.code})"
    except Exception as err:
        console.print(f"[red]{name} crashed:[/red]")
        traceback.print_exc()
        row.status = f"crashed: {type(err).__name__}: {_short(err)}"
    finally:
        if cuda:
            row.peak_mem_gib = torch.cuda.max_memory_allocated() / 2**30
        del cli
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return row


# ------------------------------------------------------------------------------------------ report
HEADERS = ["config", "data", "batch", "batches", "steps/s", "images/s", "peak GPU memory", "last loss", "status"]


def _cells(row: Row) -> list[str]:
    mem = "n/a" if row.peak_mem_gib is None else f"{row.peak_mem_gib:.2f} GiB"
    return [row.config, row.data, str(row.batch_size or "-"), str(row.batches), f"{row.steps_per_s:.2f}",
            f"{row.images_per_s:.1f}", mem, f"{row.loss:.4g}", row.status]


def device_name(accelerator: str) -> str:
    return torch.cuda.get_device_name(0) if accelerator == "gpu" else "CPU"


def summary_line(args: argparse.Namespace, rows: list[Row]) -> str:
    data = sorted({r.data for r in rows if r.data != "-"})
    limit = f"at most {args.time_limit:g} s each; " if args.time_limit else ""
    return (f"{device_name(args.accelerator)}, precision {args.precision}, {args.steps} training steps per config "
            f"({limit}the first {args.warmup} batch{'' if args.warmup == 1 else 'es'} not timed), data: "
            f"{' and '.join(data) or '-'}; torch {torch.__version__}, {datetime.date.today()}")


def write_markdown(out: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    command = ("`python -m benchmarks.gpu_check --tiny`" if args.tiny
               else "`make gpu-check` (`python -m benchmarks.gpu_check`)")
    lines = [f"## GPU check: every image config in {args.precision}", "",
             f"{command} on {summary_line(args, rows)}. Synthetic data are random images in "
             "the data sets' file formats (the speed is that of the real files; the loss is not comparable). "
             "images/s = batch size × batches/s, data loading included.", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |" for r in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="CPU, 3 steps, batch 4, small networks, synthetic data: checks the script itself")
    parser.add_argument("--steps", type=int, default=None, help="training steps per config (default 200; tiny 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first batches (default 10; tiny 1)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="stop a config's training after this many seconds (default 30; tiny: no limit; "
                             "0: no limit)")
    parser.add_argument("--precision", default="bf16-mixed", help="trainer precision (default bf16-mixed)")
    parser.add_argument("--synthetic", action="store_true",
                        help="synthetic data even where the dataset files exist (default: only where missing)")
    parser.add_argument("--configs", nargs="+", default=None, metavar="PATTERN",
                        help="only these image configs, e.g. diffusion/mnist or 'ebm/*' (default: all)")
    parser.add_argument("--extra", action="append", default=[], metavar="ARGS",
                        help="more lit-gen fit arguments for every config, e.g. "
                             "--extra='--data.init_args.batch_size 256' (repeatable)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"markdown table (default {DEFAULT_OUT.relative_to(ROOT)}; tiny: "
                             f"{TINY_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    args.accelerator = "cpu" if args.tiny else "gpu"
    args.steps = args.steps if args.steps is not None else (3 if args.tiny else 200)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 10)
    args.time_limit = args.time_limit if args.time_limit is not None else (None if args.tiny else 30.0)
    args.time_limit = args.time_limit or None
    args.synthetic = args.synthetic or args.tiny
    args.extra = [a for chunk in args.extra for a in shlex.split(chunk)]
    args.out = args.out or (TINY_OUT if args.tiny else DEFAULT_OUT)
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    """Run the check; returns the rows, or exits non-zero naming the failed configs."""
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 180)
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        raise SystemExit("gpu-check: no CUDA GPU here; `python -m benchmarks.gpu_check --tiny` runs the same code "
                         "on CPU with tiny settings")
    if str(ROOT) not in sys.path:  # the timer is given to the CLI by class_path: benchmarks must be importable
        sys.path.insert(0, str(ROOT))
    configs = select_configs(args.configs)
    rows: list[Row] = []
    threads = torch.get_num_threads()
    if args.tiny:  # tiny networks: more threads only contend (several times slower on a busy 2-core machine)
        torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="lit_gen_gpu_check_") as tmp:
            for path in configs:
                console.print(f"[bold]{config_name(path)}[/bold] ...")
                rows.append(run_config(path, args, Path(tmp), console))
    finally:
        torch.set_num_threads(threads)
    table = Table(title=f"GPU check: {summary_line(args, rows)}")
    for header in HEADERS:
        table.add_column(header, justify="right" if header in ("batch", "batches", "steps/s", "images/s") else "left")
    for row in rows:
        table.add_row(*_cells(row), style="red" if row.failed else None)
    console.print(table)
    write_markdown(args.out, args, rows)
    console.print(f"wrote {args.out}")
    failed = [r for r in rows if r.failed]
    if failed:
        raise SystemExit("gpu-check failed: " + "; ".join(f"{r.config} ({r.status})" for r in failed))
    return rows


if __name__ == "__main__":
    main()

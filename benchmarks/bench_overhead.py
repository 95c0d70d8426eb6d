"""Lightning overhead: ms per training step of ``DiffusionModule`` under ``Trainer.fit`` vs a plain PyTorch loop.

Both sides train the same TimeMLP (depth 3) with the same Adam, DDPM ε-loss (:func:`lit_gen.diffusion.dsm_loss`,
linear schedule) and batches drawn by index from the same 2D tensor; the Lightning side runs through
``Toy2DDataModule`` exactly as ``lit-gen fit`` would (no logger, progress bar, checkpoints or validation, and no
EMA on either side; a second Lightning variant adds the shipped defaults: EMA and logging every 50 steps).
Repeats of the variants are interleaved, so machine load hits all alike; the figures are medians, and the
ratio is the median of per-repeat ratios. Time is the process's CPU time (``time.process_time``; one torch thread,
no loader workers, so it is the training loop's own work): on a shared machine, wall time mostly measures the
other tenants. Goals (issue 7): ≤ 1.20× at hidden 128 / batch 256, ≤ 1.05× at
hidden 256 / batch 1024.

    python benchmarks/bench_overhead.py [--quick] --out benchmarks/results/overhead.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from lit_gen.data import Toy2DDataModule
from lit_gen.diffusion import dsm_loss
from lit_gen.diffusion.schedules import LinearSchedule
from lit_gen.models import DiffusionModule
from lit_gen.nn import TimeMLP

CASES = [(128, 256, 1.20), (256, 1024, 1.05)]  # (hidden, batch, goal)
WARMUP = 20  # steps excluded from the timing (allocator warm-up, first-call dispatch)


class StepTimer(L.Callback):
    """CPU time from the start of batch ``WARMUP`` to the end of the last batch (loader fetches included)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step == WARMUP:
            self.start = time.process_time()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        self.end = time.process_time()


def data_module(batch: int) -> Toy2DDataModule:
    dm = Toy2DDataModule(name="8gaussians", n_train=20000, n_val=256, n_test=256, batch_size=batch, seed=0)
    dm.setup()
    return dm


def lightning_ms(hidden: int, batch: int, steps: int, defaults: bool) -> float:
    """ms/step of ``Trainer.fit``; ``defaults`` keeps EMA (0.999, warm-up) and a CSV logger writing every 50 steps.

    The module calls ``self.log`` on the steps whose values the loggers write (every ``log_every_n_steps`` = 50)."""
    L.seed_everything(0, verbose=False)
    dm = data_module(batch)
    model = DiffusionModule(net=lambda s: TimeMLP(s, hidden=hidden), data_shape=(2,), schedule=LinearSchedule(),
                            ema_decay=0.999 if defaults else None, eval_metrics=False,
                            optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    timer = StepTimer()
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=defaults and L.pytorch.loggers.CSVLogger(
        "/tmp/lit_gen_bench_overhead"), log_every_n_steps=50, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[timer])
    trainer.fit(model, datamodule=dm)
    return 1000 * (timer.end - timer.start) / (steps - WARMUP)


def plain_ms(hidden: int, batch: int, steps: int) -> float:
    """ms/step of the hand-written loop: index batches, loss, backward, Adam step."""
    torch.manual_seed(0)
    x = data_module(batch).tensor("train")
    net = TimeMLP((2,), hidden=hidden)
    schedule = LinearSchedule()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    perm, pos, start = torch.randperm(len(x), generator=g), 0, 0.0
    for step in range(steps):
        if step == WARMUP:
            start = time.process_time()
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        x0 = x[perm[pos : pos + batch]]
        pos += batch
        loss = dsm_loss(net, schedule, x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return 1000 * (time.process_time() - start) / (steps - WARMUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 steps × 5 repeats")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/overhead.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = args.steps or (200 if args.quick else 1000)
    repeats = args.repeats or (5 if args.quick else 11)
    variants = ("plain", "lightning", "lightning_defaults")
    times: dict[tuple[int, int], dict[str, list[float]]] = {(h, b): {v: [] for v in variants} for h, b, _ in CASES}
    with Progress() as progress:
        task = progress.add_task("Lightning overhead", total=len(CASES) * repeats * len(variants))
        for r in range(repeats):
            for hidden, batch, _ in CASES:
                order = variants if r % 2 == 0 else variants[::-1]  # alternate who goes first
                for v in order:
                    if v == "plain":
                        ms = plain_ms(hidden, batch, steps)
                    else:
                        ms = lightning_ms(hidden, batch, steps, defaults=v == "lightning_defaults")
                    times[(hidden, batch)][v].append(ms)
                    progress.advance(task)
    table = Table(title=f"CPU ms per training step, median of {repeats} interleaved repeats of {steps} steps")
    for col in ("hidden", "batch", "plain", "Lightning", "ratio", "goal", "EMA+log/50", "ratio"):
        table.add_column(col)
    lines = [
        f"Median CPU ms per training step over {repeats} interleaved repeats of {steps} steps (first {WARMUP} "
        "excluded), 1 torch thread. Same TimeMLP (depth 3), Adam 1e-3, ε-prediction DDPM loss, index-drawn batches "
        "of 8gaussians; no EMA, logger, progress bar or checkpoints unless stated. Ratios are medians of per-repeat "
        "ratios to the plain loop. The module calls `self.log` only on the steps the loggers write (every "
        "`log_every_n_steps` = 50). *EMA + log/50*: the shipped defaults (EMA 0.999 with warm-up, CSV logger "
        "writing every 50 steps).",
        "",
        "| hidden | batch | plain loop ms | Lightning ms | ratio | goal | met | EMA + log/50 ms | ratio |",
        "|---:|---:|---:|---:|---:|---:|:-:|---:|---:|",
    ]
    notes: list[str] = []
    for hidden, batch, goal in CASES:
        t = times[(hidden, batch)]
        med = {v: statistics.median(t[v]) for v in variants}
        ratio = {v: statistics.median(a / b for a, b in zip(t[v], t["plain"], strict=True)) for v in variants}
        met = "yes" if ratio["lightning"] <= goal else f"no (+{100 * (ratio['lightning'] - goal):.0f} pts)"
        cells = [f"{med['plain']:.3f}", f"{med['lightning']:.3f}", f"{ratio['lightning']:.3f}", f"{goal:.2f}",
                 f"{med['lightning_defaults']:.3f}", f"{ratio['lightning_defaults']:.3f}"]
        table.add_row(str(hidden), str(batch), *cells)
        lines.append(f"| {hidden} | {batch} | {' | '.join(cells[:4])} | {met} | {' | '.join(cells[4:])} |")
        if ratio["lightning"] > goal:
            notes.append(
                f"hidden {hidden} / batch {batch}: {ratio['lightning']:.2f}× misses the {goal:.2f}× goal by "
                f"{med['lightning'] - med['plain']:.2f} ms per step of Lightning's loop, hooks and progress tracking."
            )
    Console().print(table)
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/bench_overhead.py" + (" --quick" if args.quick else "")
    out.write_text(f"## Speed: Lightning overhead per training step\n\nCommand: `{cmd}`\n\n" + "\n".join(lines)
                   + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Diffusion on the toy sets: which sampler and EMA a config should ship with, and NFE against quality.

For each toy set one ``DiffusionModule`` is trained with the settings of ``configs/diffusion/toy2d.yaml`` (v
prediction, cosine schedule, TimeMLP 256×4), then sampled with the EMA weights and with the raw weights by
Heun (Karras σ, σ_max 80) at 5/9/18 steps (9/17/35 NFE), DDIM (η = 0, trailing) at 10/35 steps, Euler–Maruyama at
100 steps and DDPM ancestral at all 1000 steps. SW1 and MMD² are measured against held-out data next to the
data-vs-data floor (the same metric between two independent draws of the data).

    python benchmarks/bench_diffusion.py [--quick] --out benchmarks/results/diffusion.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from lit_gen.data import Toy2DDataModule
from lit_gen.diffusion import CosineSchedule
from lit_gen.metrics import mmd2_unbiased, sliced_wasserstein
from lit_gen.models import DiffusionModule
from lit_gen.nn import TimeMLP

SAMPLERS = [
    ("heun", 5, {"sigma_max": 80.0}),
    ("heun", 9, {"sigma_max": 80.0}),
    ("heun", 18, {"sigma_max": 80.0}),
    ("ddim", 10, {}),
    ("ddim", 35, {}),
    ("euler_maruyama", 100, {}),
    ("ddpm", 1000, {}),
]


def train(name: str, steps: int, seed: int = 0) -> tuple[DiffusionModule, Toy2DDataModule, float]:
    L.seed_everything(seed, verbose=False)
    dm = Toy2DDataModule(name=name, n_train=20000, n_val=1000, n_test=5000, batch_size=256, seed=seed)
    model = DiffusionModule(
        net=lambda s: TimeMLP(s, hidden=256, depth=4), data_shape=dm.data_shape, schedule=CosineSchedule(1000),
        prediction="v", ema_decay=0.999, ema_warmup=True, eval_metrics=False,
        optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=1e-4),
    )
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        gradient_clip_val=1.0)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return model, dm, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two data sets, 2000 steps")
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/diffusion.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = args.sets or (["8gaussians", "swissroll"] if args.quick else
                         ["8gaussians", "25gaussians", "swissroll", "2spirals", "pinwheel", "checkerboard"])
    steps = args.steps or (2000 if args.quick else 6000)
    rows = []
    with Progress() as progress:
        task = progress.add_task("diffusion benchmark", total=len(sets) * (1 + 2 * len(SAMPLERS)))
        for name in sets:
            model, dm, seconds = train(name, steps)
            progress.advance(task)
            test, train_data = dm.tensor("test"), dm.tensor("train")
            floor = float(sliced_wasserstein(train_data[: len(test)], test))
            mmd_floor = float(mmd2_unbiased(train_data[: len(test)], test))
            for ema in (True, False):
                for sampler, k, kw in SAMPLERS:
                    g = torch.Generator().manual_seed(1)
                    x, nfe = model.sample(len(test), sampler=sampler, steps=k, generator=g, use_ema=ema,
                                          return_nfe=True, **kw)
                    rows.append(dict(set=name, ema=ema, sampler=f"{sampler}-{k}", nfe=nfe,
                                     sw1=float(sliced_wasserstein(x, test)), mmd=float(mmd2_unbiased(x, test)),
                                     floor=floor, mmd_floor=mmd_floor, train_s=seconds))
                    progress.advance(task)
    table = Table(title=f"Diffusion samplers after {steps} training steps (SW1 / MMD² vs held-out data)")
    for col in ("set", "weights", "sampler", "NFE", "SW1", "floor", "MMD²"):
        table.add_column(col)
    lines = [
        f"Trained {steps} steps (batch 256, TimeMLP 256×4, v-prediction, cosine schedule, Adam 1e-3 cosine-annealed "
        f"to 1e-4), then sampled 5000 points per row; floor = SW1 between 5000 training and 5000 test points.",
        "",
        "| set | weights | sampler | NFE | SW1 | SW1 floor | MMD² | train s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        w = "EMA" if r["ema"] else "raw"
        table.add_row(r["set"], w, r["sampler"], str(r["nfe"]), f"{r['sw1']:.4f}", f"{r['floor']:.4f}",
                      f"{r['mmd']:.5f}")
        lines.append(f"| {r['set']} | {w} | {r['sampler']} | {r['nfe']} | {r['sw1']:.4f} | {r['floor']:.4f} | "
                     f"{r['mmd']:.5f} | {r['train_s']:.0f} |")
    Console().print(table)
    lines += ["", *nfe_for_quality(rows)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/bench_diffusion.py" + (" --quick" if args.quick else "")
    out.write_text(f"## Diffusion: samplers, NFE and EMA\n\nCommand: `{cmd}`\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")


def nfe_for_quality(rows: list[dict], slack: float = 1.25) -> list[str]:
    """NFE each sampler family needs for a given SW1: ``slack`` × the best EMA row on the set (the lowest NFE of
    the family at or under that target; the family's rows stand at the NFE values of ``SAMPLERS``)."""
    out = ["NFE needed for a given quality (EMA weights): the fewest NFE at which each sampler reaches SW1 ≤ "
           f"{slack:g} × the best row on the set; '> k' when none of its rows (largest k) does.", "",
           "| set | target SW1 | " + " | ".join(dict.fromkeys(r["sampler"].rsplit("-", 1)[0] for r in rows)) + " |",
           "|---|---:|" + "---:|" * len(dict.fromkeys(r["sampler"].rsplit("-", 1)[0] for r in rows))]
    for name in dict.fromkeys(r["set"] for r in rows):
        ema = [r for r in rows if r["set"] == name and r["ema"]]
        target = slack * min(r["sw1"] for r in ema)
        cells = []
        for family in dict.fromkeys(r["sampler"].rsplit("-", 1)[0] for r in rows):
            mine = sorted((r for r in ema if r["sampler"].rsplit("-", 1)[0] == family), key=lambda r: r["nfe"])
            hit = [r["nfe"] for r in mine if r["sw1"] <= target]
            cells.append(str(hit[0]) if hit else f"> {mine[-1]['nfe']}")
        out.append(f"| {name} | {target:.4f} | " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    main()

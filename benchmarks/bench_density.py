"""Densities right on multi-modal data: short-run chains against replica exchange, for EBMModule and DCDModule.

The claim checked (docs/algorithms.md#tempered-and-adapted-training-chains): short-run chains do not move mass
between distant modes, so an energy trained on them gets the mode weights wrong; a negative phase that runs
parallel tempering (replica exchange over a temperature ladder; Swendsen & Wang 1986, Geyer 1991) does. **Goal:**
grid-NLL gap ≤ 0.1 nats with no mass escape on 8gaussians, 25gaussians and unequal_gaussians (4 modes, weights
∝ 10 : 4 : 2 : 1), at the toy configs' budgets, for both modules.

Four rows per set, one seed, the same energy network (3×128 SiLU MLP), data (20k training points), batch 256,
Adam(1e-3, β = (0, 0.999)) and gradient clipping 1:

- **EBM plain**: ``configs/ebm/toy2d.yaml``: replay buffer 10k (restart 0.05), 20 exact Langevin steps of 0.01,
  α = 0.1, 4000 steps.
- **EBM tempered**: ``configs/ebm/toy2d_tempered.yaml``: the same, the sampler a persistent ``ReplicaExchange``
  around MALA(0.01) (4 replicas, T_max = 20, swaps every 5 steps), its step adapted by dual averaging to
  acceptance 0.57 over the first 500 batches (``adapt_train_step``).
- **DCD plain**: ``configs/dcd/toy2d.yaml``: VE s = 0.3, K = 5 exact Langevin posterior steps of 0.1·s², α = 0.1,
  2000 steps.
- **DCD tempered**: ``configs/dcd/toy2d_tempered.yaml``: the posterior sampler a ``ReplicaExchange`` around the
  same Langevin (4 replicas, T_max = 10, swaps every 5 steps, K = 10 posterior steps).

Scored by the grid NLL of the 5000 test points on [−6, 6]² (400² cells; docs/algorithms.md#grid-nll) minus the
exact NLL of the mixture (*gap*, nats), the grid's log-Z change on the doubled box (*log-Z escape*, nats), and the
share of the model's grid mass outside the data box (the training data's bounding box padded by 10 %, where the
modules start their chains; *outside box*). A row meets the goal when gap ≤ 0.1 and outside box ≤ 1 %.

    python benchmarks/bench_density.py --quick   # seconds: one set, a few steps, a smoke run of the code path
    python benchmarks/bench_density.py           # ~30 minutes on one core: 3 sets × 4 rows at the configs' budgets
    python benchmarks/bench_density.py --step-scale 0.5   # half the training steps of every row (noted in the table)
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import time
from functools import partial
from pathlib import Path

import lightning as L
import torch

from lit_gen.data import Toy2DDataModule
from lit_gen.mcmc import MALA, Langevin, ReplicaExchange
from lit_gen.metrics import grid_nll
from lit_gen.metrics.grid_nll import energy_grid
from lit_gen.models import DCDModule, EBMModule
from lit_gen.nn import EnergyMLP

SETS = ("8gaussians", "25gaussians", "unequal_gaussians")
ROWS = ("EBM plain", "EBM tempered", "DCD plain", "DCD tempered")
#: training steps of the toy configs (configs/ebm/toy2d.yaml, configs/dcd/toy2d.yaml)
CONFIG_STEPS = {"EBM": 4000, "DCD": 2000}
LIMIT, CELLS = 6.0, 400
GOAL_GAP, GOAL_OUTSIDE = 0.1, 0.01


def _adam() -> partial:
    return partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.999))


def build(row: str, hidden: int = 128) -> L.LightningModule:
    """The module of ``row``, with the settings of its config."""
    net = partial(EnergyMLP, hidden=hidden, depth=3)
    if row == "EBM plain":
        return EBMModule(net, sampler=Langevin(step_size=0.01), mcmc_steps=20, chain_init="replay",
                         buffer_capacity=10000, restart_prob=0.05, alpha=0.1, optimizer=_adam(), eval_metrics=False)
    if row == "EBM tempered":
        sampler = ReplicaExchange(MALA(0.01), num_replicas=4, max_temperature=20.0, swap_every=5, persistent=True)
        return EBMModule(net, sampler=sampler, mcmc_steps=20, chain_init="replay", buffer_capacity=10000,
                         restart_prob=0.05, alpha=0.1, adapt_train_step=True, train_adapt_steps=500,
                         optimizer=_adam(), eval_metrics=False)
    if row == "DCD plain":
        return DCDModule(net, kernel="ve", noise=0.3, sampler=Langevin(), mcmc_steps=5, step_scale=0.1, alpha=0.1,
                         optimizer=_adam(), eval_metrics=False)
    if row == "DCD tempered":
        sampler = ReplicaExchange(Langevin(), num_replicas=4, max_temperature=10.0, swap_every=5)
        return DCDModule(net, kernel="ve", noise=0.3, sampler=sampler, mcmc_steps=10, step_scale=0.1, alpha=0.1,
                         optimizer=_adam(), eval_metrics=False)
    raise ValueError(f"unknown row {row!r}; rows are {ROWS}")


def outside_box_mass(energy, low: torch.Tensor, high: torch.Tensor) -> float:
    """Share of the grid mass of ``exp(−E)`` on [−L, L]² whose cell centres lie outside the box [low, high]."""
    xs, ys, e = energy_grid(energy, LIMIT, CELLS)
    log_p = torch.log_softmax(-e.double().reshape(-1), 0).reshape(e.shape)
    gx, gy = xs.double()[None, :].expand_as(log_p), ys.double()[:, None].expand_as(log_p)
    inside = (gx >= float(low[0])) & (gx <= float(high[0])) & (gy >= float(low[1])) & (gy <= float(high[1]))
    return float(log_p[~inside].exp().sum())


def run(name: str, row: str, steps: int, n_train: int, hidden: int, seed: int = 0) -> dict[str, float]:
    L.seed_everything(seed, verbose=False)
    dm = Toy2DDataModule(name=name, n_train=n_train, n_val=256, n_test=5000, batch_size=256, seed=0)
    model = build(row, hidden)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        inference_mode=False, gradient_clip_val=1.0, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(model, dm)
    elapsed = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        res = grid_nll(model.energy, dm.tensor("test"), limit=LIMIT, n=CELLS)
        outside = outside_box_mass(model.energy, model.box_low.cpu(), model.box_high.cpu())
    true = dm.true_nll("test")
    out = {"steps": trainer.global_step, "ms": 1000 * elapsed / max(trainer.global_step, 1),
           "nll": float(res["nll"]), "true": float(true), "gap": float(res["nll"]) - float(true),
           "escape": float(res["mass_escape"]), "outside": outside}
    sampler = getattr(model, "sampler", None)
    out["swap"] = sampler.swap_rate if isinstance(sampler, ReplicaExchange) else math.nan
    if isinstance(model, DCDModule) and isinstance(model.level_samplers[0], ReplicaExchange):
        out["swap"] = model.level_samplers[0].swap_rate
    out["step"] = float(getattr(getattr(sampler, "sampler", sampler), "step_size", math.nan))
    return out


def met(r: dict[str, float]) -> bool:
    return r["gap"] <= GOAL_GAP and r["outside"] <= GOAL_OUTSIDE


def write(results: list[tuple[str, str, dict[str, float]]], args: argparse.Namespace, wall: float) -> str:
    mode = "quick mode (smoke run, not a measurement)" if args.quick else "full mode"
    scale = "" if args.step_scale == 1.0 else f" · training steps × {args.step_scale:g} of the configs' budgets"
    lines = [
        "## Densities on multi-modal data: short-run chains vs replica exchange", "",
        f"{datetime.date.today().isoformat()} · torch {torch.__version__} · cpu ({platform.machine()}, 1 thread) · "
        f"{mode} · 1 seed{scale} · {wall / 60:.1f} min in all", "",
        "Same 3×128 MLP energy, 20k training points (quick: fewer), batch 256, Adam(1e-3, β=(0, 0.999)), clipping 1. "
        "EBM rows: `configs/ebm/toy2d.yaml` (replay buffer, 20 Langevin steps of 0.01) and "
        "`configs/ebm/toy2d_tempered.yaml` (persistent ReplicaExchange around MALA, 4 replicas, T_max 20, step "
        "adapted to acceptance 0.57 over 500 batches). DCD rows: `configs/dcd/toy2d.yaml` (VE s = 0.3, K = 5) and "
        "`configs/dcd/toy2d_tempered.yaml` (ReplicaExchange posterior, 4 replicas, T_max 10, K = 10). *gap* = grid "
        "NLL − true NLL (nats, [−6, 6]², 400² cells); *log-Z escape* = |log Z on [−12, 12]² − log Z on [−6, 6]²|; "
        "*outside box* = share of the grid mass outside the data's bounding box padded by 10 %. Goal: gap ≤ 0.1 "
        "and outside box ≤ 1 %. See `benchmarks/bench_density.py` for every setting.", "",
        "| dataset | method | steps | ms/step | grid NLL | true NLL | gap | log-Z escape | outside box | swap rate "
        "| train step | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row, r in results:
        swap = "–" if math.isnan(r["swap"]) else f"{r['swap']:.2f}"
        lines.append(
            f"| {name} | {row} | {int(r['steps'])} | {r['ms']:.1f} | {r['nll']:.3f} | {r['true']:.3f} | "
            f"{r['gap']:.3f} | {r['escape']:.4f} | {100 * r['outside']:.2f} % | {swap} | {r['step']:.4g} | "
            f"{'met' if met(r) else 'missed'} |")
    n_met = sum(met(r) for _, _, r in results)
    lines += ["", "### Verdict", ""]
    lines.append(f"The goal (gap ≤ {GOAL_GAP} nats, ≤ {100 * GOAL_OUTSIDE:g} % of the mass outside the box) is met in "
                 f"{n_met} of {len(results)} rows.")
    for row in ROWS:
        rows = [(n, r) for n, rw, r in results if rw == row]
        if rows:
            lines.append(f"- {row}: met on {', '.join(n for n, r in rows if met(r)) or 'no set'}; missed on "
                         f"{', '.join(n for n, r in rows if not met(r)) or 'no set'}.")
    if args.quick:
        lines += ["", "Quick mode trains for a few steps only: the figures check that the code runs, nothing more."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds: one set, a few steps, a small network")
    parser.add_argument("--step-scale", type=float, default=1.0, help="fraction of the configs' training steps")
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--rows", nargs="*", default=None, help=f"subset of {ROWS}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "density.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = args.datasets or (("unequal_gaussians",) if args.quick else SETS)
    rows = args.rows or ROWS
    start = time.perf_counter()
    results = []
    for name in sets:
        for row in rows:
            steps = 6 if args.quick else max(1, round(CONFIG_STEPS[row.split()[0]] * args.step_scale))
            r = run(name, row, steps, n_train=2048 if args.quick else 20000, hidden=16 if args.quick else 128)
            print(f"{name:18s} {row:13s} steps {int(r['steps']):5d}  {r['ms']:7.1f} ms/step  gap {r['gap']:8.3f}  "
                  f"escape {r['escape']:.4f}  outside {100 * r['outside']:6.2f} %  swap {r['swap']:.2f}", flush=True)
            results.append((name, row, r))
    text = write(results, args, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

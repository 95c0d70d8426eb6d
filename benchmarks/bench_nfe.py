"""Quality against NFE: ``FlowMatchingModule`` and ``DiffusionModule`` with the same network, batches and steps.

On each set (the 2-D toys 8gaussians and moons, and the sklearn 8×8 digits) one flow and one diffusion model are
trained by ``Trainer.fit`` on the same data module (same seed, so the same batch order), with the same ``TimeMLP``
(128×3; ``--quick`` 64×2; the digits flattened to 64-d), steps, Adam 1e-3 cosine-annealed to 1e-4, gradient-norm
clip 1 and EMA 0.999 with warm-up; each model keeps the settings of its shipped toy config
(``configs/flow/toy2d.yaml``: straight path x_t = (1 − t) x0 + t x1 with minibatch exact-OT pairs;
``configs/diffusion/toy2d.yaml``: v-prediction on the cosine schedule). Both are sampled from their EMA weights at
the NFE budgets N ∈ {2, 4, …, 128} (network evaluations per sample):

- flow: dx/dt = v(x, t) from source draws at t = 0 to t = 1 by the fixed-step solvers of
  :mod:`lit_gen.diffusion.ode`: Euler (N steps), midpoint and Heun (N/2 steps of 2 evaluations);
- diffusion: DDIM (η = 0, trailing spacing; N steps), DPM-Solver++(2M) (log-SNR spacing; N steps) and Heun on the
  Karras σ grid (⌈N/2⌉ steps; its last step is a single Euler step, so it spends N − 1).

Quality: on the toys SW1(samples, held-out points) (``lit_gen.metrics.sliced_wasserstein``, 512 fixed directions);
on the digits FD-digits, the Fréchet distance ‖μ_s − μ_h‖² + Tr(Σ_s + Σ_h − 2(Σ_s Σ_h)^{1/2}) between Gaussian fits
of the 64-d penultimate features of lit_gen's digits classifier (``lit_gen.metrics.load_digits_classifier``, the
features behind ``lit_gen.evaluation.FDDigits``) on the samples and on the held-out (validation + test) digits;
digit samples of both models are clamped to the data range [-1, 1]. Floors: the same metric with training points in
place of samples. Summary: for each model its best value q* over samplers and budgets, and the fewest NFE at which
one of its samplers reaches q ≤ 1.25·q* (each model's own target), and 1.25 × the better of the two models' q*
(a common target).

    python benchmarks/bench_nfe.py [--quick] [--steps N --hidden H --depth D --n-eval N] --out benchmarks/results/nfe.md
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from lit_gen.data import DigitsDataModule, Toy2DDataModule
from lit_gen.diffusion import CosineSchedule
from lit_gen.metrics import load_digits_classifier, sliced_wasserstein
from lit_gen.metrics.frechet import frechet_distance_of_features
from lit_gen.models import DiffusionModule, FlowMatchingModule
from lit_gen.nn import TimeMLP

SLACK = 1.25
TOYS = ("8gaussians", "moons")
FLOW_SAMPLERS = ("euler", "midpoint", "heun")
DIFFUSION_SAMPLERS = ("ddim", "dpm_solver++", "heun")
Sampler = Callable[[int, int], tuple[Tensor, int]]  # (n, NFE budget) -> (samples, NFE spent)


# ------------------------------------------------------------------------------------------------ models
def optimizer_kwargs(steps: int) -> dict[str, Any]:
    """What both models share: Adam 1e-3 cosine-annealed to 1e-4 over ``steps``, EMA 0.999 with warm-up."""
    return dict(optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
                lr_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=1e-4),
                ema_decay=0.999, ema_warmup=True, eval_metrics=False)


def build_models(shape: tuple[int, ...], hidden: int, depth: int, steps: int) -> dict[str, L.LightningModule]:
    """The flow (straight path, exact-OT pairs) and the diffusion model (v, cosine) on the same TimeMLP."""
    def net(s: Any) -> TimeMLP:
        return TimeMLP(s, hidden=hidden, depth=depth)

    return {
        "flow": FlowMatchingModule(net=net, data_shape=shape, coupling="ot", test_nll_samples=0,
                                   **optimizer_kwargs(steps)),
        "diffusion": DiffusionModule(net=net, data_shape=shape, schedule=CosineSchedule(1000), prediction="v",
                                     **optimizer_kwargs(steps)),
    }


def fit(model: L.LightningModule, dm: L.LightningDataModule, steps: int) -> float:
    """``steps`` optimizer steps of ``model`` on ``dm`` on the CPU, seeded; returns the seconds taken."""
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, gradient_clip_val=1.0)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return time.perf_counter() - start


def flow_sampler(model: FlowMatchingModule, method: str) -> Sampler:
    """Fixed-step ODE sampling at an NFE budget: Euler one evaluation per step, midpoint/Heun two."""
    per_step = 1 if method == "euler" else 2

    def draw(n: int, budget: int) -> tuple[Tensor, int]:
        x, nfe = model.sample(n, num_steps=max(1, budget // per_step), method=method,  # type: ignore[arg-type]
                              generator=torch.Generator().manual_seed(1), return_nfe=True)
        return x, nfe

    return draw


def diffusion_sampler(model: DiffusionModule, name: str) -> Sampler:
    """DDIM and DPM-Solver++ one evaluation per step; Heun 2k − 1 for k steps, so k = ⌈budget / 2⌉."""
    def draw(n: int, budget: int) -> tuple[Tensor, int]:
        steps = (budget + 1) // 2 if name == "heun" else budget
        x, nfe = model.sample(n, sampler=name, steps=steps, generator=torch.Generator().manual_seed(1),
                              return_nfe=True)  # type: ignore[misc]
        return x, nfe

    return draw


def samplers(kind: str, model: L.LightningModule) -> dict[str, Sampler]:
    if kind == "flow":
        return {m: flow_sampler(model, m) for m in FLOW_SAMPLERS}  # type: ignore[arg-type]
    return {m: diffusion_sampler(model, m) for m in DIFFUSION_SAMPLERS}  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ metrics
Task = tuple[L.LightningDataModule, Callable[[Tensor], float], str, int]  # data, metric, floor, samples per value


def toy_task(name: str, n_eval: int, batch: int) -> Task:
    """The toy data module, SW1 against its ``n_eval`` held-out points, the floor (mean ± sd of SW1 between
    disjoint ``n_eval``-point chunks of the training split and the held-out points), and ``n_eval``."""
    dm = Toy2DDataModule(name=name, n_train=20000, n_val=256, n_test=n_eval, batch_size=batch, seed=0)
    dm.setup()
    test = dm.tensor("test")

    def metric(x: Tensor) -> float:
        return float(sliced_wasserstein(x.float(), test))

    train = dm.tensor("train")
    draws = torch.tensor([metric(train[i : i + n_eval]) for i in range(0, len(train) - n_eval + 1, n_eval)])
    spread = f" ± {float(draws.std()):.4f}" if len(draws) > 1 else ""
    return dm, metric, f"{float(draws.mean()):.4f}{spread}", n_eval


def digits_task(n_eval: int, batch: int) -> Task:
    """The digits data module, FD-digits against the held-out digits (val + test), the floor with n training
    digits in place of samples, and n = min(``n_eval``, training digits)."""
    dm = DigitsDataModule(batch_size=batch)
    dm.setup()
    features = load_digits_classifier().features
    with torch.no_grad():
        held_out = features(torch.cat([dm.tensor("val"), dm.tensor("test")]))

    def metric(x: Tensor) -> float:
        with torch.no_grad():
            return float(frechet_distance_of_features(features(x.float().clamp(-1.0, 1.0)), held_out))

    n = min(n_eval, len(dm.tensor("train")))
    return dm, metric, f"{metric(dm.tensor('train')[:n]):.2f}", n


# ------------------------------------------------------------------------------------------------ runs
def run_set(name: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], str, dict[str, float]]:
    """Train both models on one set, then the metric of every sampler at every budget."""
    if name == "digits":
        dm, metric, floor, n = digits_task(args.n_eval, args.digits_batch)
        shape: tuple[int, ...] = (1, 8, 8)
    else:
        dm, metric, floor, n = toy_task(name, args.n_eval, args.batch)
        shape = (2,)
    args.samples[name] = n
    rows, seconds = [], {}
    for kind, model in build_models(shape, args.hidden, args.depth, args.steps).items():
        seconds[kind] = fit(model, dm, args.steps)
        model.eval()
        for sampler, draw in samplers(kind, model).items():
            for budget in args.nfe:
                x, nfe = draw(n, budget)
                rows.append(dict(set=name, model=kind, sampler=sampler, budget=budget, nfe=nfe, value=metric(x)))
            print(f"{name} {kind} {sampler}: " + ", ".join(f"{r['nfe']}:{r['value']:.4f}" for r in rows
                                                           if r["model"] == kind and r["sampler"] == sampler),
                  flush=True)
    return rows, floor, seconds


def fewest_nfe(rows: list[dict[str, Any]], target: float) -> tuple[int, str] | None:
    """The fewest NFE (and the sampler) among ``rows`` at or under ``target``; ``None`` when none is."""
    hits = sorted((r["nfe"], r["sampler"]) for r in rows if r["value"] <= target)
    return hits[0] if hits else None


def fmt_hit(hit: tuple[int, str] | None, rows: list[dict[str, Any]]) -> str:
    return f"{hit[0]} ({hit[1]})" if hit else f"> {max(r['nfe'] for r in rows)}"


def summary(rows: list[dict[str, Any]], floors: dict[str, str]) -> list[str]:
    """Per set and model: the best value, the value at the largest budget, and the fewest NFE reaching its own and
    the common 1.25× targets; a note where a few-step sampler beats the model's converged ones by more than 1.25×."""
    lines = [f"Fewest NFE to reach {SLACK:g}× the best value: *own* target = {SLACK:g} × the model's best q* (over "
             f"its samplers and budgets); *common* target = {SLACK:g} × the better model's q* on the set; "
             "*largest N*: the best sampler's value at the largest budget (the converged solvers).", "",
             "| set | metric | floor | model | best q* (sampler, NFE) | largest N | own target | fewest NFE (own) | "
             "common target | fewest NFE (common) |",
             "|---|---|---:|---|---|---:|---:|---|---:|---|"]
    notes = []
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        best_all = min(r["value"] for r in mine)
        for kind in ("flow", "diffusion"):
            part = [r for r in mine if r["model"] == kind]
            best = min(part, key=lambda r: r["value"])
            top = max(r["budget"] for r in part)
            last = min((r for r in part if r["budget"] == top), key=lambda r: r["value"])
            own, common = SLACK * best["value"], SLACK * best_all
            lines.append(
                f"| {name} | {metric_name(name)} | {floors[name]} | {kind} | {best['value']:.4f} "
                f"({best['sampler']}, {best['nfe']}) | {last['value']:.4f} | {own:.4f} | "
                f"{fmt_hit(fewest_nfe(part, own), part)} | {common:.4f} | {fmt_hit(fewest_nfe(part, common), part)} |")
            if last["value"] > own:
                notes.append(f"- {name}, {kind}: its best ({best['sampler']}, {best['nfe']} NFE) is more than "
                             f"{SLACK:g}× better than its converged samplers ({last['value']:.4f} at {last['nfe']} "
                             "NFE): the few-step solver's error happens to lower the metric, so this row's fewest "
                             "NFE says as much about the metric as about the sampler.")
    return [*lines, *([""] + notes if notes else [])]


def metric_name(name: str) -> str:
    return "FD-digits" if name == "digits" else "SW1"


def curve_table(rows: list[dict[str, Any]], budgets: list[int]) -> list[str]:
    """One row per set, model and sampler: the metric at each NFE budget (NFE spent in brackets when less)."""
    lines = ["| set | model | sampler | " + " | ".join(f"N = {b}" for b in budgets) + " |",
             "|---|---|---|" + "---:|" * len(budgets)]
    for key in dict.fromkeys((r["set"], r["model"], r["sampler"]) for r in rows):
        cells = []
        for b in budgets:
            r = next(r for r in rows if (r["set"], r["model"], r["sampler"]) == key and r["budget"] == b)
            value = "nan" if not math.isfinite(r["value"]) else f"{r['value']:.4f}"
            cells.append(value if r["nfe"] == b else f"{value} ({r['nfe']})")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return lines


def command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (its non-default options)."""
    parts = ["python benchmarks/bench_nfe.py", *(["--quick"] if args.quick else [])]
    for name in ("steps", "hidden", "depth", "n_eval"):
        if getattr(args, f"given_{name}"):
            parts.append(f"--{name.replace('_', '-')} {getattr(args, name)}")
    if args.given_sets:
        parts.append("--sets " + " ".join(args.sets))
    return " ".join(parts)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="600 steps, TimeMLP 64×2, 1000 evaluation points, NFE up to 64")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 3000, --quick 600)")
    parser.add_argument("--hidden", type=int, default=None, help="TimeMLP width (default 128, --quick 64)")
    parser.add_argument("--depth", type=int, default=None, help="TimeMLP depth (default 3, --quick 2)")
    parser.add_argument("--n-eval", type=int, default=None,
                        help="samples (and toy held-out points) per value (default 4000, --quick 1000)")
    parser.add_argument("--sets", nargs="*", default=None, choices=[*TOYS, "digits"])
    parser.add_argument("--out", default="benchmarks/results/nfe.md")
    args = parser.parse_args()
    for name in ("steps", "hidden", "depth", "n_eval", "sets"):
        setattr(args, f"given_{name}", getattr(args, name) is not None)
    q = args.quick
    args.steps = args.steps or (600 if q else 3000)
    args.hidden = args.hidden or (64 if q else 128)
    args.depth = args.depth or (2 if q else 3)
    args.n_eval = args.n_eval or (1000 if q else 4000)
    args.sets = args.sets or [*TOYS, "digits"]
    args.nfe = [2, 4, 8, 16, 32, 64] if q else [2, 4, 8, 16, 32, 64, 128]
    args.batch, args.digits_batch = 256, 128
    args.samples = {}  # samples per value, by set (run_set fills it)
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    floors: dict[str, str] = {}
    seconds: dict[str, dict[str, float]] = {}
    for name in args.sets:
        set_rows, floors[name], seconds[name] = run_set(name, args)
        rows += set_rows
    write(args, rows, floors, seconds, time.perf_counter() - started)


def write(args: argparse.Namespace, rows: list[dict[str, Any]], floors: dict[str, str],
          seconds: dict[str, dict[str, float]], wall: float) -> None:
    train = "; ".join(f"{n}: flow {s['flow']:.0f} s, diffusion {s['diffusion']:.0f} s" for n, s in seconds.items())
    lines = [
        f"Flow (straight path, exact-OT pairs) and diffusion (v-prediction, cosine schedule) trained {args.steps} "
        "steps "
        f"each on the same batches (toys: batch {args.batch}; digits: batch {args.digits_batch}, flattened to 64-d), "
        f"TimeMLP {args.hidden}×{args.depth}, Adam 1e-3 cosine-annealed to 1e-4, grad-norm clip 1, EMA 0.999 with "
        f"warm-up; EMA weights, one seed. Toys: SW1 of {args.n_eval} samples against as many held-out points; digits: "
        f"FD-digits of {args.samples.get('digits', '–')} samples against the held-out digits (validation + test), "
        "samples clamped to [-1, 1]. "
        "Flow samplers: fixed-step ODE solvers (Euler N steps; midpoint and Heun N/2 steps). Diffusion samplers: "
        "DDIM (η = 0, trailing), DPM-Solver++(2M) (log-SNR), Heun on Karras σ (⌈N/2⌉ steps, N − 1 NFE, shown in "
        "brackets).",
        "",
        *curve_table(rows, args.nfe),
        "",
        *summary(rows, floors),
        "",
        f"- Training time: {train}. Wall time of this run: {wall:.0f} s.",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"## Quality against NFE: flow matching and diffusion\n\nCommand: `{command(args)}`\n\n"
                   + "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Flow matching: lit_gen's ``FlowMatchingModule`` against torchcfm and flow_matching (Meta) on three transports.

Tasks: Gaussian → 8gaussians, Gaussian → moons, moons → 8gaussians (data → data: the source is a second
``Toy2DDataModule``). Every contender trains the same ``TimeMLP`` (called at ``1000 · t``) for the same number of
steps on the very same data batches (a fresh ``Toy2DDataModule`` with the same seed yields the same order), batch 256,
Adam 1e-3 cosine-annealed to 1e-4, gradient norm clipped at 1, EMA 0.999 with warm-up (``--quick``: batch 128, 150
steps, a 64×2 network; ``--steps/--batch/--hidden/--depth/--n-eval/--tol`` set a middle run), and is sampled from the
EMA weights by the same solvers of :mod:`lit_gen.diffusion.ode`, so only the training objective differs:

- lit_gen ``FlowMatchingModule`` through ``Trainer.fit``: straight path with the independent coupling (I-CFM), with
  minibatch exact OT (OT-CFM), and the Brownian bridge with Sinkhorn pairs at ``reg = 2σ²`` (SB-CFM, σ = 0.1);
- torchcfm (Tong et al. 2024): ``ConditionalFlowMatcher``, ``ExactOptimalTransportConditionalFlowMatcher`` and
  ``SchrodingerBridgeConditionalFlowMatcher(ot_method="sinkhorn")`` at the same σ, once as shipped and once with
  its ``OTPlanSampler(normalize_cost=True)`` (its own remedy: at ``reg = 2σ² = 0.02`` POT's plain Sinkhorn on
  the raw squared distances underflows at its first iteration, so the stock plan puts its mass on a few pairs);
- flow_matching (Lipman et al. 2024): ``AffineProbPath(CondOTScheduler())`` with independent pairs (it has no
  minibatch coupling).

Reported per model: the exact 2-Wasserstein distance between samples and held-out data (POT's ``ot.emd2`` when
installed; otherwise ``scipy.optimize.linear_sum_assignment`` on at most 2000 points of each), for adaptive
Dormand–Prince sampling (rtol = atol = 1e-5, ``--quick`` 1e-4; its NFE) and for fixed budgets (Euler 4 and 8 steps,
midpoint 8 steps); the path energy ``E ∫_0^1 ‖v(x_t, t)‖² dt`` along the sampled trajectories (Benamou–Brenier: a flow
reaching the data spends at least W2²(source, data), the OT map exactly that); and the floor (W2 between two
independent draws of the data). Peers that are not installed are skipped with a note.

The goal checked per task and budget: the W2 of lit_gen's best coupling at most the best peer's at the same steps
and NFE (the fixed budgets; the adaptive solver's NFE differ between models and are shown next to it).

    python benchmarks/bench_flow.py [--quick] [--steps N --batch B --hidden H --depth D --n-eval N --tol T]
        --out benchmarks/results/flow.md

On two shared cores ``--quick`` takes about a minute; ``--steps 1500 --batch 128 --hidden 128 --depth 3 --n-eval
2000`` about half an hour (lit_gen's log-domain Sinkhorn coupling costs the most per step). The full default takes
hours: each exact W2 of 10 000 points is about 45 s there, and the run computes 120 of them.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# the same data, batch size and batch stream as the peers benchmark (run as a script: benchmarks/ is on sys.path)
import bench_peers  # noqa: E402,I001
import lightning as L
import torch
from bench_peers import BATCH, batches, data_module  # noqa: E402,I001
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from lit_gen.diffusion.ode import odeint
from lit_gen.models import FlowMatchingModule
from lit_gen.nn import TimeMLP
from lit_gen.utils.ema import ExponentialMovingAverage

SIGMA_SB = 0.1
TASKS: dict[str, tuple[str, str]] = {
    "gaussian→8gaussians": ("gaussian", "8gaussians"),
    "gaussian→moons": ("gaussian", "moons"),
    "moons→8gaussians": ("moons", "8gaussians"),
}
FIXED = (("euler", 4), ("euler", 8), ("midpoint", 8))  # (method, steps): NFE 4, 8, 16
Velocity = Callable[[Tensor, Tensor], Tensor]


# ------------------------------------------------------------------------------------------------ data
def source_sampler(source: str, n_test: int) -> Callable[[int, torch.Generator | None], Tensor]:
    """Draws of the source: ``N(0, I)``, or uniform draws from the source set's training split (seed 1)."""
    if source == "gaussian":
        return lambda n, g: torch.randn(n, 2, generator=g)
    points = data_module(source, n_test, seed=1).tensor("train")
    return lambda n, g: points[torch.randint(len(points), (n,), generator=g)]


# ------------------------------------------------------------------------------------------------ metrics
def w2(x: Tensor, y: Tensor, max_points_scipy: int = 2000) -> float:
    """Exact 2-Wasserstein distance between two equal-size point sets (POT, else an assignment on ≤ 2000)."""
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        return math.nan
    cost = torch.cdist(x, y).square()
    try:
        import ot

        n, m = len(x), len(y)
        return math.sqrt(float(ot.emd2(torch.full((n,), 1 / n, dtype=torch.float64),
                                       torch.full((m,), 1 / m, dtype=torch.float64), cost, numItermax=10**7)))
    except ImportError:
        from scipy.optimize import linear_sum_assignment

        k = min(len(x), len(y), max_points_scipy)
        sub = cost[:k, :k].numpy()
        rows, cols = linear_sum_assignment(sub)
        return math.sqrt(float(sub[rows, cols].mean()))


def evaluate(velocity: Velocity, draw: Callable[[int, torch.Generator | None], Tensor], test: Tensor,
             tol: float = 1e-5) -> dict[str, Any]:
    """W2 and path energy of adaptive sampling, W2 of the fixed budgets; every run from the same source draws."""
    x0 = draw(len(test), torch.Generator().manual_seed(1)).float()
    n = len(x0)

    def field(t: float, x: Tensor) -> Tensor:
        return velocity(x, torch.full((n,), t))

    def augmented(t: float, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        v = field(t, state[0])
        return v, v.square().sum(1)

    out: dict[str, Any] = {}
    with torch.no_grad():
        sol = odeint(augmented, (x0, torch.zeros(n)), 0.0, 1.0, "dopri5", rtol=tol, atol=tol)
        x1, energy = sol.x
        out["dopri5"] = (w2(x1, test), sol.nfe)
        out["energy"] = float(energy.mean())
        for method, steps in FIXED:
            fixed = odeint(field, x0, 0.0, 1.0, method, num_steps=steps)  # type: ignore[arg-type]
            out[f"{method}-{steps}"] = (w2(fixed.x, test), fixed.nfe)  # type: ignore[arg-type]
    return out


# ------------------------------------------------------------------------------------------------ training
def make_net(hidden: int, depth: int) -> TimeMLP:
    return TimeMLP((2,), hidden=hidden, depth=depth)


def plain_train(net: nn.Module, loss_fn: Callable[[Tensor], Tensor], stream: Iterator[Tensor], steps: int
                ) -> ExponentialMovingAverage:
    """The peers' loop, the same as lit_gen's under ``Trainer.fit``: Adam 1e-3 cosine to 1e-4, clip 1, EMA."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-4)
    avg = ExponentialMovingAverage(net, 0.999, True)
    for x in stream:
        loss = loss_fn(x)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"peer training loss became {float(loss)}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        avg.update_parameters(net)
    return avg


def scaled(net: nn.Module) -> Velocity:
    return lambda x, t: net(x, 1000.0 * t)


def lit_gen_flows(source: str, target: str, n_test: int, steps: int, hidden: int, depth: int
                  ) -> dict[str, Velocity]:
    variants = {
        "I-CFM (independent)": dict(coupling="independent"),
        "OT-CFM (exact OT)": dict(coupling="ot"),
        "SB-CFM (Sinkhorn, bridge)": dict(coupling="sinkhorn", prob_path="brownian_bridge", sigma=SIGMA_SB),
    }
    out: dict[str, Velocity] = {}
    for label, kwargs in variants.items():
        L.seed_everything(0, verbose=False)
        src: Any = "gaussian" if source == "gaussian" else data_module(source, n_test, seed=1)
        model = FlowMatchingModule(
            net=lambda s: make_net(hidden, depth), data_shape=(2,), source=src, ema_decay=0.999, ema_warmup=True,
            eval_metrics=False, test_nll_samples=0, optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
            lr_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=1e-4),
            **kwargs,
        )
        trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                            gradient_clip_val=1.0)
        trainer.fit(model, datamodule=data_module(target, n_test))
        out[label] = model.velocity(use_ema=True)
    return out


def torchcfm_flows(source: str, target: str, n_test: int, steps: int, hidden: int, depth: int
                   ) -> dict[str, Velocity]:
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
        SchrodingerBridgeConditionalFlowMatcher,
    )
    from torchcfm.optimal_transport import OTPlanSampler

    normalized = SchrodingerBridgeConditionalFlowMatcher(sigma=SIGMA_SB, ot_method="sinkhorn")
    normalized.ot_sampler = OTPlanSampler(method="sinkhorn", reg=2 * SIGMA_SB**2, normalize_cost=True, warn=False)
    matchers = {
        "I-CFM": ConditionalFlowMatcher(sigma=0.0),
        "OT-CFM": ExactOptimalTransportConditionalFlowMatcher(sigma=0.0),
        "SB-CFM (stock Sinkhorn)": SchrodingerBridgeConditionalFlowMatcher(sigma=SIGMA_SB, ot_method="sinkhorn"),
        "SB-CFM (normalize_cost)": normalized,
    }
    out: dict[str, Velocity] = {}
    for label, fm in matchers.items():
        L.seed_everything(0, verbose=False)  # torch and numpy (torchcfm draws its pairs by numpy)
        net = make_net(hidden, depth)
        draw = source_sampler(source, n_test)

        def loss_fn(x1: Tensor, fm: Any = fm, net: nn.Module = net, draw: Any = draw) -> Tensor:
            t, xt, ut = fm.sample_location_and_conditional_flow(draw(len(x1), None).float(), x1)
            return (net(xt, 1000.0 * t) - ut).square().mean()

        with warnings.catch_warnings():  # the stock Sinkhorn's underflow warns at every step
            warnings.simplefilter("ignore")
            avg = plain_train(net, loss_fn, batches(target, n_test, steps), steps)
        out[label] = scaled(avg.module)
    return out


def meta_flow_matching(source: str, target: str, n_test: int, steps: int, hidden: int, depth: int
                       ) -> dict[str, Velocity]:
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    path = AffineProbPath(scheduler=CondOTScheduler())
    L.seed_everything(0, verbose=False)
    net = make_net(hidden, depth)
    draw = source_sampler(source, n_test)

    def loss_fn(x1: Tensor) -> Tensor:
        t = torch.rand(len(x1))
        sample = path.sample(x_0=draw(len(x1), None).float(), x_1=x1, t=t)
        return (net(sample.x_t, 1000.0 * t) - sample.dx_t).square().mean()

    avg = plain_train(net, loss_fn, batches(target, n_test, steps), steps)
    return {"CondOT (independent)": scaled(avg.module)}


CONTENDERS: dict[str, tuple[str | None, Callable[..., dict[str, Velocity]]]] = {
    "lit_gen": (None, lit_gen_flows),
    "torchcfm": ("torchcfm", torchcfm_flows),
    "flow_matching": ("flow_matching", meta_flow_matching),
}


# ------------------------------------------------------------------------------------------------ main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="150 steps of batch 128, a 64×2 network, 600 evaluation points, dopri5 at 1e-4")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 5000, --quick 150)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 256, --quick 128)")
    parser.add_argument("--hidden", type=int, default=None, help="TimeMLP width (default 256, --quick 64)")
    parser.add_argument("--depth", type=int, default=None, help="TimeMLP depth (default 4, --quick 2)")
    parser.add_argument("--n-eval", type=int, default=None,
                        help="samples and held-out points per W2 (default 10000, --quick 600)")
    parser.add_argument("--tol", type=float, default=None, help="dopri5 rtol = atol (default 1e-5, --quick 1e-4)")
    parser.add_argument("--tasks", nargs="*", default=None, choices=sorted(TASKS))
    parser.add_argument("--out", default="benchmarks/results/flow.md")
    return parser.parse_args()


def available_contenders(notes: list[str]) -> dict[str, Callable[..., dict[str, Velocity]]]:
    """lit_gen and the installed peers; a missing peer is noted and skipped."""
    available: dict[str, Callable[..., dict[str, Velocity]]] = {}
    for lib, (module, build) in CONTENDERS.items():
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                notes.append(f"- {lib} is not installed (`pip install {lib}`): skipped.")
                print(f"note: {lib} is not installed; skipping it")
                continue
        available[lib] = build
    return available


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    global BATCH
    BATCH = args.batch or (128 if args.quick else 256)
    bench_peers.BATCH = BATCH  # data_module() (shared with the peers benchmark) reads it there
    steps = args.steps or (150 if args.quick else 5000)
    hidden = args.hidden or (64 if args.quick else 256)
    depth = args.depth or (2 if args.quick else 4)
    n_eval = args.n_eval or (600 if args.quick else 10000)
    tol = args.tol or (1e-4 if args.quick else 1e-5)
    tasks = args.tasks or list(TASKS)
    notes: list[str] = []
    available = available_contenders(notes)
    try:
        import ot  # noqa: F401

        w2_how = "exact W2 by POT's `ot.emd2`"
    except ImportError:
        w2_how = "exact W2 by `scipy.optimize.linear_sum_assignment` on 2000 points at most (POT not installed)"
    rows: list[dict[str, Any]] = []
    references: dict[str, tuple[float, float]] = {}
    started = time.perf_counter()
    for task in tasks:
        source, target = TASKS[task]
        dm = data_module(target, n_eval)
        test, train = dm.tensor("test"), dm.tensor("train")
        draw = source_sampler(source, n_eval)
        floor = w2(train[: len(test)], test)
        # Benamou–Brenier: the path energy of any flow from source to data is at least W2²(source, data)
        bound = w2(draw(len(test), torch.Generator().manual_seed(2)).float(), test) ** 2
        references[task] = (floor, bound)
        for lib, build in available.items():
            start = time.perf_counter()
            flows = build(source, target, n_eval, steps, hidden, depth)
            train_s = time.perf_counter() - start
            for label, velocity in flows.items():
                res = evaluate(velocity, draw, test, tol)
                rows.append(dict(task=task, lib=lib, model=label, train_s=train_s / len(flows), **res))
                print(f"{task} {lib} {label}: W2 {res['dopri5'][0]:.4f} ({res['dopri5'][1]} NFE), "
                      f"energy {res['energy']:.3f}", flush=True)
    notes.append(f"- Wall time of this run: {time.perf_counter() - started:.0f} s.")
    write(args, steps, hidden, depth, n_eval, tol, w2_how, rows, references, notes)


def goal_table(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's goal per task and budget: the W2 of lit_gen's best coupling at most the best peer's, at the
    same steps and NFE (the fixed budgets); the adaptive row compares at each model's own dopri5 NFE."""
    lines = ["Goal: W2 of lit_gen's best coupling ≤ the best peer's at equal steps and NFE (fixed budgets; dopri5 "
             "compared at each model's own NFE, lit_gen's vs the peer's in brackets). Ratio = lit_gen / peer.", "",
             "| task | budget (NFE) | lit_gen best | W2 | best peer | W2 | ratio | goal |",
             "|---|---|---|---:|---|---:|---:|---|"]
    verdicts = []
    for task in dict.fromkeys(r["task"] for r in rows):
        peers = [r for r in rows if r["task"] == task and r["lib"] != "lit_gen"]
        mine = [r for r in rows if r["task"] == task and r["lib"] == "lit_gen"]
        if not peers:
            verdicts.append(f"- {task}: no peer installed, goal not assessed.")
            continue
        missed: list[str] = []
        for key in ("dopri5", *(f"{m}-{s}" for m, s in FIXED)):
            a = min(mine, key=lambda r: r[key][0])
            b = min(peers, key=lambda r: r[key][0])
            ratio = a[key][0] / b[key][0]
            verdict = "met" if ratio <= 1.0 else f"missed (+{100 * (ratio - 1):.1f}%)"
            if ratio > 1.0:
                missed.append(f"{key} {verdict[7:]}")
            budget = f"{key} ({a[key][1]} vs {b[key][1]})" if key == "dopri5" else f"{key} ({a[key][1]})"
            lines.append(f"| {task} | {budget} | {a['model']} | {a[key][0]:.4f} | {b['lib']} {b['model']} | "
                         f"{b[key][0]:.4f} | {ratio:.3f} | {verdict} |")
        verdicts.append(f"- **{task}**: goal " + ("met at every budget." if not missed else
                                                   f"missed at {', '.join(missed)}; met at the other budgets."))
    return [*lines, "", *verdicts]


def caveats(n_eval: int) -> list[str]:
    """What limits the verdicts: one seed, and the sampling noise of W2 at ``n_eval`` points."""
    out = ["- One training seed per model. W2 between finite samples is noisy: the floor is a single draw of it "
           "(models can land under it), and every model is scored on the same source draws and held-out points, so "
           "the ratios are paired comparisons, but ratios within a few per cent of 1 are ties rather than wins or "
           "losses."]
    if n_eval != 10000:
        out.append(f"- W2 on {n_eval} samples, not the 10000 of the full setting (exact W2 grows fast with n; "
                   "chosen for run time).")
    return out


def command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (its non-default options)."""
    parts = ["python benchmarks/bench_flow.py", *(["--quick"] if args.quick else [])]
    for name in ("steps", "batch", "hidden", "depth", "n_eval", "tol"):
        if getattr(args, name) is not None:
            parts.append(f"--{name.replace('_', '-')} {getattr(args, name):g}")
    if args.tasks:
        parts.append("--tasks " + " ".join(args.tasks))
    return " ".join(parts)


def write(args: argparse.Namespace, steps: int, hidden: int, depth: int, n_eval: int, tol: float, w2_how: str,
          rows: list[dict[str, Any]], references: dict[str, tuple[float, float]], notes: list[str]) -> None:
    budgets = [f"{m}-{s}" for m, s in FIXED]
    table = Table(title=f"Flow matching after {steps} steps (W2 vs held-out data)")
    for col in ("task", "library", "model", "W2 dopri5", "NFE", *budgets, "energy"):
        table.add_column(col)
    header = ("| task | library | model | W2 (dopri5) | NFE | " + " | ".join(f"W2 {b}" for b in budgets)
              + " | path energy | W2 floor | W2²(source, data) | train s |")
    lines = [
        f"Every contender trained {steps} steps on the same batches (batch {BATCH}), TimeMLP {hidden}×{depth} at "
        "1000·t, Adam 1e-3 cosine-annealed to 1e-4, grad-norm clip 1, EMA 0.999 with warm-up, and was sampled from "
        f"the same {n_eval} source draws by the same solvers (lit_gen.diffusion.ode); {w2_how} against {n_eval} "
        f"held-out points. *NFE*: adaptive Dormand–Prince (rtol = atol = {tol:g}); Euler-4/8 and midpoint-8 cost 4, "
        "8 and 16 NFE. *Path energy*: E ∫‖v‖² dt along the dopri5 trajectories; a flow that reaches the data spends "
        "at least W2²(source, data) (Benamou–Brenier; equality for the OT map), the last column's estimate of which, "
        "from as many points, is biased upwards. *Floor*: W2 between training and held-out points of the data. "
        "torchcfm's *stock* SB-CFM runs POT's plain Sinkhorn at reg = 2σ² = 0.02 on raw squared distances, which "
        "underflows (POT: 'numerical errors at iteration 0') and pairs a few points only; *normalize_cost* is "
        "torchcfm's own remedy (cost divided by its batch maximum, so the effective reg is 0.02 × max cost).",
        "",
        header,
        "|" + "---|" * 3 + "---:|" * (len(budgets) + 6),
    ]
    for r in rows:
        floor, bound = references[r["task"]]
        table.add_row(r["task"], r["lib"], r["model"], f"{r['dopri5'][0]:.4f}", str(r["dopri5"][1]),
                      *(f"{r[b][0]:.4f}" for b in budgets), f"{r['energy']:.3f}")
        lines.append(f"| {r['task']} | {r['lib']} | {r['model']} | {r['dopri5'][0]:.4f} | {r['dopri5'][1]} | "
                     + " | ".join(f"{r[b][0]:.4f}" for b in budgets)
                     + f" | {r['energy']:.3f} | {floor:.4f} | {bound:.3f} | {r['train_s']:.0f} |")
    Console().print(table)
    lines += ["", *goal_table(rows), "", *caveats(n_eval), *notes]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = command(args)
    out.write_text(f"## Flow matching: torchcfm, flow_matching\n\nCommand: `{cmd}`\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

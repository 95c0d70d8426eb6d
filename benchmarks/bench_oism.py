"""DSM vs OISM targets (gradient variance across t, NLL at equal steps) and the training-free kernel score vs a
trained network on the toy sets (seed 002: Shen & Oates 2024, "Operator-informed score matching").

For each toy set two ``DiffusionModule``s with the toy config's settings (TimeMLP 256×4, v-prediction, cosine
schedule, Adam 1e-3 cosine-annealed, clip 1.0, warm-up EMA) are trained side by side from the same seed, on the
same batches and noise draws, one on the DSM target and one on the OISM target with the whole batch as reference
set (R = 256). Then:

- gradient variance: at fixed t, the trace of the covariance of the loss gradient over 32 independent batches,
  for the DSM and the OISM target, at the DSM-trained weights; also the target's mean squared error to the exact
  posterior mean ``E[v | x_t]`` (known in closed form for Gaussian mixtures), the quantity of the first check in
  ``docs/algorithms.md#oism``;
- NLL at equal steps: probability-flow ODE NLL (RK4, 32 steps, NFE 128, exact divergence) of 1000 test points
  (200 with --quick) next to their exact NLL (the floor), and SW1 of 5000 DDIM-35 samples (2000 with --quick)
  next to the data-vs-data floor of the same size;
- kernel score: ``KernelDiffusionModule`` on the same 20000 training points, the same sampler and NLL (no
  training); its NLL is also given at a smoothing bandwidth σ_min = 0.05.

    python benchmarks/bench_oism.py [--quick] --out benchmarks/results/oism.md
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from torch import Tensor

from lit_gen.data import GaussianMixture, Toy2DDataModule, toy_mixture
from lit_gen.diffusion import CosineSchedule
from lit_gen.diffusion.likelihood import pf_ode_log_prob
from lit_gen.diffusion.oism import oism_loss, oism_target
from lit_gen.metrics import sliced_wasserstein
from lit_gen.models import DiffusionModule, KernelDiffusionModule
from lit_gen.nn import TimeMLP

BATCH = 256
T_VALUES = (10, 100, 300, 600, 900)


def build(target: str) -> DiffusionModule:
    torch.manual_seed(0)
    return DiffusionModule(
        net=lambda s: TimeMLP(s, hidden=256, depth=4), data_shape=(2,), schedule=CosineSchedule(1000),
        prediction="v", ema_decay=0.999, ema_warmup=True, eval_metrics=False, target=target, reference_size=BATCH,
    )


def train_pair(train: Tensor, steps: int) -> tuple[dict[str, DiffusionModule], dict[str, float]]:
    """DSM and OISM modules trained on identical batches, times and noise (one shared random stream each step)."""
    models = {name: build(name) for name in ("dsm", "oism")}
    opts = {k: torch.optim.Adam(m.net.parameters(), lr=1e-3) for k, m in models.items()}
    scheds = {k: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=1e-4) for k, o in opts.items()}
    seconds = dict.fromkeys(models, 0.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x0 = train[torch.randint(0, len(train), (BATCH,), generator=g)]
        t = torch.randint(0, 1000, (BATCH,), generator=g).float()
        noise = torch.randn(BATCH, 2, generator=g)
        for name, model in models.items():
            start = time.perf_counter()
            loss = oism_loss(model.net, model.schedule, x0, "v", reference_size=1 if name == "dsm" else BATCH,
                             t=t, noise=noise)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.net.parameters(), 1.0)
            opts[name].step()
            scheds[name].step()
            model.ema.update_parameters(model.net)
            seconds[name] += time.perf_counter() - start
    return models, seconds


def exact_v_mean(mix: GaussianMixture, x_t: Tensor, ab: float) -> Tensor:
    """``E[v | x_t]`` for mixture data: Gaussian conditioning within each isotropic component."""
    a, var = math.sqrt(ab), 1.0 - ab
    x_t = x_t.double()
    s2 = mix.stds.square()[None, :, None]
    marg = a * a * s2 + var  # (1, K, 1)
    diff = x_t[:, None] - a * mix.means[None]
    log_norm = 0.5 * x_t.shape[1] * torch.log(marg[..., 0])
    logits = torch.log(mix.weights) - diff.square().sum(-1) / (2 * marg[..., 0]) - log_norm
    post = torch.softmax(logits, 1)
    x0_mean = (post[..., None] * (mix.means[None] + a * s2 / marg * diff)).sum(1)
    eps_mean = (x_t - a * x0_mean) / math.sqrt(var)
    return a * eps_mean - math.sqrt(var) * x0_mean


def gradient_variance(model: DiffusionModule, train: Tensor, mix: GaussianMixture | None, t: int,
                      repeats: int = 32) -> dict[str, float]:
    """Trace of the loss-gradient covariance over ``repeats`` batches at fixed ``t``, DSM vs OISM targets."""
    g = torch.Generator().manual_seed(100 + t)
    tt = torch.full((BATCH,), float(t))
    ab = float(model.schedule.alpha_bar(tt[:1]))
    grads: dict[str, list[Tensor]] = {"dsm": [], "oism": []}
    err: dict[str, list[float]] = {"dsm": [], "oism": []}
    for _ in range(repeats):
        x0 = train[torch.randint(0, len(train), (BATCH,), generator=g)]
        noise = torch.randn(BATCH, 2, generator=g)
        x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
        exact = exact_v_mean(mix, x_t, ab) if mix is not None else None
        for name, r in (("dsm", 1), ("oism", BATCH)):
            model.net.zero_grad(set_to_none=True)
            oism_loss(model.net, model.schedule, x0, "v", reference_size=r, t=tt, noise=noise).backward()
            grads[name].append(torch.cat([p.grad.flatten() for p in model.net.parameters()]))
            if exact is not None:
                target = oism_target("v", x0, noise, torch.full((BATCH,), ab), r).double()
                err[name].append(float((target - exact).square().sum(1).mean()))
    out = {f"var_{k}": float(torch.stack(v).var(0).sum()) for k, v in grads.items()}
    for k, v in err.items():
        out[f"mse_{k}"] = sum(v) / len(v) if v else math.nan
    return out


def evaluate(model: DiffusionModule, test: Tensor, n_nll: int, sigma_min: float | None = None) -> dict[str, float]:
    g = torch.Generator().manual_seed(2)
    x = model.sample(len(test), sampler="ddim", steps=35, generator=g)
    sw1 = float(sliced_wasserstein(x, test))
    out = pf_ode_log_prob(model.denoiser(), model.schedule, test[:n_nll], 32, sigma_min=sigma_min)
    return {"sw1": sw1, "nll": float(-out.log_prob.double().mean()), "nfe": out.nfe}


def fmt(v: float, digits: int = 3) -> str:
    return "—" if not math.isfinite(v) else f"{v:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two sets, 1500 steps, 2000 samples, 200 NLL points")
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/oism.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    sets = args.sets or (["8gaussians", "25gaussians"] if args.quick else ["8gaussians", "25gaussians", "swissroll"])
    steps = args.steps or (1500 if args.quick else 6000)
    n_nll, n_eval = (200, 2000) if args.quick else (1000, 5000)
    var_rows, nll_rows = [], []
    with Progress() as progress:
        task = progress.add_task("OISM benchmark", total=len(sets) * (3 + len(T_VALUES)))
        for name in sets:
            dm = Toy2DDataModule(name=name, n_train=20000, n_val=1000, n_test=5000, batch_size=BATCH, seed=0)
            train, test = dm.tensor("train"), dm.tensor("test")[:n_eval]
            floor_sw1 = float(sliced_wasserstein(train[: len(test)], test))
            true_nll = float(-dm.log_prob(test[:n_nll]).double().mean()) if dm.log_prob is not None else math.nan
            models, seconds = train_pair(train, steps)
            progress.advance(task)
            mix = toy_mixture(name)
            for t in T_VALUES:
                r = gradient_variance(models["dsm"], train, mix, t)
                var_rows.append((name, t, r))
                progress.advance(task)
            for key, model in models.items():
                e = evaluate(model, test, n_nll)
                nll_rows.append((name, f"network, {key.upper()}", e["sw1"], floor_sw1, e["nll"], true_nll,
                                 f"{seconds[key]:.0f}"))
            progress.advance(task)
            kernel = KernelDiffusionModule(schedule=CosineSchedule(1000)).fit_data(train)
            start = time.perf_counter()
            e = evaluate(kernel, test, n_nll)
            e_bw = pf_ode_log_prob(kernel.denoiser(), kernel.schedule, test[:n_nll], 32, sigma_min=0.05)
            nll_rows.append((name, "kernel score (no training)", e["sw1"], floor_sw1, e["nll"], true_nll, "0"))
            nll_rows.append((name, "kernel score, NLL at σ_min = 0.05", math.nan, floor_sw1,
                             float(-e_bw.log_prob.double().mean()), true_nll, "0"))
            progress.console.print(f"{name}: kernel evaluation {time.perf_counter() - start:.0f} s")
            progress.advance(task)
    timing = f"{time.perf_counter() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU (one thread)"
    write(args, sets, steps, n_nll, n_eval, var_rows, nll_rows, timing)


def verdict(var_rows: list, nll_rows: list) -> str:
    """One line on seed 002's claim, computed from the tables (never hand-written)."""
    ratio = {(n, t): r["var_dsm"] / r["var_oism"] for n, t, r in var_rows}
    mse = [r["mse_dsm"] / r["mse_oism"] for _, _, r in var_rows if math.isfinite(r["mse_oism"])]
    t_min, t_max = min(T_VALUES), max(T_VALUES)
    mid = [v for (_, t), v in ratio.items() if t_min < t < t_max]
    ends = [v for (_, t), v in ratio.items() if t in (t_min, t_max)]
    nll = {(row[0], row[1]): row[4] for row in nll_rows}
    deltas = [nll[(n, "network, OISM")] - nll[(n, "network, DSM")] for n, _ in nll if (n, "network, DSM") in nll]
    deltas = sorted(set(deltas))
    holds = "confirmed at intermediate t" if min(mid) > 1.5 else "not confirmed"
    harm = "no harm" if max(deltas) <= 0.05 else "worse for OISM where positive"
    return (
        f"**Verdict on the variance-reduction claim:** {holds} — OISM (R = {BATCH}) cuts the "
        f"loss-gradient variance {min(mid):.1f}–{max(mid):.1f}× at intermediate t and the target's error to "
        f"E[v | x_t] {min(mse):.1f}–{max(mse):.0f}×, but only {min(ends):.2f}–{max(ends):.2f}× at the ends "
        f"(t = {t_min}: the own point dominates the posterior weights; t = {t_max}: the lower target error does not "
        f"carry over to the gradient), so not \"most at small t\" as seed 002's first check put it; at equal "
        f"steps, test NLL OISM − DSM = {', '.join(f'{d:+.3f}' for d in deltas)} nats ({harm})."
    )


def write(
    args: argparse.Namespace, sets: list[str], steps: int, n_nll: int, n_eval: int, var_rows: list,
    nll_rows: list, timing: str,
) -> None:
    lines = [
        "## OISM vs DSM, and the kernel score (seed 002)",
        "",
        f"Command: `python benchmarks/bench_oism.py{' --quick' if args.quick else ''}` ({timing})",
        "",
        f"Sets {', '.join(sets)}; 20000 training points; DSM and OISM (R = {BATCH}, the whole batch) networks trained "
        f"{steps} steps side by side on identical batches, times and noise (TimeMLP 256×4, v-prediction, cosine "
        "schedule, Adam 1e-3 → 1e-4, clip 1.0, warm-up EMA 0.999).",
        "",
        "### Loss-gradient variance at fixed t (DSM-trained weights, 32 batches of 256)",
        "",
        "tr Cov of the gradient of the v-loss; target MSE = mean ‖target − E[v | x_t]‖² against the exact "
        "posterior mean of the mixture.",
        "",
        "| set | t | σ_t | grad var DSM | grad var OISM | ratio | target MSE DSM | target MSE OISM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    schedule = CosineSchedule(1000)
    for name, t, r in var_rows:
        sigma = float(schedule.sigma(torch.tensor([float(t)])))
        lines.append(
            f"| {name} | {t} | {sigma:.3f} | {r['var_dsm']:.4g} | {r['var_oism']:.4g} | "
            f"{r['var_dsm'] / r['var_oism']:.2f}× | {fmt(r['mse_dsm'], 4)} | {fmt(r['mse_oism'], 4)} |"
        )
    lines += [
        "",
        f"### Quality at equal steps: SW1 ({n_eval} DDIM-35 samples vs {n_eval} test points) and PF-ODE NLL "
        f"({n_nll} test points, RK4 32 steps, "
        "NFE 128, nats)",
        "",
        "| set | model | SW1 | SW1 floor | NLL | true NLL | train s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, label, sw1, floor, nll, true_nll, secs in nll_rows:
        lines.append(f"| {name} | {label} | {fmt(sw1, 4)} | {floor:.4f} | {fmt(nll)} | {fmt(true_nll)} | {secs} |")
    lines += [
        "",
        verdict(var_rows, nll_rows),
        "",
        "The kernel score is the exact score of the training set smoothed by the forward process: its samples "
        "are (near) copies of training points, so SW1 sits at the train-vs-test floor. Its NLL at the schedule's "
        "smallest noise level (σ_min ≈ edm_sigma(0)) is that of a kernel density of vanishing bandwidth: close to "
        "the truth where the training points are dense on the data's own scale, poor where they are not (the "
        "memorisation shows up there, not in SW1); the σ_min = 0.05 row is the same model at a wider bandwidth.",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    Console().print("\n".join(lines))


if __name__ == "__main__":
    main()

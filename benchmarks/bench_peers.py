"""lit_gen against its peers on the toy sets: same data stream, network, batch, optimizer and steps.

Diffusion. One TimeMLP (hidden 256, depth 4) per contender, trained for the same number of steps on the very same
batches (a fresh ``Toy2DDataModule`` with the same seed yields the same order), batch 256, Adam 1e-3 cosine-annealed
to 1e-4, gradient norm clipped at 1, sampled from an EMA copy (decay 0.999 with warm-up) on every side:

- lit_gen ``DiffusionModule`` as ``configs/diffusion/toy2d.yaml`` ships it (v-prediction, cosine schedule) through
  ``Trainer.fit``; sampled with that config's default DDIM-35 (trailing spacing, 35 NFE), Heun-18 (35 NFE) and
  DDIM-50;
- diffusers: ``DDPMScheduler`` (1000 steps, its default linear β, ``clip_sample=False`` since its default clamp of
  x̂0 to [-1, 1] is meant for images, not for data spanning ±4) ε-prediction training loss; sampled with its
  ``DDPMScheduler`` (1000 NFE), ``DDIMScheduler`` (50) and ``DPMSolverMultistepScheduler`` with
  ``algorithm_type="dpmsolver++"`` (10 and 20);
- denoising-diffusion-pytorch: ``GaussianDiffusion1D`` (its defaults: cosine β, ε-prediction) around the same
  TimeMLP viewed as a 2-channel sequence of length 1. It clamps x̂0 to [-1, 1], so, as its documentation intends,
  it trains on data divided by the training set's max |x| (into that box) and its samples are mapped back;
  sampled with its ancestral sampler (1000) and DDIM-50.

EBM. ``EBMModule`` with persistent CD (replay buffer 10k, restart 5%, 20 Langevin steps of η = 0.01, α = 0.1, the
settings of ``configs/ebm/toy2d.yaml``) against torchebm's ``ContrastiveDivergence(persistent=True)`` with its
``LangevinDynamics`` at the same η, k and α, on the same EnergyMLP (128×3), batches and Adam (1e-3, β = (0, 0.999)).
Both energies are judged by the grid NLL next to the true NLL (mixtures) and by SW1 of 500-step MALA samples drawn
from each energy with the same lit_gen sampler and seed.

The other two lit_gen methods join the table of their kind, each as its shipped config
(``configs/<method>/toy2d.yaml`` through ``lit-gen fit``, only the data stream and the step budget overridden):
``DCDModule`` among the energies (its level-0 energy judged like the others) and ``DDAEBMModule`` among the
samplers (its 4-NFE generator; it trains two optimizers per batch, so it gets 2 × steps optimizer steps on the same
batches).

SW1 / MMD² against held-out points, next to the data-vs-data floor.

    python benchmarks/bench_peers.py [--quick] --out benchmarks/results/peers.md
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch import Tensor, nn

from lit_gen.data import Toy2DDataModule
from lit_gen.diffusion import CosineSchedule
from lit_gen.mcmc import MALA, Langevin
from lit_gen.metrics import grid_nll, mmd2_unbiased, sliced_wasserstein
from lit_gen.models import DiffusionModule, EBMModule
from lit_gen.nn import EnergyMLP, TimeMLP
from lit_gen.utils.ema import ExponentialMovingAverage

BATCH = 256


def data_module(name: str, n_test: int, seed: int = 0) -> Toy2DDataModule:
    dm = Toy2DDataModule(name=name, n_train=20000, n_val=256, n_test=n_test, batch_size=BATCH, seed=seed)
    dm.setup()
    return dm


def batches(name: str, n_test: int, steps: int) -> Iterator[Tensor]:
    """The exact batch stream ``Trainer.fit`` sees from ``data_module(name)``: epochs of its train loader."""
    loader = data_module(name, n_test).train_dataloader()
    done = 0
    while True:
        for x in loader:
            if done == steps:
                return
            yield x
            done += 1


def make_net() -> TimeMLP:
    return TimeMLP((2,), hidden=256, depth=4)


def plain_train(net: nn.Module, loss_fn: Callable[[Tensor], Tensor], stream: Iterator[Tensor], steps: int,
                betas: tuple[float, float] = (0.9, 0.999), ema: bool = True) -> ExponentialMovingAverage | None:
    """The loop every peer gets: Adam 1e-3 (with ``ema``: cosine LR to 1e-4 and EMA 0.999 with warm-up after each
    step, as lit_gen's diffusion side), gradient-norm clip 1."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=betas)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-4)
    avg = ExponentialMovingAverage(net, 0.999, True) if ema else None
    for x in stream:
        loss = loss_fn(x)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"peer training loss became {float(loss)}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if ema:
            sched.step()
            avg.update_parameters(net)  # type: ignore[union-attr]
    return avg


# ---------------------------------------------------------------------------------------------- diffusion
def lit_gen_diffusion(name: str, n_test: int, steps: int) -> dict[str, Callable[[int], tuple[Tensor, int]]]:
    L.seed_everything(0, verbose=False)
    model = DiffusionModule(
        net=lambda s: make_net(), data_shape=(2,), schedule=CosineSchedule(1000), prediction="v", sampler="ddim",
        sampler_steps=35, ema_decay=0.999,
        ema_warmup=True, eval_metrics=False, optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=1e-4),
    )
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        gradient_clip_val=1.0)
    trainer.fit(model, datamodule=data_module(name, n_test))

    def sampler(kind: str, k: int) -> Callable[[int], tuple[Tensor, int]]:
        return lambda n: model.sample(n, sampler=kind, steps=k, generator=torch.Generator().manual_seed(1),
                                      return_nfe=True)  # type: ignore[return-value]

    return {"ddim-35 (default)": sampler("ddim", 35), "heun-18": sampler("heun", 18), "ddim-50": sampler("ddim", 50)}


def diffusers_diffusion(name: str, n_test: int, steps: int) -> dict[str, Callable[[int], tuple[Tensor, int]]]:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    torch.manual_seed(0)
    net = make_net()
    # clip_sample=False: the scheduler's default clamps x̂0 to [-1, 1] (an image range); the toy data span ±4
    train_sched = DDPMScheduler(num_train_timesteps=1000, clip_sample=False)

    def loss_fn(x0: Tensor) -> Tensor:
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (x0.shape[0],))
        return (net(train_sched.add_noise(x0, noise, t), t.float()) - noise).square().mean()

    avg = plain_train(net, loss_fn, batches(name, n_test, steps), steps)
    ema_net = avg.module  # type: ignore[union-attr]

    def sampler(cls: Any, k: int, **kw: Any) -> Callable[[int], tuple[Tensor, int]]:
        @torch.no_grad()
        def run(n: int) -> tuple[Tensor, int]:
            sched = cls.from_config(train_sched.config, **kw)
            sched.set_timesteps(k)
            g = torch.Generator().manual_seed(1)
            x = torch.randn(n, 2, generator=g) * sched.init_noise_sigma
            for t in sched.timesteps:
                eps = ema_net(sched.scale_model_input(x, t), torch.full((n,), float(t)))
                x = sched.step(eps, t, x, generator=g).prev_sample if cls is not DPMSolverMultistepScheduler else \
                    sched.step(eps, t, x).prev_sample
            return x, len(sched.timesteps)

        return run

    return {"DDPM-1000": sampler(DDPMScheduler, 1000), "DDIM-50": sampler(DDIMScheduler, 50),
            "DPM-Solver++-10": sampler(DPMSolverMultistepScheduler, 10, algorithm_type="dpmsolver++"),
            "DPM-Solver++-20": sampler(DPMSolverMultistepScheduler, 20, algorithm_type="dpmsolver++")}


class _SequenceView(nn.Module):
    """TimeMLP seen by denoising-diffusion-pytorch's 1-D diffusion: input (B, 2 channels, length 1)."""

    channels = 2
    self_condition = False

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, t: Tensor, x_self_cond: Tensor | None = None) -> Tensor:
        return self.net(x[..., 0], t.float()).unsqueeze(-1)


def ddpm_pytorch_diffusion(name: str, n_test: int, steps: int) -> dict[str, Callable[[int], tuple[Tensor, int]]]:
    from denoising_diffusion_pytorch import GaussianDiffusion1D

    torch.manual_seed(0)
    net = make_net()
    scale = float(data_module(name, n_test).tensor("train").abs().max())  # into its [-1, 1] box
    diffusion = GaussianDiffusion1D(_SequenceView(net), seq_length=1, timesteps=1000, auto_normalize=False)
    avg = plain_train(net, lambda x0: diffusion((x0 / scale).unsqueeze(-1)), batches(name, n_test, steps), steps)
    ema_view = _SequenceView(avg.module)  # type: ignore[union-attr]

    def sampler(k: int | None) -> Callable[[int], tuple[Tensor, int]]:
        def run(n: int) -> tuple[Tensor, int]:
            d = GaussianDiffusion1D(ema_view, seq_length=1, timesteps=1000, sampling_timesteps=k, auto_normalize=False)
            torch.manual_seed(1)  # it draws from the global generator
            with torch.no_grad():
                x = d.sample(batch_size=n)[..., 0] * scale
            return x, d.sampling_timesteps

        return run

    return {"ancestral-1000": sampler(None), "DDIM-50": sampler(50)}


# ---------------------------------------------------------------------------------------------------- EBM
def lit_gen_ebm(name: str, n_test: int, steps: int) -> nn.Module:
    L.seed_everything(0, verbose=False)
    model = EBMModule(lambda s: EnergyMLP(s, hidden=128, depth=3), data_shape=(2,), sampler=Langevin(step_size=0.01),
                      mcmc_steps=20, chain_init="replay", alpha=0.1, eval_metrics=False,
                      optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.0, 0.999)))
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        gradient_clip_val=1.0, inference_mode=False)
    trainer.fit(model, datamodule=data_module(name, n_test))
    return model.energy_net


def torchebm_ebm(name: str, n_test: int, steps: int) -> nn.Module:
    from torchebm.core import BaseModel
    from torchebm.losses import ContrastiveDivergence
    from torchebm.samplers import LangevinDynamics

    torch.manual_seed(0)
    net = EnergyMLP((2,), hidden=128, depth=3)

    class Energy(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.inner = net

        def forward(self, x: Tensor) -> Tensor:
            return self.inner(x)

    energy = Energy()
    sampler = LangevinDynamics(energy, step_size=0.01, noise_scale=1.0)
    cd = ContrastiveDivergence(energy, sampler, k_steps=20, persistent=True, buffer_size=10000,
                               new_sample_ratio=0.05, energy_reg_weight=0.1)
    plain_train(net, lambda x: cd(x)[0], batches(name, n_test, steps), steps, betas=(0.0, 0.999), ema=False)
    return net


# ------------------------------------------------------------------------------------- shipped lit_gen configs
ROOT = Path(__file__).resolve().parents[1]


def fit_config(method: str, name: str, n_test: int, max_steps: int, extra: tuple[str, ...] = ()) -> Any:
    """``lit-gen fit --config configs/<method>/toy2d.yaml`` on ``data_module(name)``'s data stream; the module."""
    from lit_gen.cli import build_cli

    data = ["--data.init_args.name", name, "--data.init_args.n_train", "20000", "--data.init_args.n_val", "256",
            "--data.init_args.n_test", str(n_test), "--data.init_args.batch_size", str(BATCH),
            "--data.init_args.seed", "0"]
    with tempfile.TemporaryDirectory() as workdir:
        cli = build_cli(["fit", "--config", str(ROOT / "configs" / method / "toy2d.yaml"), *data, *extra,
                         "--trainer.max_steps", str(max_steps), "--trainer.logger", "false",
                         "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0",
                         "--trainer.default_root_dir", workdir])
    return cli.model


class LevelZeroEnergy(nn.Module):
    """A DCD module's data-level energy ``E(x, 0)`` as a plain energy network (parameters included)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module.energy(x)


def lit_gen_dcd(name: str, n_test: int, steps: int) -> nn.Module:
    return LevelZeroEnergy(fit_config("dcd", name, n_test, steps))


def lit_gen_ddaebm(name: str, n_test: int, steps: int) -> dict[str, Callable[[int], tuple[Tensor, int]]]:
    t_max = [f"--model.init_args.{k}_lr_scheduler.init_args.T_max={steps}" for k in ("energy", "generator")]
    model = fit_config("ddaebm", name, n_test, 2 * steps, tuple(t_max))
    return {"DDAEBM-4 (default)": lambda n: model.sample(n, generator=torch.Generator().manual_seed(1),
                                                          return_nfe=True)}


# --------------------------------------------------------------------------------------------------- main
def score(x: Tensor, test: Tensor) -> tuple[float, float]:
    x = x.detach().float()
    if not torch.isfinite(x).all():
        return math.nan, math.nan
    return float(sliced_wasserstein(x, test)), float(mmd2_unbiased(x, test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two data sets, 1500 steps, 2000 test points")
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/peers.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = args.sets or (["8gaussians", "swissroll"] if args.quick else
                         ["8gaussians", "25gaussians", "swissroll", "2spirals", "pinwheel", "checkerboard"])
    steps = args.steps or (1500 if args.quick else 6000)
    # SW1 between two independent draws of n points shrinks like n^-1/2: at 500 points the floor (0.07) is half of
    # every model's score and differences between libraries drown in it; 2000 points halve it
    n_test = 2000 if args.quick else 5000
    diffusion = {"lit_gen": lit_gen_diffusion, "lit_gen DDAEBMModule": lit_gen_ddaebm, "diffusers": diffusers_diffusion,
                 "denoising-diffusion-pytorch": ddpm_pytorch_diffusion}
    ebms = {"lit_gen EBMModule": lit_gen_ebm, "lit_gen DCDModule": lit_gen_dcd, "torchebm": torchebm_ebm}
    rows: list[dict[str, Any]] = []
    ebm_rows: list[dict[str, Any]] = []
    with Progress() as progress:
        task = progress.add_task("peers", total=len(sets) * (len(diffusion) + len(ebms)))
        for name in sets:
            dm = data_module(name, n_test)
            test, train = dm.tensor("test"), dm.tensor("train")
            floor = score(train[: len(test)], test)
            for lib, build in diffusion.items():
                progress.update(task, description=f"{name}: {lib}")
                start = time.perf_counter()
                samplers = build(name, n_test, steps)
                train_s = time.perf_counter() - start
                for label, run in samplers.items():
                    x, nfe = run(len(test))
                    sw1, mmd = score(x, test)
                    rows.append(dict(set=name, lib=lib, sampler=label, nfe=nfe, sw1=sw1, mmd=mmd, floor=floor[0],
                                     mmd_floor=floor[1], train_s=train_s))
                progress.advance(task)
            true_nll = dm.true_nll("test")
            for lib, build in ebms.items():
                progress.update(task, description=f"{name}: {lib}")
                start = time.perf_counter()
                net = build(name, n_test, steps).eval()
                train_s = time.perf_counter() - start
                for p in net.parameters():
                    p.requires_grad_(False)
                with torch.no_grad():
                    nll = grid_nll(net, test)
                low, high = train.amin(0), train.amax(0)
                pad = 0.1 * (high - low)
                g = torch.Generator().manual_seed(1)
                x0 = low - pad + (high - low + 2 * pad) * torch.rand(len(test), 2, generator=g)
                x = MALA(step_size=0.01).run(net, x0, 500, generator=g).x
                sw1, mmd = score(x, test)
                ebm_rows.append(dict(set=name, lib=lib, nll=float(nll["nll"]), nll_2l=float(nll["nll_2L"]),
                                     true=true_nll, sw1=sw1, floor=floor[0], train_s=train_s))
                progress.advance(task)
    write(args, steps, n_test, rows, ebm_rows)


def plot_sw1_vs_nfe(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per set: SW1 against NFE (log scale) for every library's samplers, with the floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
    markers = {"lit_gen": "o", "lit_gen DDAEBMModule": "D", "diffusers": "s", "denoising-diffusion-pytorch": "^"}
    for ax, name in zip(axes[0], sets, strict=True):
        for lib, marker in markers.items():
            pts = [r for r in rows if r["set"] == name and r["lib"] == lib]
            ax.scatter([r["nfe"] for r in pts], [r["sw1"] for r in pts], marker=marker, label=lib)
            for r in pts:
                ax.annotate(r["sampler"], (r["nfe"], r["sw1"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.axhline(next(r["floor"] for r in rows if r["set"] == name), ls="--", c="grey", label="data floor")
        ax.set(xscale="log", xlabel="NFE", ylabel="SW1", title=name)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def goal_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 7's goal per set: the default sampler (≤ 35 NFE) no worse than the best peer sampler at any NFE."""
    notes = []
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name and r["lib"] == "lit_gen" and r["nfe"] <= 35]
        peers = [r for r in rows if r["set"] == name and not r["lib"].startswith("lit_gen") and math.isfinite(r["sw1"])]
        if not mine or not peers:
            continue
        best = min(peers, key=lambda r: r["sw1"])
        ratio = mine[0]["sw1"] / best["sw1"]
        verdict = "met" if ratio <= 1.0 else f"missed by {100 * (ratio - 1):.0f}%"
        notes.append(f"- {name}: default {mine[0]['sampler']} ({mine[0]['nfe']} NFE) SW1 {mine[0]['sw1']:.4f} vs best "
                     f"peer {best['lib']} {best['sampler']} {best['sw1']:.4f} (ratio {ratio:.2f}): goal {verdict}.")
    return notes


def ebm_goal_notes(ebm_rows: list[dict[str, Any]]) -> list[str]:
    """Issue 7's goal on the mixtures: the EBM's grid NLL within 0.1 nats of the true NLL."""
    notes = []
    for r in ebm_rows:
        if r["lib"] == "lit_gen EBMModule" and r["true"] is not None:
            gap = r["nll"] - r["true"]
            verdict = "met" if abs(gap) <= 0.1 else f"missed by {abs(gap) - 0.1:.3f} nats"
            notes.append(f"- {r['set']}: EBMModule grid NLL gap {gap:+.3f} nats (goal within 0.1): {verdict}.")
    return notes


def write(args: argparse.Namespace, steps: int, n_test: int, rows: list[dict[str, Any]],
          ebm_rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"Diffusion peers after {steps} steps (SW1 vs held-out data)")
    for col in ("set", "library", "sampler", "NFE", "SW1", "floor", "MMD²"):
        table.add_column(col)
    lines = [
        f"Every contender trained {steps} steps on the same batches (batch {BATCH}), TimeMLP 256×4, Adam 1e-3 "
        "cosine-annealed to 1e-4, grad-norm clip 1, EMA 0.999 with warm-up; each library's own loss and samplers "
        f"(see the script's docstring). {n_test} samples per row against {n_test} held-out points; floor = the same "
        "metric between training and held-out points. *ratio* = SW1 / best peer SW1 at any NFE on that set. "
        "*lit_gen DDAEBMModule*: `configs/ddaebm/toy2d.yaml` as shipped (its own generator, energy and posterior "
        f"networks), {2 * steps} optimizer steps = {steps} batches of the same stream, 4 NFE.",
        "",
        "| set | library | sampler | NFE | SW1 | SW1 floor | ratio to best peer | MMD² | MMD² floor | train s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peers = [q["sw1"] for q in rows
                 if q["set"] == r["set"] and not q["lib"].startswith("lit_gen") and math.isfinite(q["sw1"])]
        best = min(peers) if peers else math.nan
        ratio = r["sw1"] / best if best > 0 else math.nan
        table.add_row(r["set"], r["lib"], r["sampler"], str(r["nfe"]), f"{r['sw1']:.4f}", f"{r['floor']:.4f}",
                      f"{r['mmd']:.5f}")
        lines.append(f"| {r['set']} | {r['lib']} | {r['sampler']} | {r['nfe']} | {r['sw1']:.4f} | {r['floor']:.4f} | "
                     f"{ratio:.2f} | {r['mmd']:.5f} | {r['mmd_floor']:.5f} | {r['train_s']:.0f} |")
    Console().print(table)
    lines += ["", *goal_notes(rows)]
    plot = Path(args.out).with_suffix(".png")
    plot_sw1_vs_nfe(rows, plot)
    lines += ["", f"![SW1 against NFE per library and set]({plot.name})"]
    lines += [
        "",
        f"EBMs: persistent CD, {steps} steps, same EnergyMLP 128×3, batches and Adam; grid NLL on [-6, 6]² (400² "
        "cells; *2L*: on [-12, 12]², a large change means mass escapes the box) next to the true NLL of the data "
        "(mixtures only); SW1 of 500-step MALA samples (η = 0.01) from uniform on the padded data box. "
        "*lit_gen DCDModule*: `configs/dcd/toy2d.yaml` as shipped (its own EnergyMLP and optimizer) on the same "
        "batches, judged by its level-0 energy E(x, 0) the same way.",
        "",
        "| set | library | grid NLL | grid NLL 2L | true NLL | gap (nats) | SW1 | SW1 floor | train s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ebm_rows:
        true = r["true"]
        true_s, gap_s = ("–", "–") if true is None else (f"{true:.3f}", f"{r['nll'] - true:+.3f}")
        lines.append(f"| {r['set']} | {r['lib']} | {r['nll']:.3f} | {r['nll_2l']:.3f} | {true_s} | {gap_s} | "
                     f"{r['sw1']:.4f} | {r['floor']:.4f} | {r['train_s']:.0f} |")
    lines += ["", *ebm_goal_notes(ebm_rows)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/bench_peers.py" + (" --quick" if args.quick else "")
    out.write_text(f"## Peers: diffusers, denoising-diffusion-pytorch, torchebm\n\nCommand: `{cmd}`\n\n"
                   + "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Diffusion Contrastive Divergence against replay-buffer contrastive divergence at equal wall-clock.

The claim checked (Luo et al. 2023; ``docs/algorithms.md#diffusion-contrastive-divergence``): DCD trains energy-based
models better than CD for the same compute, because its negatives come from a few posterior steps near the data
instead of long model chains.

Both methods get the same energy network, data, batch, optimizer and the same wall-clock training budget (Lightning's
``max_time``; 1 torch thread each, run one after the other on the same machine):
- toy 2D mixtures (8gaussians, 25gaussians): 3×128 SiLU MLP energy, batch 256, Adam(1e-3, β=(0, 0.999)), clipping 1.
  DCD: ``configs/dcd/toy2d.yaml`` (VE s = 0.3, K = 5 exact Langevin steps of 0.1·s², α = 0.1). CD:
  ``configs/ebm/toy2d.yaml`` (replay buffer 10k, restart 0.05, 20 Langevin steps of 0.01, α = 0.1). Scored by the
  grid NLL of the test split minus its true NLL (nats; 0 is perfect).
- sklearn digits 8×8: ConvEnergyNet(32, [1, 2]), batch 128, Adam(3e-4, β=(0, 0.999)), clipping 1. DCD:
  ``configs/dcd/digits.yaml`` (VE s = 0.2, K = 5). CD: replay buffer, 40 *exact* Langevin steps of 1e-3 clamped to
  [-1, 1], α = 0.1 — exact rather than the tempered IGEBM setting of ``configs/ebm/digits.yaml`` because
  denoising needs an energy at temperature 1 (a tempered CD energy is ``E/T`` with T ≈ 1e-6 and is no usable
  prior). A third row denoises with E = 0 (the result is y clamped to [-1, 1]): the gain the data box alone gives,
  which the energies must beat to have learned anything. Scored by PSNR (data range 2) of the MAP-denoised test
  digits (``lit_gen.denoise.denoise``, 100 steps of 0.1·σ²) for y = x + σn, σ ∈ {0.1, 0.2, 0.3}, next to the
  noisy input's PSNR; the noise is seeded, identical for every row.

    python benchmarks/bench_dcd.py --quick      # ~3 minutes: 1 seed, 20 s (toy) / 30 s (digits) per run
    python benchmarks/bench_dcd.py              # ~20 minutes: 3 seeds, 60 s / 2 seeds, 120 s per run
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import lightning as L
import torch

from lit_gen.data import DigitsDataModule, Toy2DDataModule
from lit_gen.denoise import denoise
from lit_gen.mcmc import Langevin
from lit_gen.metrics import grid_nll
from lit_gen.models import DCDModule, EBMModule
from lit_gen.nn import ConvEnergyNet, EnergyMLP

SIGMAS = (0.1, 0.2, 0.3)


def _adam(lr: float) -> partial:
    return partial(torch.optim.Adam, lr=lr, betas=(0.0, 0.999))


def toy_model(method: str) -> L.LightningModule:
    net = partial(EnergyMLP, hidden=128, depth=3)
    if method == "DCD":
        return DCDModule(net, kernel="ve", noise=0.3, mcmc_steps=5, step_scale=0.1, alpha=0.1,
                         optimizer=_adam(1e-3), eval_metrics=False)
    return EBMModule(net, sampler=Langevin(step_size=0.01), mcmc_steps=20, chain_init="replay", alpha=0.1,
                     optimizer=_adam(1e-3), eval_metrics=False)


def digits_model(method: str) -> L.LightningModule:
    net = partial(ConvEnergyNet, channels=32, channel_mult=(1, 2))
    if method == "DCD":
        return DCDModule(net, (1, 8, 8), kernel="ve", noise=0.2, mcmc_steps=5, step_scale=0.1, alpha=0.1,
                         optimizer=_adam(3e-4))
    return EBMModule(net, (1, 8, 8), sampler=Langevin(step_size=1e-3, sample_clamp=(-1.0, 1.0)), mcmc_steps=40,
                     chain_init="replay", buffer_capacity=8192, alpha=0.1, optimizer=_adam(3e-4))


def train(model: L.LightningModule, dm: L.LightningDataModule, budget: float, seed: int) -> tuple[int, float]:
    """Train for ``budget`` seconds of wall-clock; returns (steps, ms/step)."""
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=10**8, max_time={"seconds": budget}, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        inference_mode=False, gradient_clip_val=1.0, num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(model, dm)
    elapsed = time.perf_counter() - start
    steps = trainer.global_step
    return steps, 1000 * elapsed / max(steps, 1)


def run_toy(name: str, method: str, budget: float, seed: int) -> dict[str, float]:
    L.seed_everything(seed, verbose=False)
    dm = Toy2DDataModule(name=name, n_train=20000, n_val=256, n_test=5000, batch_size=256, seed=0)
    model = toy_model(method)
    steps, ms = train(model, dm, budget, seed)
    with torch.no_grad():
        res = grid_nll(model.energy, dm.tensor("test"), limit=6.0)
    true = dm.true_nll("test")
    return {"steps": steps, "ms": ms, "nll": float(res["nll"]), "true": true, "gap": float(res["nll"]) - true,
            "escape": float(res["mass_escape"])}


def _flat_energy(x: torch.Tensor) -> torch.Tensor:
    return 0.0 * x.flatten(1).sum(1)


def run_digits(method: str, budget: float, seed: int) -> dict[str, float]:
    L.seed_everything(seed, verbose=False)
    dm = DigitsDataModule(batch_size=128)
    if method == "no prior":  # E = 0: the MAP is y clamped to [-1, 1]; what the box alone buys
        dm.setup("test")
        energy, steps, ms = _flat_energy, 0, float("nan")
    else:
        model = digits_model(method)
        steps, ms = train(model, dm, budget, seed)
        model.eval()
        energy = model.energy
    x = dm.tensor("test")
    out: dict[str, float] = {"steps": steps, "ms": ms}
    for k, sigma in enumerate(SIGMAS):
        g = torch.Generator().manual_seed(100 + k)
        y = x + sigma * torch.randn(x.shape, generator=g)
        x_hat = denoise(energy, y, sigma, method="map", steps=100, step_scale=0.1, clamp=(-1.0, 1.0))
        out[f"noisy_{sigma}"] = _psnr(y, x)
        out[f"denoised_{sigma}"] = _psnr(x_hat, x)
    return out


def _psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(pred, target, data_range=2.0))


def _fmt(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, short budgets (~3 minutes)")
    parser.add_argument("--toy-budget", type=float, default=None, help="seconds of training per toy run")
    parser.add_argument("--digits-budget", type=float, default=None, help="seconds of training per digits run")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--datasets", nargs="*", default=["8gaussians", "25gaussians"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dcd.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    toy_budget = args.toy_budget or (20.0 if args.quick else 60.0)
    digits_budget = args.digits_budget or (30.0 if args.quick else 120.0)
    seeds = args.seeds or (1 if args.quick else 3)
    digit_seeds = 1 if args.quick else min(seeds, 2)
    methods = ("DCD", "CD")

    toy: dict[tuple[str, str], list[dict[str, float]]] = {}
    for name in args.datasets:
        for seed in range(seeds):
            for method in methods:
                res = run_toy(name, method, toy_budget, seed)
                toy.setdefault((name, method), []).append(res)
                print(f"{name} {method} seed {seed}: {res}", flush=True)
    digits: dict[str, list[dict[str, float]]] = {}
    digits["no prior"] = [run_digits("no prior", 0.0, 0)]
    for seed in range(digit_seeds):
        for method in methods:
            res = run_digits(method, digits_budget, seed)
            digits.setdefault(method, []).append(res)
            print(f"digits {method} seed {seed}: {res}", flush=True)

    lines = ["# DCD vs CD at equal wall-clock", "",
             f"{datetime.date.today()} · torch {torch.__version__} · cpu ({platform.machine()}, 1 thread) · "
             f"{'quick' if args.quick else 'full'} mode · {seeds} seed(s) on toys, {digit_seeds} on digits "
             f"(mean ± sd over seeds)", "",
             "Same energy network, data, batch, optimizer and wall-clock budget for both methods, trained one after "
             "the other on a shared, loaded 2-core machine (so ms/step carries load noise). DCD: VE kernel, K = 5 "
             "posterior Langevin steps of 0.1·s². CD: persistent chains in a 10k replay buffer (restart 0.05), 20 "
             "(toys) / 40 (digits) exact Langevin steps. See `benchmarks/bench_dcd.py` for every setting.", "",
             f"## Toy 2D: grid NLL − true NLL (nats, lower is better), {toy_budget:g} s of training each", "",
             "| dataset | method | steps | ms/step | grid NLL | true NLL | gap | mass escape |",
             "|---|---|---|---|---|---|---|---|"]
    for (name, method), runs in toy.items():
        lines.append(
            f"| {name} | {method} | {_fmt([r['steps'] for r in runs], 0)} | {_fmt([r['ms'] for r in runs], 1)} | "
            f"{_fmt([r['nll'] for r in runs])} | {runs[0]['true']:.3f} | {_fmt([r['gap'] for r in runs])} | "
            f"{_fmt([r['escape'] for r in runs], 4)} |"
        )
    lines += ["", f"## sklearn digits: denoising PSNR (dB, higher is better), {digits_budget:g} s of training each", "",
              "| method | steps | ms/step | " + " | ".join(f"σ={s}: noisy → denoised" for s in SIGMAS) + " |",
              "|---|---|---|" + "---|" * len(SIGMAS)]
    for method, runs in digits.items():
        cells = [f"{_fmt([r[f'noisy_{s}'] for r in runs], 2)} → {_fmt([r[f'denoised_{s}'] for r in runs], 2)}"
                 for s in SIGMAS]
        lines.append(f"| {method} | {_fmt([r['steps'] for r in runs], 0)} | {_fmt([r['ms'] for r in runs], 1)} | "
                     + " | ".join(cells) + " |")

    toy_wins = [
        statistics.mean(r["gap"] for r in toy[(n, "DCD")]) < statistics.mean(r["gap"] for r in toy[(n, "CD")])
        for n in args.datasets
    ]
    psnr_wins = [
        statistics.mean(r[f"denoised_{s}"] for r in digits["DCD"]) > statistics.mean(r[f"denoised_{s}"]
                                                                                  for r in digits["CD"])
        for s in SIGMAS
    ]
    verdict = (
        f"DCD has the smaller NLL gap on {sum(toy_wins)} of {len(toy_wins)} toy sets and the higher denoising PSNR "
        f"at {sum(psnr_wins)} of {len(psnr_wins)} noise levels. "
    )
    if all(toy_wins) and all(psnr_wins):
        verdict += "The claim that DCD beats CD at equal wall-clock holds in this run."
    elif not any(toy_wins) and not any(psnr_wins):
        verdict += "The claim that DCD beats CD at equal wall-clock does not hold in this run."
    else:
        verdict += "The claim that DCD beats CD at equal wall-clock holds only in part in this run."
    if args.quick:
        verdict += " Quick mode: one seed and short budgets; differences of a few hundredths of a nat are noise."
    lines += ["", "## Verdict", "", verdict, ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

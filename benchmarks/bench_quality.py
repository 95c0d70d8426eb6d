"""Quality table: every method's shipped toy config × the toy sets, and the digits configs, through `lit-gen`.

Each run is exactly ``lit-gen fit --config configs/<method>/toy2d.yaml --data.init_args.name <set>
--test_after_fit true`` with a reduced step budget (the same for every method), and the row is the test report
that ``lit-gen test`` writes (``GenerativeModule.last_test_report``): SW1 and MMD² with their data-vs-data floors,
the grid NLL (energies) or PF-ODE NLL (diffusion) next to the true NLL of the mixtures, and for the digits configs
FD-digits next to its floor FD(test, train).

    python benchmarks/bench_quality.py [--quick] --out benchmarks/results/quality.md
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
from rich.progress import Progress

from lit_gen.cli import build_cli

ROOT = Path(__file__).resolve().parents[1]
SETS = ["8gaussians", "25gaussians", "swissroll", "2spirals", "pinwheel", "checkerboard"]
COLUMNS = ["sw1", "sw1_floor", "mmd", "mmd_floor", "nll", "grid_nll", "grid_nll_2L", "energy_map_nll", "true_nll",
           "nll_true"]


def toy_configs() -> list[Path]:
    return sorted(p for p in (ROOT / "configs").glob("*/*toy2d.yaml"))


def run(config: Path, overrides: list[str], steps: int, workdir: str) -> dict[str, float]:
    """Fit + test one config with ``steps`` steps; returns its test report."""
    args = ["fit", "--config", str(config), *overrides, "--trainer.max_steps", str(steps),
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", workdir, "--test_after_fit", "true"]
    cli = build_cli(args)
    return dict(cli.model.last_test_report)


def fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8gaussians only, 200 steps, 1000 test points")
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/quality.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = args.sets or (["8gaussians"] if args.quick else SETS)
    steps = args.steps or (200 if args.quick else 3000)
    n_test = 1000 if args.quick else 5000
    configs = toy_configs()
    digits = sorted((ROOT / "configs").glob("*/digits.yaml"))
    rows, digit_rows = [], []
    with Progress() as progress, tempfile.TemporaryDirectory() as workdir:
        task = progress.add_task("quality", total=len(configs) * len(sets) + len(digits))
        for name in sets:
            for config in configs:
                method = f"{config.parent.name}/{config.stem}"
                progress.update(task, description=f"{method} on {name}")
                overrides = ["--data.init_args.name", name, "--data.init_args.n_test", str(n_test)]
                try:
                    report = run(config, overrides, steps, workdir)
                except Exception as err:  # one failing method must not hide the others; the table says why
                    report = {"error": f"{type(err).__name__}: {str(err)[:80]}"}  # type: ignore[dict-item]
                rows.append((name, method, report))
                progress.advance(task)
        for config in digits:
            method = config.parent.name
            progress.update(task, description=f"{method} on digits")
            try:
                report = run(config, [], steps, workdir)
            except Exception as err:
                report = {"error": f"{type(err).__name__}: {str(err)[:80]}"}  # type: ignore[dict-item]
            digit_rows.append((method, report))
            progress.advance(task)
    lines = [
        f"Each row: the shipped config trained {steps} steps on the set, then its `lit-gen test` report on {n_test} "
        "held-out points (floors: the same metric between training and held-out points; NLL in nats: *nll* PF-ODE "
        "for diffusion, *grid NLL* for energies, with the box doubled in *2L*; *energy-map NLL* for DDAEBM's "
        "exp(−E(x, 0)), not an exact density).",
        "",
        "| set | config | SW1 | SW1 floor | MMD² | MMD² floor | NLL | grid NLL | grid NLL 2L | energy-map NLL | "
        "true NLL |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, method, r in rows:
        if "error" in r:
            lines.append(f"| {name} | {method} | failed: {r['error']} |||||||||")
            continue
        true = r.get("true_nll", r.get("nll_true"))
        lines.append(f"| {name} | {method} | {fmt(r.get('sw1'))} | {fmt(r.get('sw1_floor'))} | {fmt(r.get('mmd'), 5)} "
                     f"| {fmt(r.get('mmd_floor'), 5)} | {fmt(r.get('nll'), 3)} | {fmt(r.get('grid_nll'), 3)} | "
                     f"{fmt(r.get('grid_nll_2L'), 3)} | {fmt(r.get('energy_map_nll'), 3)} | {fmt(true, 3)} |")
    if any(method == "diffusion/kernel_toy2d" for _, method, _ in rows):
        lines += ["", "*diffusion/kernel_toy2d* has no trained network: its score is the exact score of its training "
                  "points smoothed by the diffusion noise, so its PF-ODE density at t → 0 is a kernel density estimate "
                  "of the training points with bandwidth σ_min = √β₁ = 0.01 (linear schedule), under the spacing of "
                  "the training points (median nearest-neighbour distance 0.026 for 5000 points of 8gaussians), so "
                  "held-out points between them get little density: its NLL is high "
                  "by construction (memorisation), while its samples sit at the SW1 floor."]
    lines += ["", f"Digits (sklearn 8×8, shipped `digits.yaml` configs, {steps} steps): FD-digits of samples vs the "
              "test split, next to the floor FD(test, train) at the same sample size.", "",
              "| config | FD-digits | floor | ratio |", "|---|---:|---:|---:|"]
    for method, r in digit_rows:
        if "error" in r or "fd_digits" not in r:
            lines.append(f"| {method} | failed: {r.get('error', 'no FD-digits in the report')} | | |")
            continue
        floor = r.get("fd_digits_floor", math.nan)
        lines.append(f"| {method} | {fmt(r['fd_digits'], 2)} | {fmt(floor, 2)} | {fmt(r['fd_digits'] / floor, 1)} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/bench_quality.py" + (" --quick" if args.quick else "")
    out.write_text(f"## Quality: every method × toy set, and digits\n\nCommand: `{cmd}`\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

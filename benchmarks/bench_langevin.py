"""Langevin sampling speed: lit_gen's ``Langevin`` against a bare autograd loop (the limit) and torchebm.

Every method runs the same update ``x ← x − η ∇E(x) + sqrt(2η) ξ`` on the same energy network (MLP 2→128→128→1,
SiLU), the same initial states, batch and number of steps. Repeats are interleaved (method order rotates each
repeat) so that load changes on the machine hit every method alike; the ratio to the bare loop is the median of
the per-repeat ratios. torchebm is timed only if ``import torchebm`` works (``pip install -e .[bench]``).

    python benchmarks/bench_langevin.py --batch 1024 4096 --steps 100 --out benchmarks/results/langevin.md
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch import Tensor, nn

from lit_gen.mcmc import Langevin

AIMS = {"lit_gen": 1.05, "lit_gen (compiled)": 0.85}


class MLPEnergy(nn.Module):
    """``E(x) = MLP(x)``, 2→128→128→1 with SiLU, returning shape (B,)."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


def bare_loop(energy: nn.Module, x: Tensor, steps: int, eta: float) -> Tensor:
    """The limit: the shortest correct autograd loop, no checks and no statistics."""
    sigma = math.sqrt(2 * eta)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(x).sum(), x)
        x = x - eta * g + sigma * torch.randn_like(x)
    return x.detach()


def make_torchebm(energy: nn.Module, eta: float, device: torch.device) -> Callable[[Tensor, int], Tensor] | str:
    """A runner for torchebm's LangevinDynamics on the same network, or the reason it is unavailable."""
    try:
        import torchebm  # noqa: F401
        from torchebm.samplers import LangevinDynamics
    except Exception as err:  # any import failure means "skip this column"
        return f"not installed ({type(err).__name__})"
    try:
        from torchebm.core import BaseModel as Base
    except ImportError:
        from torchebm.core import BaseEnergyFunction as Base  # older releases

    class Wrapped(Base):
        def __init__(self) -> None:
            super().__init__()
            self.inner = energy

        def forward(self, x: Tensor) -> Tensor:
            return self.inner(x)

    try:
        # noise_scale=1 is torchebm's exact-temperature setting (noise sqrt(2η)·noise_scale).
        sampler = LangevinDynamics(Wrapped(), step_size=eta, noise_scale=1.0, device=device)
        run = sampler.sample if hasattr(sampler, "sample") else sampler.sample_chain

        def runner(x: Tensor, steps: int) -> Tensor:
            return run(x=x, n_steps=steps)

        runner(torch.zeros(4, 2, device=device), 2)  # smoke test: API mismatch shows up here, not mid-table
        return runner
    except Exception as err:
        return f"failed: {type(err).__name__}: {str(err)[:80]}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--step-size", type=float, default=0.01)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/langevin.md"))
    args = parser.parse_args()
    if args.steps <= 0 or args.repeats <= 0 or any(b <= 0 for b in args.batch):
        parser.error("--steps, --repeats and --batch must be positive")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    console = Console()

    torch.manual_seed(0)
    energy = MLPEnergy().to(device)
    eta = args.step_size
    methods: dict[str, Callable[[Tensor, int], Tensor]] = {
        "bare autograd loop": lambda x, n: bare_loop(energy, x, n, eta),
        "lit_gen": lambda x, n: Langevin(step_size=eta).run(energy, x, n).x,
    }
    compile_seconds: dict[int, float] = {}
    compiled = {"sampler": Langevin(step_size=eta, compile=True)}
    if not args.no_compile:
        methods["lit_gen (compiled)"] = lambda x, n: compiled["sampler"].run(energy, x, n).x
    ebm = make_torchebm(energy, eta, device)
    skipped = {}
    if isinstance(ebm, str):
        skipped["torchebm"] = ebm
    else:
        methods["torchebm"] = ebm

    times: dict[tuple[str, int], list[float]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("timing", total=len(args.batch) * (args.repeats + 1) * len(methods))
        for batch in args.batch:
            x0 = torch.randn(batch, 2, generator=torch.Generator().manual_seed(batch)).to(device)
            # One batch size per compiled sampler, as in training: a fresh static-shape graph for each batch
            # instead of a dynamic-shape recompile.
            torch._dynamo.reset()
            compiled["sampler"] = Langevin(step_size=eta, compile=True)
            for name, fn in methods.items():  # warm-up (and compilation, timed separately)
                _sync(device)
                t0 = time.perf_counter()
                fn(x0, args.steps)
                _sync(device)
                if name == "lit_gen (compiled)":
                    compile_seconds[batch] = time.perf_counter() - t0
                progress.advance(task)
            names = list(methods)
            for r in range(args.repeats):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    _sync(device)
                    t0 = time.perf_counter()
                    methods[name](x0, args.steps)
                    _sync(device)
                    times.setdefault((name, batch), []).append(time.perf_counter() - t0)
                    progress.advance(task)

    rows = []
    for batch in args.batch:
        base = times[("bare autograd loop", batch)]
        for name in methods:
            t = times[(name, batch)]
            ratio = statistics.median(a / b for a, b in zip(t, base, strict=True))
            med = statistics.median(t)
            aim = AIMS.get(name)
            verdict = "" if aim is None else (f"≤ {aim:.2f}: " + ("met" if ratio <= aim else "missed"))
            rows.append((name, batch, args.steps, med * 1e3, batch / med, ratio, verdict))

    table = Table(title=f"Langevin, {args.steps} steps, MLP 2→128→128→1 (SiLU), {device}")
    for col in ("method", "batch", "steps", "median ms", "samples/s", "× bare loop", "aim"):
        table.add_column(col, justify="left" if col in ("method", "aim") else "right")
    for name, batch, steps, ms, sps, ratio, verdict in rows:
        table.add_row(name, str(batch), str(steps), f"{ms:.1f}", f"{sps:,.0f}", f"{ratio:.3f}", verdict)
    for name, why in skipped.items():
        table.add_row(name, "—", "—", "—", "—", "—", why)
    console.print(table)

    threads = torch.get_num_threads()
    lines = [
        "# Langevin sampling speed",
        "",
        f"{datetime.date.today()} · torch {torch.__version__} · {device} "
        f"({platform.processor() or platform.machine()}, {threads} threads) · {args.repeats} interleaved repeats "
        f"after one warm-up · step size {eta}",
        "",
        "Same network (MLP 2→128→128→1, SiLU), initial states, batch and steps for every method. "
        "`samples/s` = final samples per second (batch / median time of one run); `× bare loop` = median over "
        "repeats of the per-repeat time ratio to the bare autograd loop (lower is faster).",
        "",
        "| method | batch | steps | median ms | samples/s | × bare loop | aim |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, batch, steps, ms, sps, ratio, verdict in rows:
        lines.append(f"| {name} | {batch} | {steps} | {ms:.1f} | {sps:,.0f} | {ratio:.3f} | {verdict} |")
    for name, why in skipped.items():
        lines.append(f"| {name} | — | — | — | — | — | skipped: {why} |")
    if compile_seconds:
        first = ", ".join(f"batch {b}: {s:.1f} s" for b, s in compile_seconds.items())
        lines += ["", f"First (compiling) run of the compiled sampler, not included above: {first}."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

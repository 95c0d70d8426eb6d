"""Run every benchmark and assemble ``BENCHMARKS.md`` from their result tables.

    python -m benchmarks.run --quick     # minutes  (make bench)
    python -m benchmarks.run             # under an hour on 2 cores (make bench-full)

Each ``benchmarks/bench_*.py`` is a standalone script writing ``benchmarks/results/<name>.md``; this runner calls
them (one process each, so that one failing benchmark is reported without hiding the others) and concatenates the
tables under a header that records the machine and the commands. The speed benchmarks run first, one at a time on
an otherwise idle machine; the quality benchmarks (one torch thread each) then run ``--jobs`` at a time (default:
one per CPU core). A rich progress bar follows the scripts; each script's own output goes to
``runs/bench_logs/<script>.log``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# (script, arguments for --quick, arguments for the full run, measures speed: runs alone)
BENCHMARKS: list[tuple[str, list[str], list[str], bool]] = [
    ("bench_langevin.py", ["--threads", "1", "--repeats", "5"], ["--threads", "1", "--repeats", "15"], True),
    ("bench_overhead.py", ["--quick"], [], True),
    ("bench_dcd.py", ["--quick"], [], True),  # equal wall-clock budgets: contention would shift the verdict
    ("bench_peers.py", ["--quick"], [], False),
    ("bench_diffusion.py", ["--quick"], [], False),
    ("bench_ddaebm.py", ["--quick"], [], False),
    ("bench_oism.py", ["--quick"], [], False),
    ("bench_quality.py", ["--quick"], [], False),
    ("bench_conditional.py", ["--quick"], [], False),
    ("bench_conditional.py", ["--data", "mnist", "--quick"], ["--data", "mnist"], False),
    ("bench_flow.py", ["--quick"], ["--steps", "1500", "--batch", "128", "--hidden", "128", "--depth", "3",
                                  "--n-eval", "2000"], False),  # W2 of 10k points (the defaults): hours here
    ("bench_images.py", ["--quick"], [], False),  # its speed ratios interleave the libraries step by step
    ("bench_images_energy.py", ["--quick"], [], True),
    ("bench_nfe.py", ["--quick"], [], False),
    ("bench_ais.py", ["--quick"], [], False),
    ("bench_ebm_sampling.py", ["--quick"], [], False),
    ("bench_density.py", ["--quick"], [], False),
]
LOGS = ROOT / "runs" / "bench_logs"


def job_name(script: str, args: list[str]) -> str:
    """How a run is named in the progress, the failure list and its log: the script, with its ``--data`` choice
    when it has one (``bench_conditional.py --data mnist``), so one script can appear twice."""
    return f"{script} --data {args[args.index('--data') + 1]}" if "--data" in args[:-1] else script


def log_path(job: str) -> Path:
    return LOGS / f"{Path(job.split()[0]).stem}{''.join('_' + a for a in job.split()[2:])}.log"


def main() -> None:
    parser = argparse.ArgumentParser(description="run the benchmarks and write BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="script names to run (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="quality benchmarks run at once (speed benchmarks always run alone)")
    args = parser.parse_args()
    started = time.time()
    todo = [(s, q if args.quick else f, alone) for s, q, f, alone in BENCHMARKS
            if (ROOT / "benchmarks" / s).exists() and not (args.only and s not in args.only)]
    LOGS.mkdir(parents=True, exist_ok=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    failures: list[str] = []
    with Progress(*columns) as progress:
        task = progress.add_task("benchmarks", total=len(todo))
        running: dict[str, tuple[subprocess.Popen, float, Any]] = {}

        def finish(job: str) -> None:
            proc, start, out = running.pop(job)
            out.close()
            code = proc.returncode
            status = "[green]ok[/]" if code == 0 else f"[red]failed ({code})[/], see {log_path(job)}"
            progress.console.print(f"{job}: {status} in {time.perf_counter() - start:.0f} s")
            if code != 0:
                failures.append(job)
            progress.advance(task)

        for script, extra, alone in todo:
            width = 1 if alone else max(1, args.jobs)
            while len(running) >= width or (alone and running):  # a speed benchmark waits for an idle machine
                for name in [n for n, (p, _, _) in running.items() if p.poll() is not None]:
                    finish(name)
                time.sleep(0.5)
            job = job_name(script, extra)
            log = log_path(job).open("w")  # each run's output goes to its log
            cmd = [sys.executable, str(ROOT / "benchmarks" / script), *extra]
            running[job] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT),
                            time.perf_counter(), log)
            progress.update(task, description=f"running {', '.join(running)} (logs: {LOGS.relative_to(ROOT)}/)")
            if alone:
                running[job][0].wait()
                finish(job)
        for name in list(running):
            running[name][0].wait()
            finish(name)
    write_benchmarks_md(quick=args.quick, failures=failures, started=started)
    if failures:
        sys.exit(f"benchmarks failed: {', '.join(failures)}")


def write_benchmarks_md(quick: bool, failures: list[str], started: float | None = None) -> None:
    """Concatenate ``benchmarks/results/*.md`` under a header; files older than ``started`` (a time stamp) are
    named in the header as carried over from an earlier run."""
    header = [
        "# lit_gen benchmarks",
        "",
        f"Generated by `{'make bench' if quick else 'make bench-full'}` (`python -m benchmarks.run"
        f"{' --quick' if quick else ''}`) on {datetime.date.today()}: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads available, torch {torch.__version__}, Python "
        f"{platform.python_version()}. Every figure below was measured side by side in one run, on the same data, "
        "network, batch and steps; speed figures are ratios of medians over repeats.",
        "",
    ]
    if failures:
        header += [f"**Failed in this run:** {', '.join(failures)}", ""]
    files = sorted(RESULTS.glob("*.md"))
    old = [p.name for p in files if started is not None and p.stat().st_mtime < started]
    if old:
        header += [f"Not regenerated by this run (from an earlier one, command inside each section): {', '.join(old)}",
                   ""]
    sections = [p.read_text().strip() for p in files]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()

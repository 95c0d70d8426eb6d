"""The AIS benchmark (benchmarks/bench_ais.py) on a 2-D Gaussian with tiny budgets: lit_gen's estimate lies within
four reported standard errors of the exact log Z and the table has one row per library. ebmkit (the ``bench``
extra) is optional: without it only its row and its own check are skipped."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
try:
    import ebm.ais  # noqa: F401

    HAS_EBMKIT = True
except ImportError:
    HAS_EBMKIT = False


@pytest.fixture
def bench(import_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return import_benchmark("bench_ais")


def _problem(bench: ModuleType) -> Any:  # a bench_ais.Problem
    return bench.gaussian_problem("gauss-2d", 2, (0.5, 2.0), 4.0, bench.Kernel("mala", 0.2), seed=2)


def test_gaussian_truth_and_exact_samples(bench: ModuleType) -> None:
    problem = _problem(bench)
    x = problem.reverse_starts(20_000, torch.Generator().manual_seed(0))
    # E is the negative log-density of the samples up to log Z: mean E = d/2 for a Gaussian
    assert float(problem.energy(x).mean()) == pytest.approx(1.0, abs=0.05)
    grid = torch.linspace(-30, 30, 1201)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    numeric = float(torch.logsumexp(-problem.energy(pts).double(), 0)) + 2 * math.log(float(grid[1] - grid[0]))
    assert numeric == pytest.approx(problem.log_z, abs=1e-3)


def test_lit_gen_estimate_and_table_rows(bench: ModuleType) -> None:
    problem = _problem(bench)
    libraries = bench.available_contenders([])
    assert libraries[0] == "lit_gen" and (("ebmkit" in libraries) == HAS_EBMKIT)
    rows = bench.compare(problem, ["lit_gen"], num_steps=50, num_chains=64, repeats=1, seed=0)
    (row,) = rows
    assert row.library == "lit_gen" and len(row.forward) == 1 and len(row.reverse) == 1
    assert abs(row.estimate - problem.log_z) <= 4 * row.stderr
    assert row.reverse_estimate > row.estimate - 4 * row.stderr  # the upper side of the bracket
    assert 0.5 < row.median("acceptance") <= 1.0
    assert row.median("rows_per_step") == pytest.approx(1.0, abs=0.05)  # one E evaluation per MALA move
    lines = bench.table(rows)
    assert lines[0] == bench.HEADER and len(lines) == 3
    assert lines[2].startswith("| gauss-2d | N(0, 4² I) | MALA η=0.2 | 50 | 64 | lit_gen | 1.838 |")
    assert bench.reading(rows, []) == [f"- **gauss-2d** (MALA η=0.2): lit_gen error {row.error:.3f} "
                                       f"({row.z:.2f} stderr)."]


@pytest.mark.skipif(not HAS_EBMKIT, reason="ebmkit (the bench extra) is not installed: its row is skipped")
def test_ebmkit_row(bench: ModuleType) -> None:
    problem = _problem(bench)
    rows = bench.compare(problem, ["lit_gen", "ebmkit"], num_steps=50, num_chains=64, repeats=1, seed=0)
    assert [r.library for r in rows] == ["lit_gen", "ebmkit"]
    peer = rows[1]
    assert abs(peer.estimate - problem.log_z) <= 4 * peer.stderr
    assert peer.median("rows_per_step") == pytest.approx(3.0, abs=0.05)  # two gradients and one weight update
    assert len(bench.table(rows)) == 4
    assert any("ebmkit/lit_gen forward time" in line for line in bench.reading(rows, []))


def test_tuned_steps_rescue_a_mis_set_first_step(bench: ModuleType) -> None:
    """From a MALA step 50× too small, the fixed-step anneal in 10-D barely moves and its bracket stays wide;
    lit_gen's pilot-tuned schedule accepts near its 57 % target and narrows the bracket, and the table and the
    reading name both rows."""
    problem = next(p for p in bench.adaptation_problems() if p.name == "gauss-10d" and p.kernel.step_size < 0.01)
    rows = bench.compare(problem, ["lit_gen", "lit_gen tuned"], num_steps=200, num_chains=64, repeats=1, seed=0)
    fixed, tuned = rows
    assert fixed.median("acceptance") > 0.95 and 0.4 < tuned.median("acceptance") < 0.75
    width = {r.library: r.reverse_estimate - r.estimate for r in rows}
    assert width["lit_gen tuned"] < 0.5 * width["lit_gen"]
    assert abs(tuned.error) < abs(fixed.error)
    assert tuned.median("rows_per_step") > 1.0  # the pilot's evaluations are counted
    lines = bench.adaptation_table(rows)
    assert len(lines) == 4 and "| lit_gen tuned |" in lines[3]
    (line,) = bench.adaptation_reading(rows)
    assert line.startswith("- **gauss-10d**, first step MALA η=0.002:") and line.endswith("lit_gen tuned.")

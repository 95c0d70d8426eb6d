"""The density benchmark (benchmarks/bench_density.py) in quick mode: every row trains, the table has one line per
row with a met/missed verdict, and the outside-box share is a probability that is 0 for an energy confined to the
box and ≈ 1 for one whose mass lies outside it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(import_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return import_benchmark("bench_density")


def test_outside_box_mass(bench: ModuleType) -> None:
    low, high = torch.full((2,), -1.0), torch.full((2,), 1.0)
    inside = bench.outside_box_mass(lambda x: 50.0 * x.pow(2).sum(1), low, high)
    outside = bench.outside_box_mass(lambda x: 50.0 * (x - 4.0).pow(2).sum(1), low, high)
    assert 0.0 <= inside < 1e-6 and outside > 1 - 1e-6


def test_quick_run_writes_one_row_per_method(bench: ModuleType, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "density.md"
    monkeypatch.setattr(sys, "argv", ["bench_density.py", "--quick", "--out", str(out)])
    bench.main()
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| unequal_gaussians |")]
    assert len(rows) == len(bench.ROWS)
    assert all(line.rstrip(" |").endswith(("met", "missed")) for line in rows)
    assert "quick mode" in text and "### Verdict" in text

"""Shared fixtures of the benchmark tests."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def import_benchmark(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """``import_benchmark("bench_ais")`` imports ``benchmarks/bench_ais.py`` (a folder of the repository, not an
    installed package: the repository root goes on ``sys.path`` for the test)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return lambda name: importlib.import_module(f"benchmarks.{name}")

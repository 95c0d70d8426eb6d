"""The verdicts of the conditional benchmark (benchmarks/bench_conditional.py): guidance must lift accuracy beyond
chance by three binomial standard errors, and a trade-off is only called when guidance works at all."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType


def _rows(accuracy: tuple[float, ...], fd: tuple[float, ...]) -> dict[float, dict[str, float]]:
    return {w: {"accuracy": a, "fd": f} for w, a, f in zip((0.0, 1.0, 2.0, 4.0), accuracy, fd, strict=True)}


def test_working_guidance_with_an_fd_minimum_is_met_and_seen(import_benchmark: Callable[[str], ModuleType]) -> None:
    bench = import_benchmark("bench_conditional")
    accuracy, trade = bench.verdicts("m", _rows((0.075, 0.835, 0.915, 0.965), (280.6, 127.6, 92.7, 182.4)), 200)
    assert accuracy.startswith("m: met") and trade.startswith("m: seen")


def test_chance_accuracy_is_missed_and_no_trade_off_is_called(import_benchmark: Callable[[str], ModuleType]) -> None:
    """Flat 10 % accuracy with FD rising in w (the 300-step DCD row) is neither guidance nor a trade-off."""
    bench = import_benchmark("bench_conditional")
    accuracy, trade = bench.verdicts("m", _rows((0.1, 0.1, 0.1, 0.1), (9049.1, 9351.5, 9497.0, 9619.1)), 200)
    assert accuracy.startswith("m: missed") and trade.startswith("m: not seen")
    # just above chance but inside the binomial margin (3·sqrt(0.09/200) = 6.4 %) is still missed
    accuracy, _ = bench.verdicts("m", _rows((0.1, 0.15, 0.12, 0.11), (100.0, 90.0, 80.0, 120.0)), 200)
    assert accuracy.startswith("m: missed")

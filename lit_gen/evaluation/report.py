"""The test report: printed as a table and saved as ``test_report.json`` / ``test_report.md`` in the run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["format_value", "write_report"]


def format_value(value: float) -> str:
    """Counts (ints, e.g. ``eval_n_sw1``) as they are, finite floats with 4 decimals, NaN/inf by name; strings
    (checkpoint path, sampler) as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def write_report(report: dict[str, float], log_dir: str | None, title: str, info: dict[str, Any] | None = None) -> None:
    """Print the test report as a table and save it as ``test_report.json`` / ``.md`` in ``log_dir``.

    Counts (the evaluation sizes) are written as integers. ``info`` (checkpoint, step, sampler, NFE) follows the
    metrics in the table and the Markdown file, and is the ``"run"`` entry of the JSON file."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} — test report")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, format_value(value))
    info = dict(info or {})
    if info:
        table.add_section()
        for key, value in info.items():
            table.add_row(key, format_value(value))
    Console().print(table)
    if log_dir is None:
        return
    out = Path(log_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "test_report.json").write_text(json.dumps({**report, "run": info} if info else report, indent=2) + "\n")
    lines = [f"# {title} — test report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {format_value(v)} |" for k, v in report.items()]
    if info:
        lines += ["", "| run | |", "|---|---|"] + [f"| {k} | {format_value(v)} |" for k, v in info.items()]
    (out / "test_report.md").write_text("\n".join(lines) + "\n")

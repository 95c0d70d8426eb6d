"""Training steps call ``self.log`` only on the steps whose values the loggers write (``log_every_n_steps``).

Logging every step costs Lightning result-collection work (0.73 ms of a 1.69 ms step on the tiny 2D model,
``benchmarks/bench_overhead.py``) for values no logger keeps. The loggers must still receive every module's
``train/loss`` at the usual steps.
"""

from __future__ import annotations

from typing import Any

import pytest
from lightning.pytorch.loggers.logger import Logger
from scale_helpers import MODULES, make_data, make_module, make_trainer


class _Keep(Logger):
    """A logger that remembers which metrics it was given at which step."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "keep"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((int(step if step is not None else -1), dict(metrics)))


@pytest.mark.parametrize("name", MODULES)
def test_training_logs_only_on_written_steps(name: str) -> None:
    module = make_module(name)
    calls: list[str] = []
    log = module.log

    def counting_log(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs["name"] if "name" in kwargs else args[0])
        log(*args, **kwargs)

    module.log = counting_log  # log_dict goes through log as well
    keep = _Keep()
    batches = 10
    trainer = make_trainer(batches, logger=keep, log_every_n_steps=4)  # max_steps counts batches (DDAEBM too)
    trainer.fit(module, make_data(name=name))
    written = [step for step, metrics in keep.rows if "train/loss" in metrics]
    # Lightning counts logged steps in batches: batches 4 and 8 (0-based steps 3 and 7) reach the loggers
    assert written == [3, 7]
    # and `self.log("train/loss")` ran on those two batches only, not on all ten
    assert calls.count("train/loss") == 2
    # every other training metric follows the same cadence
    assert len(calls) == 2 * len(set(calls))

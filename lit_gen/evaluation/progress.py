"""Progress for the long steps of a test report (PF-ODE likelihoods, AIS): a bar on the terminal, silent elsewhere.

Lightning's progress bar follows the test *batches*; the evaluators' :meth:`report` then runs after the last
batch, and a PF-ODE NLL of a few hundred images or an AIS bracket can take minutes with nothing on the screen.
:func:`evaluation_progress` shows a transient rich bar (on standard error, rank zero, only when the trainer shows
its own progress bar), so a run that looks stuck says what it is doing and how far it got.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def shows_progress(module: Any) -> bool:
    """Whether ``module``'s trainer shows a progress bar on this process (rank zero)."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or getattr(trainer, "progress_bar_callback", None) is None:
        return False
    return bool(getattr(trainer, "is_global_zero", True))


@contextmanager
def evaluation_progress(module: Any, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``, which moves a bar of ``total`` units labelled ``description`` (a no-op when
    ``module``'s trainer shows no progress bar)."""
    if not shows_progress(module) or total <= 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def evaluation_status(module: Any, description: str) -> Iterator[None]:
    """A transient spinner with ``description`` and the elapsed time while the block runs (for one long call
    that reports no progress of its own); a no-op when ``module``'s trainer shows no progress bar."""
    if not shows_progress(module):
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        progress.add_task(description, total=None)
        yield

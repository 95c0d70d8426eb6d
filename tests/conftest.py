"""Shared test settings: deterministic, quiet, CPU-only."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# one thread: the suite is dominated by small ops, and oversubscribed threads stall badly on 2 busy cores
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Put ``os.environ`` back as it was after every test.

    Libraries write to it: Lightning's SLURMEnvironment sets ``MASTER_ADDR`` to the (simulated) first node,
    ``ddp_spawn`` sets ``MASTER_PORT``. Left in place, a later DDP test in the same pytest-xdist worker
    rendezvoused on the fictitious host ``gpu07`` and hung.
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _quiet_lightning() -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*litlogger.*")

"""Shared test settings: deterministic, quiet, CPU-only."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# one thread: the suite is dominated by small ops, and oversubscribed threads stall badly on 2 busy cores
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet_lightning() -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*litlogger.*")

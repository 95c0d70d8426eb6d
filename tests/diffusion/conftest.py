"""Shared fixtures for the diffusion tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_intra_op_thread() -> Iterator[None]:
    """Run these small-tensor tests on one intra-op thread.

    Sampler loops issue thousands of tiny ops (6000×2 tensors); on a busy 2-core machine the second OpenMP
    thread makes each op wait for a descheduled worker (measured: a 200-step DDPM run takes 0.35 s on one thread,
    3–23 s on two). Results do not depend on the thread count. The previous setting is restored afterwards.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

"""lit_gen.utils.rank_state: RNG capture/restore, per-rank selection and per-rank seeding (one process)."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from lit_gen.utils.rank_state import (
    capture_rng_state,
    decorrelate_rank_rngs,
    gather_to_rank_zero,
    restore_rng_state,
    select_rank,
)


def _draws() -> tuple[torch.Tensor, np.ndarray, float]:
    return torch.randn(4), np.random.randn(4), random.random()


def test_restore_continues_every_stream_exactly_and_loads_weights_only() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    np.random.randn()  # leave a cached Gaussian in NumPy's state
    state = capture_rng_state()
    expected = _draws()
    _draws()  # move on
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True))  # what a checkpoint round trip gives
    got = _draws()
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_restore_rejects_a_non_dict() -> None:
    with pytest.raises(TypeError, match="capture_rng_state"):
        restore_rng_state([1, 2])  # type: ignore[arg-type]


def test_gather_without_process_group_is_a_one_rank_list() -> None:
    assert gather_to_rank_zero({"a": 1}) == [{"a": 1}]


def test_select_rank_picks_own_entry_and_warns_when_ranks_were_fewer() -> None:
    assert select_rank(["r0", "r1"], 1, "buffers") == "r1"
    with pytest.warns(UserWarning, match="reuses the state of rank 0"):
        assert select_rank(["r0", "r1"], 2, "buffers") == "r0"
    with pytest.raises(ValueError, match="per-rank list"):
        select_rank([], 0, "buffers")


def test_decorrelated_ranks_draw_different_but_reproducible_streams() -> None:
    def stream(rank: int) -> torch.Tensor:
        torch.manual_seed(0)  # what seed_everything does on every rank
        decorrelate_rank_rngs(rank)
        return torch.randn(8)

    assert not torch.equal(stream(0), stream(1))
    assert torch.equal(stream(1), stream(1))
    with pytest.raises(ValueError, match="rank"):
        decorrelate_rank_rngs(-1)

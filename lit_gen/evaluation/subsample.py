"""Capped, seeded evaluation subsamples: evaluation cost that does not grow with the split.

The metrics of a validation or test epoch see at most ``cap`` points of the held-out split: a seeded random
subsample when the split is in memory (the whole split, in order, when it fits), drawn from a generator seeded by
the data module's ``seed`` (never the global RNG, so training draws are untouched), the same in every epoch and
run. Under DDP the subsample is split among the ranks (rank r takes entries r, r + W, ... of it, W the world
size), so the gathered metric states hold exactly the capped points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lit_gen.contract import data_seed, data_split
from lit_gen.utils.seeding import SPLITS, derive_seed

__all__ = ["EvalSubsample", "build_subsample", "eval_seed", "subsample_indices"]


@dataclass
class EvalSubsample:
    """One rank's share of the real points that enter the sample metrics in one validation or test epoch.

    ``rows``: the share, drawn from the in-memory split (``None``: take the loader's batches in order).
    ``limit``: points this rank feeds to SW1 (samples as many); ``mmd_limit``: the first that many also feed MMD².
    ``split_size``: size of the whole split when known. ``used``: points fed so far this epoch.
    """

    rows: Tensor | None
    limit: int
    mmd_limit: int
    split_size: int | None
    used: int = 0


def subsample_indices(n: int, cap: int, seed: int) -> Tensor:
    """Indices of a seeded random subsample of ``min(n, cap)`` of ``range(n)``: ``arange(n)`` when ``n <= cap``
    (all points, in order), else the first ``cap`` entries of a permutation drawn by a generator seeded with
    ``seed`` (so any prefix of it is itself a uniform random subsample)."""
    if n <= cap:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:cap]


def eval_seed(trainer: Any, split: str) -> int:
    """Seed of the evaluation subsample of ``split``: derived from the data module's ``seed`` (0 without one)."""
    return derive_seed(data_seed(trainer), 0xE7A1, SPLITS.index(split))


def build_subsample(trainer: Any, split: str, cap: int, mmd_cap: int) -> EvalSubsample:
    """This rank's share of the capped subsample of ``split`` (``cap`` points, the first ``mmd_cap`` for MMD²)."""
    mmd_cap = min(cap, mmd_cap)
    world, rank = (int(trainer.world_size), int(trainer.global_rank)) if trainer is not None else (1, 0)
    data = data_split(trainer, split)
    if data is None or len(data) == 0:
        return EvalSubsample(None, math.ceil(cap / world), math.ceil(mmd_cap / world), None)
    idx = subsample_indices(len(data), cap, eval_seed(trainer, split))
    mine = idx[rank::world]
    # rank r's first entries r, r + W, ... below the MMD² cap: together exactly the subsample's first points
    mmd_limit = len(range(rank, min(mmd_cap, len(idx)), world))
    return EvalSubsample(data[mine], len(mine), mmd_limit, len(data))

"""Independent seeds for the streams of a seeded run (pure numpy; shared by data modules and evaluation)."""

from __future__ import annotations

import numpy as np

__all__ = ["SPLITS", "derive_seed"]

#: the data splits, in the order their streams are numbered
SPLITS: tuple[str, ...] = ("train", "val", "test")


def derive_seed(seed: int, *keys: int) -> int:
    """An independent 63-bit seed for stream ``keys`` of a run seeded with ``seed``.

    ``numpy.random.SeedSequence`` hashes the entropy, so streams (e.g. train/val/test draws)
    are statistically independent and never collide the way ``seed + k`` schemes do.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
    entropy = [seed % 2**63, *keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

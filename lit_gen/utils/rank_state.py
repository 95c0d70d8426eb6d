"""Per-rank state in checkpoints: random-number-generator states and other objects every DDP rank keeps apart.

Lightning writes the checkpoint from rank 0 only, so anything that differs between ranks (the global RNG streams
that draw MCMC noise, diffusion noise and replay-buffer restarts; each rank's replay buffer) is lost unless it is
first gathered to rank 0. :func:`gather_to_rank_zero` does that, giving a list indexed by rank;
:func:`select_rank` picks a rank's entry back when the checkpoint is loaded.

Resuming bit for bit needs the RNG streams to continue where they stopped (the draws ``x_t = sqrt(ᾱ) x0 +
sqrt(1−ᾱ) ε``, the Langevin noise ``sqrt(2η) ξ`` and the restart coin of the buffer all come from them), so
:func:`capture_rng_state` / :func:`restore_rng_state` cover torch (CPU and the current CUDA device), NumPy and
Python's ``random``.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def _numpy_state() -> dict[str, Any]:
    # tensors and numbers only, so that checkpoints load with torch.load(weights_only=True)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    if kind != "MT19937":
        raise RuntimeError(f"unexpected NumPy global RNG {kind!r}; expected MT19937")
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states of torch (CPU, and the current CUDA device when initialised), NumPy and ``random``."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the global RNG states from :func:`capture_rng_state`'s output (missing entries are left alone)."""
    if not isinstance(state, dict):
        raise TypeError(f"expected an RNG state dict from capture_rng_state(), got {type(state).__name__}")
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "numpy" in state:
        numpy_state = state["numpy"]
        np.random.set_state((
            "MT19937", numpy_state["keys"].numpy().astype(np.uint32), int(numpy_state["pos"]),
            int(numpy_state["has_gauss"]), float(numpy_state["cached_gaussian"]),
        ))
    if "python" in state:
        random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_to_rank_zero(obj: Any) -> list[Any] | None:
    """Collect ``obj`` from every rank: rank 0 gets ``[obj_rank0, obj_rank1, ...]``, the other ranks ``None``.

    Without an initialised process group (one process) the result is ``[obj]``. A collective: every rank must
    call it, as every rank calls ``on_save_checkpoint`` when Lightning saves. Tensors should be on the CPU.
    """
    if not _distributed():
        return [obj]
    rank, world = dist.get_rank(), dist.get_world_size()
    out: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def select_rank(per_rank: list[Any], rank: int, what: str) -> Any:
    """Entry ``rank`` of a list saved by :func:`gather_to_rank_zero`.

    When the run resumes with more ranks than it saved, rank r takes entry ``r mod len`` with a warning: the
    state is then shared by several ranks (identical RNG streams or replay buffers on those ranks).
    """
    if not isinstance(per_rank, (list, tuple)) or not per_rank:
        raise ValueError(f"the checkpoint's {what} must be a non-empty per-rank list, got {type(per_rank).__name__}")
    if rank >= len(per_rank):
        warnings.warn(
            f"the checkpoint holds the {what} of {len(per_rank)} rank(s) but this is rank {rank}: it reuses the "
            f"state of rank {rank % len(per_rank)}. Resume with the same number of processes to continue exactly.",
            stacklevel=2,
        )
    return per_rank[rank % len(per_rank)]


def decorrelate_rank_rngs(rank: int) -> int:
    """Give this rank its own global RNG streams; returns the seed it set.

    Lightning seeds every DDP rank identically (``seed_everything`` in each process), so without this all ranks
    draw the same diffusion noise, the same MCMC noise and the same replay-buffer slots and restarts — and since
    the replicas share their weights, every rank's replay buffer would hold the very same chains. A base seed is
    drawn from the (shared) torch stream, so the run stays reproducible, and mixed with the rank through NumPy's
    ``SeedSequence``, which gives statistically independent streams.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be an int >= 0, got {rank!r}")
    base = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    seed = int(np.random.SeedSequence([base, rank]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return seed

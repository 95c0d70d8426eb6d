"""Process-level settings that lit_gen applies when a module is set up for a run (never at import)."""

from __future__ import annotations

import glob
import os


def relax_cuda_check_without_gpu() -> None:
    """Undo Lightning's ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on machines with no NVIDIA device node.

    With that variable set, ``torch.cuda.is_available()`` re-queries NVML on every call, and every
    ``Adam.step`` calls it: about 75 µs per optimizer step on a GPU-less machine (measured; BENCHMARKS.md).
    Lightning sets it to keep forked DataLoader workers safe on GPU machines, so it is left alone wherever a GPU
    may exist.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not glob.glob("/dev/nvidia[0-9]*"):
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"

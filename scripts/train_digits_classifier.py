"""Train (or re-train) the small sklearn-digits classifier behind FD-digits and cache its weights.

    python scripts/train_digits_classifier.py [--seed 0] [--cache-dir ~/.cache/lit_gen]

Seconds on one CPU core, fully offline (the digits ship with scikit-learn). ``lit-gen test`` trains it on first
use anyway; this script makes the step explicit and prints the held-out accuracy.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from lit_gen.metrics.digits_classifier import _VERSION, default_cache_dir, train_digits_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description="train the FD-digits feature classifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="default: $LIT_GEN_CACHE or ~/.cache/lit_gen")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, accuracy = train_digits_classifier(args.seed)
    path = Path(args.cache_dir or default_cache_dir()) / f"digits_classifier_v{_VERSION}_seed{args.seed}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"state_dict": model.state_dict(), "accuracy": accuracy, "seed": args.seed}, tmp)
    tmp.replace(path)
    print(f"held-out accuracy {accuracy:.4f}, trained in {time.perf_counter() - start:.1f} s; saved {path}")


if __name__ == "__main__":
    main()

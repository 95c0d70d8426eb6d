"""The AIS bits/dim bracket of a trained energy checkpoint on MNIST test images, at several annealing lengths.

    python benchmarks/ais_checkpoint.py runs/ebm_mnist/lightning_logs/version_0/checkpoints/last.ckpt \
        --steps 100 1000 [--points 64] [--chains 64] [--root data]

The same evaluator as the test report (:class:`lit_gen.evaluation.AISLikelihood`: the anneal runs in u = atanh(x)
from the cube's uniform law, MALA steps tuned per temperature on 16 pilot chains), on the first ``--points`` test
images, one line per annealing length: how the bracket narrows with T, without rerunning the rest of ``lit-gen
test``. The checkpoint is read with ``weights_only=True`` (:func:`lit_gen.models.hub.load`).
"""

from __future__ import annotations

import argparse
import time

import torch

from lit_gen.data import MNISTDataModule
from lit_gen.evaluation import AISLikelihood
from lit_gen.models.hub import load

KEYS = ("ais_bpd_lower", "ais_bpd_upper", "ais_log_z", "ais_log_z_stderr", "ais_ess", "ais_log_z_reverse",
        "ais_acceptance", "ais_step_size_min", "ais_step_size_max", "ais_bracket_inverted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--steps", type=int, nargs="+", default=[200])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--root", default="data")
    args = parser.parse_args()
    torch.manual_seed(0)
    module = load(args.checkpoint).eval()
    data = MNISTDataModule(root=args.root, batch_size=args.points)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    x = (batch[0] if isinstance(batch, (list, tuple)) else batch)[: args.points]
    print("| T | seconds | " + " | ".join(KEYS) + " |")
    print("|" + "---|" * (len(KEYS) + 2))
    for steps in args.steps:
        evaluator = AISLikelihood(num_chains=args.chains, num_steps=steps, max_points=args.points)
        evaluator.update(module, x, 0, "test")
        start = time.perf_counter()
        report = evaluator.report(module)
        seconds = time.perf_counter() - start
        print(f"| {steps} | {seconds:.0f} | " + " | ".join(f"{report[k]:.4g}" for k in KEYS) + " |", flush=True)


if __name__ == "__main__":
    main()

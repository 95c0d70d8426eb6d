"""Which level of a DCD noise ladder breaks generation: anneal from real images noised to each level in turn.

    python benchmarks/dcd_ladder_probe.py runs/dcd_mnist/lightning_logs/version_0/checkpoints/last.ckpt \
        [--levels 6 5 4 2] [--points 256] [--steps 20] [--root data]

Annealed generation (:meth:`lit_gen.models.DCDModule.sample`) starts from a Gaussian at the top level L and samples
``x_t ~ p_θ(x_t | x_{t+1})`` down to level 0. Starting instead at level s from ``x_s = m_s x_0 + σ_s ε``, with
``x_0`` real training images, gives the levels below s their true input law (``start_level=s``): if the samples are
digits from level s but not from level s + 1, the posterior of level s (the energy ``E(·, s)`` or its sampler) is
where generation fails. One FD-MNIST line per start level (the test report's classifier and floor, against the
test split), then the plain generation from the top Gaussian for comparison. The checkpoint is read with
``weights_only=True`` (:func:`lit_gen.models.hub.load`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lit_gen.models import DCDModule

KEYS = ("fd_mnist", "fd_mnist_floor", "mnist_classes_covered", "mnist_confidence")


def probe(module: DCDModule, x0: Tensor, levels: Sequence[int], steps: int | None,
          score: Callable[[Tensor], dict[str, float]], seed: int = 0) -> list[tuple[str, dict[str, float], float]]:
    """``(row name, score(samples), seconds)`` for each start level s of ``levels`` (annealing from
    ``m_s x_0 + σ_s ε``) and a last row for the generation from the top level's moment-matched Gaussian."""
    if module.num_levels < 2:
        raise ValueError("the ladder probe needs a DCDModule with a noise ladder (num_levels > 1)")
    rows = []
    for s in levels:
        g = torch.Generator().manual_seed(seed)
        start = module.marginal_mean[s] * x0 + module.marginal_std[s] * torch.randn(x0.shape, generator=g)
        t0 = time.perf_counter()
        x = module.sample(len(x0), steps=steps, generator=g, init=start, start_level=s)
        rows.append((f"data noised to level {s}", score(x), time.perf_counter() - t0))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    x = module.sample(len(x0), steps=steps, generator=g)
    rows.append((f"Gaussian at level {module.num_levels} (generation)", score(x), time.perf_counter() - t0))
    return rows


def main() -> None:
    from lit_gen.metrics.mnist_classifier import load_mnist_arrays, load_mnist_classifier
    from lit_gen.metrics.mnist_score import mnist_sample_report
    from lit_gen.models.hub import load

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--levels", type=int, nargs="+", default=None, help="start levels (default: L down to 1)")
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="posterior steps per level (default: the model's)")
    parser.add_argument("--root", default="data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    module = load(args.checkpoint).eval()
    if not isinstance(module, DCDModule):
        raise SystemExit(f"{args.checkpoint} holds a {type(module).__name__}, not a DCDModule")
    arrays = load_mnist_arrays(args.root)

    def scaled(images: Tensor) -> Tensor:
        return images.float().div(255).mul(2).sub(1).unsqueeze(1)

    test, train = scaled(arrays["x_test"]), scaled(arrays["x_train"])
    classifier = load_mnist_classifier(args.root)
    reference = train[:5000]  # the floor's training subset; the probe's images come from the end of the split
    x0 = train[-args.points:]
    levels = args.levels or list(range(module.num_levels, 0, -1))

    def score(x: Tensor) -> dict[str, float]:
        return mnist_sample_report(x, test, reference, classifier)

    steps = module.sample_steps if args.steps is None else args.steps
    print(f"| start ({len(x0)} samples, {steps} posterior steps per level) | FD-MNIST | floor | classes | "
          f"confidence | s |")
    print("|---|---|---|---|---|---|")
    for name, report, seconds in probe(module, x0, levels, args.steps, score, args.seed):
        print(f"| {name} | {report['fd_mnist']:.1f} | {report['fd_mnist_floor']:.1f} | "
              f"{report['mnist_classes_covered']:.0f} | {report['mnist_confidence']:.3f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()

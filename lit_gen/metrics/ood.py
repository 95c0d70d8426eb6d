"""Out-of-distribution detection: AUROC of a score that should be higher on in-distribution data.

For an EBM the score is ``−E(x)`` (Du & Mordatch 2019; Grathwohl et al. 2020): the area under the ROC curve of
"in-distribution vs OOD" ranked by the score, computed with torchmetrics' ``BinaryAUROC``. 1.0 separates
perfectly, 0.5 is chance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torchmetrics.classification import BinaryAUROC


def ood_auroc(score_in: Tensor, score_out: Tensor) -> float:
    """AUROC of ``score_in`` (label 1) against ``score_out`` (label 0): ``P(s_in > s_out) + ½ P(s_in = s_out)``.

    The scores enter as their dense ranks scaled into (0, 1) (the AUROC depends only on the order and the ties):
    torchmetrics reads scores outside [0, 1] as logits and applies a sigmoid, which in float32 ties every score
    below about −100 or above about +17, so raw energies in the hundreds would all come out at 0.5.
    """
    raw = torch.cat([score_in.flatten(), score_out.flatten()]).detach().double().cpu()
    if not bool(torch.isfinite(raw).all()):
        raise ValueError("OOD scores hold NaN or infinite values: the energy diverged on some inputs")
    distinct, ranks = torch.unique(raw, sorted=True, return_inverse=True)
    scores = (ranks.double() + 1.0) / (distinct.numel() + 1.0)
    labels = torch.cat([torch.ones(score_in.numel()), torch.zeros(score_out.numel())]).long()
    metric = BinaryAUROC()
    metric.update(scores, labels)
    return float(metric.compute())


def image_ood_sets(x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Standard OOD sets built from in-distribution images in [-1, 1], matched in size and shape.

    ``uniform`` noise on [-1, 1], ``gaussian`` noise N(0, 0.5²) clipped to [-1, 1], and the images ``vflip``-ped
    (upside down, a semantic shift with identical pixel statistics).
    """
    g = generator
    uniform = torch.rand(x.shape, generator=g, dtype=x.dtype, device="cpu").to(x.device) * 2 - 1
    gaussian = (0.5 * torch.randn(x.shape, generator=g, dtype=x.dtype, device="cpu")).clamp(-1, 1).to(x.device)
    return {"uniform": uniform, "gaussian": gaussian, "vflip": torch.flip(x, dims=[-2])}


def ood_report(
    score_fn: Callable[[Tensor], Tensor], x_in: Tensor, batch_size: int = 512, seed: int = 0
) -> dict[str, float]:
    """``{"auroc_<set>": AUROC}`` of ``score_fn`` for ``x_in`` against each of :func:`image_ood_sets`."""
    g = torch.Generator().manual_seed(seed)

    def scores(x: Tensor) -> Tensor:
        return torch.cat([score_fn(x[i : i + batch_size]).detach().float().cpu() for i in range(0, len(x), batch_size)])

    s_in = scores(x_in)
    return {f"auroc_{name}": ood_auroc(s_in, scores(x_out)) for name, x_out in image_ood_sets(x_in, g).items()}

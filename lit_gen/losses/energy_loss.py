"""Training objectives of an energy model as objects: the one way a loss is plugged into ``EBMModule``.

An :class:`EnergyLoss` is called as ``loss(energy, x, negatives) -> (loss, parts)``: ``energy`` maps a batch to
per-sample energies ``(B,)``, ``x`` is the data batch and ``negatives`` the model's MCMC samples, drawn by the
module only when the loss declares ``needs_negatives``. ``parts`` holds detached figures to log (and, under
``"energies"``, the per-sample energies the module's divergence guard checks). A user's own objective subclasses
:class:`EnergyLoss` and is chosen in YAML by ``class_path``; the names ``cd``, ``dsm`` and ``ssm`` stay shorthands
(:func:`build_energy_loss`). Equations: :mod:`lit_gen.losses.contrastive_divergence` and
:mod:`lit_gen.losses.score_matching`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from lit_gen.losses.contrastive_divergence import contrastive_divergence_loss
from lit_gen.losses.score_matching import denoising_score_matching_loss, sliced_score_matching_loss
from lit_gen.utils.config import RecordsInit

__all__ = [
    "ContrastiveDivergence", "DenoisingScoreMatching", "ENERGY_LOSSES", "EnergyLoss", "SlicedScoreMatching",
    "build_energy_loss",
]

Energy = Callable[[Tensor], Tensor]


class EnergyLoss(RecordsInit):
    """Interface of an energy-model objective (see the module docstring)."""

    needs_negatives: bool = False

    def __call__(self, energy: Energy, x: Tensor, negatives: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class ContrastiveDivergence(EnergyLoss):
    """(Persistent) contrastive divergence with the energy regulariser α (Hinton 2002; Du & Mordatch 2019).

    Args:
        alpha: weight of ``mean E(x⁺)² + mean E(x⁻)²``.
        data_noise: std of Gaussian noise added to the data side x⁺ (0: none).
    """

    needs_negatives = True

    def __init__(self, alpha: float = 0.1, data_noise: float = 0.0) -> None:
        if alpha < 0 or data_noise < 0:
            raise ValueError(f"alpha and data_noise must be >= 0, got {alpha} and {data_noise}")
        self.alpha = float(alpha)
        self.data_noise = float(data_noise)

    def __call__(self, energy: Energy, x: Tensor, negatives: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if negatives is None:
            raise ValueError("contrastive divergence needs negative samples: pass the model's MCMC samples")
        x_pos = x + self.data_noise * torch.randn_like(x) if self.data_noise > 0 else x
        e_pos = energy(x_pos)
        e_neg = energy(negatives.detach())
        loss, parts = contrastive_divergence_loss(e_pos, e_neg, self.alpha)
        return loss, {
            "energy_pos": e_pos.mean().detach(), "energy_neg": e_neg.mean().detach(), "cd": parts["cd"],
            "energies": torch.cat([e_pos.detach(), e_neg.detach()]),
        }


class DenoisingScoreMatching(EnergyLoss):
    """Denoising score matching of ``−∇E`` at the noise levels ``sigmas`` (Vincent 2011; Song & Ermon 2019)."""

    def __init__(self, sigmas: Sequence[float] = (0.1,)) -> None:
        sigmas = tuple(float(s) for s in sigmas)
        if not sigmas or any(s <= 0 for s in sigmas):
            raise ValueError(f"sigmas must be a non-empty list of positive noise levels, got {sigmas}")
        self.sigmas = sigmas

    def __call__(self, energy: Energy, x: Tensor, negatives: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return denoising_score_matching_loss(energy, x, self.sigmas), {}


class SlicedScoreMatching(EnergyLoss):
    """Sliced score matching with ``num_slices`` Gaussian projections (Song, Garg, Shi & Ermon 2019)."""

    def __init__(self, num_slices: int = 1) -> None:
        if isinstance(num_slices, bool) or not isinstance(num_slices, int) or num_slices < 1:
            raise ValueError(f"num_slices must be a positive integer, got {num_slices!r}")
        self.num_slices = num_slices

    def __call__(self, energy: Energy, x: Tensor, negatives: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return sliced_score_matching_loss(energy, x, self.num_slices), {}


ENERGY_LOSSES: dict[str, type[EnergyLoss]] = {
    "cd": ContrastiveDivergence, "dsm": DenoisingScoreMatching, "ssm": SlicedScoreMatching,
}


def build_energy_loss(loss: EnergyLoss | str, **settings: Any) -> EnergyLoss:
    """``loss`` itself, or the shorthand name's class built with ``settings`` (the ones its constructor takes)."""
    if isinstance(loss, EnergyLoss):
        return loss
    if loss not in ENERGY_LOSSES:
        raise ValueError(
            f"loss must be a lit_gen.losses.EnergyLoss or one of {sorted(ENERGY_LOSSES)}, got {loss!r}"
        )
    import inspect

    cls = ENERGY_LOSSES[loss]
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in settings.items() if k in accepted})

"""Class-conditional energies for the MCMC samplers: ``E(x, y)``, the product of experts, and the JEM reading.

Every sampler of :mod:`lit_gen.mcmc` targets ``p ∝ exp(−E)`` for a callable ``x -> (B,)``; these helpers turn a
conditional energy into such a callable, so Langevin, MALA and HMC sample ``p(x | y) ∝ exp(−E(x, y))`` unchanged:

- :func:`conditional_energy`: ``x ↦ E(x, y)`` for an energy network called as ``energy_net(x, y=y)``;
- :func:`product_of_experts`: ``x ↦ E(x) + w E(x, y)``, i.e. ``p(x) q_y(x)^w`` (Hinton 2002, "Training products
  of experts by minimizing contrastive divergence"), the energy analogue of guidance. With the second expert a class
  likelihood, ``E(x, y) = −log p(y | x) + const``, it samples ``p(x) p(y | x)^w``, the target of classifier
  guidance (Dhariwal & Nichol 2021). Classifier-free guidance (Ho & Salimans 2022) uses the implicit classifier
  ``−log p(y | x) = E(x, y) − E(x) + const`` of a conditional energy ``E(x, y) = −log p(x | y) + const``; its target
  ``p(x)^{1−w} p(x | y)^w`` is this product with ``x ↦ E(x, y) − E(x)`` as the second expert;
- :func:`guided_energy`: that classifier-free form for one network with a null class,
  ``x ↦ E(x, ∅) + w (E(x, y) − E(x, ∅))``, the energy counterpart of :class:`lit_gen.diffusion.GuidedDenoiser`;
- JEM (Grathwohl et al. 2020, "Your classifier is secretly an energy based model"): a classifier's logits f(x) ∈ R^K
  define ``p(x, y) ∝ exp(f(x)[y])``, so ``E(x, y) = −f(x)[y]``, ``E(x) = −logsumexp_y f(x)[y]`` and
  ``p(y | x) = softmax f(x)``: :func:`jem_class_energy`, :func:`jem_energy`, :func:`jem_accuracy`.

See ``docs/algorithms.md#class-conditioning-and-guidance``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from lit_gen.mcmc.base import EnergyFn

__all__ = [
    "conditional_energy",
    "guided_energy",
    "jem_accuracy",
    "jem_class_energy",
    "jem_energy",
    "product_of_experts",
]

LogitsFn = Callable[[Tensor], Tensor]


def _labels_for(y: Tensor | int, x: Tensor) -> Tensor:
    """``y`` as a long tensor (B,) on ``x``'s device; an int or a 0-d tensor is one label for every chain."""
    labels = torch.as_tensor(y, device=x.device)
    if isinstance(y, bool) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"class labels y must be an int or an integer tensor of shape (B,), got {y!r}")
    if labels.dim() == 0:
        return labels.long().expand(x.shape[0])
    if labels.shape != (x.shape[0],):
        raise ValueError(
            f"class labels y have shape {tuple(labels.shape)} but there are {x.shape[0]} chains; give one label per "
            "chain, shape (B,), or a single int"
        )
    return labels.long()


def conditional_energy(energy_net: Callable[..., Tensor], y: Tensor | int) -> EnergyFn:
    """``x ↦ E(x, y)``: the energy of ``p(x | y) ∝ exp(−E(x, y))`` as a sampler's ``energy(x) -> (B,)``.

    Args:
        energy_net: a conditional energy called as ``energy_net(x, y=labels)`` (the lit_gen convention).
        y: one label per chain (B,), or an int for all chains.
    """
    if not callable(energy_net):
        raise TypeError(f"energy_net must be callable as energy_net(x, y=...), got {type(energy_net).__name__}")

    def energy(x: Tensor) -> Tensor:
        return energy_net(x, y=_labels_for(y, x))

    return energy


def product_of_experts(energy_uncond: EnergyFn, energy_cond: Callable[..., Tensor], y: Tensor | int,
                       weight: float = 1.0) -> EnergyFn:
    """``x ↦ E(x) + w E(x, y)``, the (unnormalised) energy of ``p(x) q_y(x)^w``; see the module docstring.

    Args:
        energy_uncond: ``E(x) -> (B,)``.
        energy_cond: ``energy_cond(x, y=labels) -> (B,)``.
        y: one label per chain (B,), or an int.
        weight: w >= 0, the guidance weight of the conditional expert.
    """
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
    w = float(weight)
    cond = conditional_energy(energy_cond, y)

    def energy(x: Tensor) -> Tensor:
        return energy_uncond(x) + w * cond(x) if w != 0.0 else energy_uncond(x)

    return energy


def guided_energy(energy_net: Callable[..., Tensor], y: Tensor | int, weight: float = 1.0) -> EnergyFn:
    """``x ↦ E(x, ∅) + w (E(x, y) − E(x, ∅)) = (1 − w) E(x, ∅) + w E(x, y)``: classifier-free guidance of an energy
    trained with label dropout, the density ``p(x)^{1−w} p(x | y)^w`` (Ho & Salimans 2022, in energy form).

    ``E(x, ∅)`` is ``energy_net(x)`` (the null class); w = 0 evaluates only it, w = 1 only ``energy_net(x, y=y)``.
    For w > 1 the density is normalisable only where the conditional energy grows faster than the unconditional
    one, as it does when the classes are narrower than their mixture.
    """
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
    w = float(weight)
    cond = conditional_energy(energy_net, y)

    def energy(x: Tensor) -> Tensor:
        if w == 0.0:
            return energy_net(x)
        if w == 1.0:
            return cond(x)
        uncond = energy_net(x)
        return uncond + w * (cond(x) - uncond)

    return energy


def _logits(f: LogitsFn, x: Tensor) -> Tensor:
    out = f(x)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"the logits function must return shape (B, K) = ({x.shape[0]}, K), got {shape}")
    return out


def jem_energy(f: LogitsFn) -> EnergyFn:
    """``E(x) = −logsumexp_y f(x)[y]``: the marginal ``p(x) = Σ_y p(x, y)`` of JEM's ``p(x, y) ∝ exp(f(x)[y])``."""

    def energy(x: Tensor) -> Tensor:
        return -torch.logsumexp(_logits(f, x), dim=1)

    return energy


def jem_class_energy(f: LogitsFn, y: Tensor | int) -> EnergyFn:
    """``E(x, y) = −f(x)[y]``: the class-conditional ``p(x | y) ∝ exp(f(x)[y])`` of JEM."""

    def energy(x: Tensor) -> Tensor:
        logits = _logits(f, x)
        labels = _labels_for(y, x)
        k = logits.shape[1]
        if bool(((labels < 0) | (labels >= k)).any()):
            bad = int(labels[(labels < 0) | (labels >= k)][0])
            raise ValueError(f"class label {bad} is out of range for the {k} logits; labels must lie in [0, {k})")
        return -logits.gather(1, labels[:, None]).squeeze(1)

    return energy


@torch.no_grad()
def jem_accuracy(f: LogitsFn, x: Tensor, y: Tensor, batch_size: int | None = None) -> float:
    """Classification accuracy of ``argmax_y p(y | x) = argmax_y f(x)[y]`` on ``(x, y)``, in [0, 1].

    ``batch_size`` evaluates ``f`` in chunks (None: all at once).
    """
    if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be a label tensor of shape ({x.shape[0]},) matching x")
    if x.shape[0] == 0:
        raise ValueError("jem_accuracy needs at least one example")
    step = x.shape[0] if batch_size is None else int(batch_size)
    if step < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    correct = 0
    for start in range(0, x.shape[0], step):
        pred = _logits(f, x[start:start + step]).argmax(dim=1)
        correct += int((pred == y[start:start + step].to(pred.device)).sum())
    return correct / x.shape[0]

"""Class conditioning of the networks: a learned class embedding with a null class, and the label checks.

A network built with ``num_classes = K > 0`` owns ``nn.Embedding(K + 1, dim)``; rows ``0..K−1`` are the classes
and row ``K`` is the *null class*, "no label", which classifier-free guidance (Ho & Salimans 2022) trains by label
dropout and evaluates as the unconditional model. The embedding is added to the network's time embedding (as the
class-conditional U-Nets of Dhariwal & Nichol 2021 do), or to an early hidden layer of an energy without time.

Calling convention (documented once, in :mod:`lit_gen.nn`): ``net(x, t, y=None)``, ``energy_net(x, y=None)``;
``y`` is a long tensor of shape (B,) (a Python int or 0-d tensor is broadcast over the batch). ``y=None`` and
``y = K`` both mean the null class. With ``num_classes = 0`` (the default) the network has no embedding (its
parameters and state-dict keys are those of the unconditional network) and passing labels is an error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ClassEmbedding", "check_class_logits", "check_num_classes", "class_labels", "energy_from_logits"]


def check_num_classes(num_classes: int) -> int:
    """Validate ``num_classes`` (an int >= 0; 0 = unconditional) and return it."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(
            f"num_classes must be an int >= 0 (0 builds the unconditional network), got {num_classes!r}"
        )
    return num_classes


def check_class_logits(class_logits: bool, num_classes: int) -> bool:
    """Validate the ``class_logits`` switch of the energy networks (it needs ``num_classes >= 1``)."""
    if not isinstance(class_logits, bool):
        raise TypeError(f"class_logits must be True or False, got {class_logits!r}")
    if class_logits and num_classes == 0:
        raise ValueError("class_logits=True reads the outputs as class logits, so it needs num_classes >= 1")
    return class_logits


def energy_from_logits(logits: Tensor, labels: Tensor | None) -> Tensor:
    """The JEM energies of logits f(x) (B, K) (Grathwohl et al. 2020, "Your classifier is secretly an energy
    based model"): ``E(x, y) = −f(x)[y]`` for a class ``y < K``, and ``E(x) = −logsumexp_y f(x)[y]`` for the null
    class ``K`` (or ``labels=None``), so that ``E(x, y) − E(x) = −log p(y | x)`` with ``p(y | x) = softmax f(x)``.
    """
    free = -torch.logsumexp(logits, dim=1)
    if labels is None:
        return free
    k = logits.shape[1]
    null = labels == k
    picked = logits.gather(1, labels.clamp(max=k - 1)[:, None]).squeeze(1)
    return torch.where(null, free, -picked)


def class_labels(y: Tensor | int | None, num_classes: int, batch: int, device: torch.device,
                 owner: str) -> Tensor | None:
    """Checked labels as a long tensor (B,) on ``device``, the null class ``K`` where ``y`` is None.

    Returns None for an unconditional network (``num_classes == 0``) called without labels.

    Raises:
        ValueError: labels given to an unconditional network; labels of the wrong shape or dtype; a label
            outside ``[0, K)`` other than the null index ``K``.
    """
    if num_classes == 0:
        if y is not None:
            raise ValueError(
                f"{owner}: this network was built without num_classes; set num_classes in the network config "
                "or do not pass labels"
            )
        return None
    if y is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if isinstance(y, bool) or not isinstance(y, int | Tensor):
        raise TypeError(f"{owner}: class labels y must be a long tensor of shape ({batch},), got {type(y).__name__}")
    y = torch.as_tensor(y, device=device)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{owner}: class labels y must be integers (a long tensor), got dtype {y.dtype}")
    if y.dim() == 0 or (y.dim() == 1 and y.shape[0] == 1):
        y = y.reshape(1).expand(batch)
    if y.shape != (batch,):
        raise ValueError(f"{owner}: class labels y must have shape ({batch},) to match x, got {tuple(y.shape)}")
    y = y.long()
    if not torch.compiler.is_compiling():  # a data-dependent check would break a compiled graph
        bad = (y < 0) | (y > num_classes)
        if bool(bad.any()):
            value = int(y[bad][0])
            raise ValueError(
                f"{owner}: class label {value} is out of range for num_classes={num_classes}; labels must lie in "
                f"[0, {num_classes}) ({num_classes} itself is the null class, 'unconditional')"
            )
    return y


class ClassEmbedding(nn.Embedding):
    """``nn.Embedding(K + 1, dim)``: one learned vector per class and one (row ``K``) for the null class.

    Initialised as ``nn.Embedding`` (N(0, 1) entries). Call it with labels checked by :func:`class_labels`.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        if check_num_classes(num_classes) == 0:
            raise ValueError("ClassEmbedding needs num_classes >= 1")
        super().__init__(num_classes + 1, dim)
        self.num_classes = num_classes

    @property
    def null_class(self) -> int:
        """The index of the null class, ``K``."""
        return self.num_classes

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes} (+1 null class), dim={self.embedding_dim}"

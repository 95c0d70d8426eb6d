"""What a diffusion network predicts, and conversions between the three choices.

With ``a = sqrt(ᾱ)``, ``b = sqrt(1 − ᾱ)`` (so ``a² + b² = 1``) and ``x_t = a x_0 + b ε``:

- ``eps``: the noise ε (Ho et al., 2020);
- ``x0``: the clean data x_0;
- ``v``: the velocity ``v = a ε − b x_0`` (Salimans & Ho, 2022, "Progressive distillation").

They are related by ``x_0 = (x_t − b ε)/a = a x_t − b v`` and ``ε = (x_t − a x_0)/b = b x_t + a v``.
``alpha_bar`` is a per-sample tensor of shape (B,) (or a scalar) and is broadcast over the data dimensions.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor

__all__ = [
    "Prediction",
    "PREDICTIONS",
    "check_prediction",
    "training_target",
    "to_x0",
    "to_eps",
    "to_v",
    "convert",
]

Prediction = Literal["eps", "x0", "v"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


def check_prediction(prediction: str, name: str = "prediction") -> str:
    """Return ``prediction`` if it is one of ``eps``, ``x0``, ``v``; raise ``ValueError`` otherwise."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"{name} must be one of {list(PREDICTIONS)}, got {prediction!r}")
    return prediction


def _coefficients(alpha_bar: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(a, b) = (sqrt(ᾱ), sqrt(1 − ᾱ))`` shaped to broadcast against the batch ``x``."""
    if alpha_bar.dim() == 1:
        if alpha_bar.shape[0] != x.shape[0]:
            raise ValueError(
                f"alpha_bar has {alpha_bar.shape[0]} entries but the batch has {x.shape[0]} samples; "
                "pass one ᾱ per sample, shape (B,)"
            )
        alpha_bar = alpha_bar.reshape(-1, *([1] * (x.dim() - 1)))
    elif alpha_bar.dim() != 0:
        raise ValueError(f"alpha_bar must have shape (B,) or be a scalar, got shape {tuple(alpha_bar.shape)}")
    alpha_bar = alpha_bar.to(x.dtype)
    return alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()


def training_target(prediction: Prediction, x0: Tensor, eps: Tensor, alpha_bar: Tensor) -> Tensor:
    """The regression target for ``prediction`` given the clean data ``x0`` and the noise ``eps``."""
    check_prediction(prediction)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    a, b = _coefficients(alpha_bar, x0)
    return a * eps - b * x0


def to_x0(pred: Tensor, x_t: Tensor, alpha_bar: Tensor, prediction: Prediction) -> Tensor:
    """The x_0 estimate implied by a network output ``pred`` of type ``prediction`` at ``x_t``."""
    check_prediction(prediction)
    if prediction == "x0":
        return pred
    a, b = _coefficients(alpha_bar, x_t)
    if prediction == "eps":
        return (x_t - b * pred) / a
    return a * x_t - b * pred


def to_eps(pred: Tensor, x_t: Tensor, alpha_bar: Tensor, prediction: Prediction) -> Tensor:
    """The ε estimate implied by a network output ``pred`` of type ``prediction`` at ``x_t``."""
    check_prediction(prediction)
    if prediction == "eps":
        return pred
    a, b = _coefficients(alpha_bar, x_t)
    if prediction == "x0":
        return (x_t - a * pred) / b
    return b * x_t + a * pred


def to_v(pred: Tensor, x_t: Tensor, alpha_bar: Tensor, prediction: Prediction) -> Tensor:
    """The v estimate implied by a network output ``pred`` of type ``prediction`` at ``x_t``."""
    check_prediction(prediction)
    if prediction == "v":
        return pred
    a, b = _coefficients(alpha_bar, x_t)
    if prediction == "eps":
        # v = a ε − b x_0 with x_0 = (x_t − b ε)/a, simplified with a² + b² = 1.
        return (pred - b * x_t) / a
    # v = a ε − b x_0 with ε = (x_t − a x_0)/b.
    return (a * x_t - pred) / b


def convert(pred: Tensor, x_t: Tensor, alpha_bar: Tensor, src: Prediction, dst: Prediction) -> Tensor:
    """Re-express a prediction of type ``src`` as one of type ``dst`` (identity when they agree)."""
    check_prediction(src, "src")
    check_prediction(dst, "dst")
    if dst == "x0":
        return to_x0(pred, x_t, alpha_bar, src)
    if dst == "eps":
        return to_eps(pred, x_t, alpha_bar, src)
    return to_v(pred, x_t, alpha_bar, src)

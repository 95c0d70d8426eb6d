"""AIS for a model on a box without a boundary: the change of variables ``x = c + h tanh(u)``.

A model restricted to a box ``[low, high]^D`` (images on ``[−1, 1]^D``) has the normaliser ``Z = ∫_box exp(−E(x)) dx``.
Annealed from the uniform law on the box, every MALA/HMC proposal that leaves the box is rejected; MNIST's
dequantised background pixels lie within 2/256 of the face ``x = −1``, so in 784 dimensions almost every proposal
crosses it somewhere and no move is accepted unless the step is microscopic. The change of variables

    x = c + h ⊙ tanh(u),   c = (low + high)/2,  h = (high − low)/2,   |dx/du| = Π_i h_i sech²(u_i)

maps R^D onto the open box, and ``Z = ∫ exp(−E_u(u)) du`` with the unconstrained energy

    E_u(u) = E(c + h tanh u) − Σ_i log(h_i sech² u_i),

the same normaliser (the Jacobian is exact). The uniform law on the box becomes the product of logistic laws of
scale ½, density ``Π_i ½ sech²(u_i)`` (no ``h``: the box's volume cancels), sampled as ``u = atanh(v)``, v uniform
on (−1, 1). MALA moves in u never leave the box. A point's negative log-density in x follows from that in u by
``−log p_x(x) = −log p_u(u) + Σ_i log(h_i sech² u_i)``. See docs/algorithms.md#annealed-importance-sampling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from lit_gen.mcmc.base import EnergyFn

__all__ = ["BoxReparametrization", "LogisticBoxBase"]


def log_sech2(u: Tensor) -> Tensor:
    """``log sech²(u) = 2 (log 2 − |u| − log(1 + e^{−2|u|}))``, finite for every finite u."""
    a = u.abs()
    return 2.0 * (math.log(2.0) - a - torch.nn.functional.softplus(-2.0 * a))


class LogisticBoxBase(Distribution):
    """The uniform law on a box seen through ``u = atanh((x − c)/h)``: i.i.d. logistic of scale ½ in each of the
    ``event_shape`` coordinates, ``log p(u) = Σ_i (log ½ + log sech² u_i)``; batch shape ``()``."""

    arg_constraints: dict = {}
    support = constraints.real

    def __init__(self, event_shape: tuple[int, ...], device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self._device = torch.device("cpu") if device is None else torch.device(device)
        self._dtype = torch.get_default_dtype() if dtype is None else dtype
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size(event_shape), validate_args=False)

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:
        """``atanh(v)``, v uniform on (−1, 1) (kept 1e-6 inside it, so every draw is finite), from the global RNG."""
        shape = torch.Size(sample_shape) + self.event_shape
        with torch.no_grad():
            v = torch.rand(shape, device=self._device, dtype=self._dtype) * 2.0 - 1.0
            return torch.atanh(v.clamp(-1.0 + 1e-6, 1.0 - 1e-6))

    def log_prob(self, value: Tensor) -> Tensor:
        dims = tuple(range(value.dim() - len(self.event_shape), value.dim()))
        return (log_sech2(value) - math.log(2.0)).sum(dims)


class BoxReparametrization:
    """The map ``x = c + h tanh(u)`` between R^D and the box ``[low, high]`` (tensors of the event shape).

    ``energy(E)`` is the unconstrained energy ``E_u``, ``base()`` the box's uniform law in u, ``to_box``/``from_box``
    the map and its inverse, ``log_det(u)`` the per-point ``Σ log(h sech² u)``.
    """

    def __init__(self, low: Tensor, high: Tensor) -> None:
        if not isinstance(low, Tensor) or not isinstance(high, Tensor) or low.shape != high.shape:
            raise ValueError("low and high must be tensors of the data's event shape")
        if not bool((torch.isfinite(low) & torch.isfinite(high) & (high > low)).all()):
            raise ValueError("the box needs finite bounds with high > low in every coordinate")
        self.centre = (low + high).detach() / 2.0
        self.half = (high - low).detach() / 2.0
        self._log_half = float(torch.log(self.half).sum())
        self.event_shape = tuple(low.shape)

    def _dims(self, u: Tensor) -> tuple[int, ...]:
        return tuple(range(u.dim() - len(self.event_shape), u.dim()))

    def to_box(self, u: Tensor) -> Tensor:
        """``c + h tanh(u)``."""
        return self.centre + self.half * torch.tanh(u)

    def from_box(self, x: Tensor, margin: float = 1e-6) -> Tensor:
        """``atanh((x − c)/h)``, with ``(x − c)/h`` clamped ``margin`` inside ±1 (points on a face map to a finite
        u; the clamp moves them by at most ``margin · h``)."""
        if not bool(torch.isfinite(x).all()):
            raise ValueError("from_box: the points hold NaN or infinite values")
        z = (x - self.centre) / self.half
        if bool((z.abs() > 1.0 + 1e-4).any()):
            raise ValueError(f"from_box: some points lie outside the box (|x − c|/h up to {float(z.abs().max()):.4g});"
                             " the model is scored on the box, so the data must lie in it")
        return torch.atanh(z.clamp(-1.0 + margin, 1.0 - margin))

    def log_det(self, u: Tensor) -> Tensor:
        """``Σ_i log(h_i sech² u_i)`` per point: ``log |dx/du|``."""
        return log_sech2(u).sum(self._dims(u)) + self._log_half

    def energy(self, energy: EnergyFn) -> EnergyFn:
        """``E_u(u) = E(c + h tanh u) − log |dx/du|``."""

        def energy_u(u: Tensor) -> Tensor:
            return energy(self.to_box(u)) - self.log_det(u)

        return energy_u

    def base(self) -> LogisticBoxBase:
        """The uniform law on the box, in u."""
        return LogisticBoxBase(self.event_shape, device=self.centre.device, dtype=self.centre.dtype)

"""Couplings of a source batch with a data batch for flow matching: which ``x0`` is paired with which ``x1``.

- :class:`IndependentCoupling` — the batches as drawn: ``q(x0, x1) = q0(x0) q1(x1)`` (Lipman et al., 2023;
  Tong et al.'s I-CFM).
- :class:`ExactOTCoupling` — the minibatch optimal-transport plan for the squared Euclidean cost: the permutation
  ``π`` minimising ``Σ_i ‖x0_i − x1_π(i)‖²``, found exactly by the Hungarian/Jonker–Volgenant algorithm
  (``scipy.optimize.linear_sum_assignment``); Tong et al., 2024, "Improving and generalizing flow-based generative
  models with minibatch optimal transport" (OT-CFM); Pooladian et al., 2023, "Multisample flow matching".
- :class:`SinkhornCoupling` — the entropic plan ``argmin_P ⟨P, C⟩ − ε H(P)`` with uniform marginals (Cuturi, 2013,
  "Sinkhorn distances"), computed by log-domain Sinkhorn iterations; each ``x0_i`` is then paired with ``x1_j``,
  ``j ~ P(i, ·) / P(i, ·).sum()``. With ``ε = 2σ²`` and the Brownian-bridge path this is Tong et al.'s SB-CFM.

Each is called as ``coupling(x0, x1, generator=None) -> (x0, x1_paired)``; the source batch keeps its order.
Equations in ``docs/algorithms.md#flow-matching``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_gen.utils.config import RecordsInit

__all__ = [
    "COUPLINGS",
    "Coupling",
    "ExactOTCoupling",
    "IndependentCoupling",
    "SinkhornCoupling",
    "build_coupling",
    "exact_ot_assignment",
    "sinkhorn_log_plan",
    "squared_distances",
]


def _check_batches(x0: Tensor, x1: Tensor, same_size: bool) -> None:
    if x0.dim() < 2 or x1.dim() < 2 or x0.shape[1:] != x1.shape[1:]:
        raise ValueError(
            f"x0 and x1 must be batches (B, *data_shape) of the same data shape, got {tuple(x0.shape)} and "
            f"{tuple(x1.shape)}"
        )
    if same_size and x0.shape[0] != x1.shape[0]:
        raise ValueError(
            f"an exact OT assignment pairs equal batches; got {x0.shape[0]} source and {x1.shape[0]} data points "
            "(draw as many source points as data points)"
        )


def squared_distances(x0: Tensor, x1: Tensor) -> Tensor:
    """The cost matrix ``C_ij = ‖x0_i − x1_j‖²`` (float64) of flattened points."""
    a, b = x0.detach().flatten(1).double(), x1.detach().flatten(1).double()
    return (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2.0 * a @ b.T).clamp(min=0.0)


def exact_ot_assignment(x0: Tensor, x1: Tensor) -> Tensor:
    """The permutation ``π`` (int64, on ``x1``'s device) minimising ``Σ_i ‖x0_i − x1_π(i)‖²`` exactly."""
    from scipy.optimize import linear_sum_assignment

    _check_batches(x0, x1, same_size=True)
    cost = squared_distances(x0, x1).cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    perm = torch.empty(len(rows), dtype=torch.int64)
    perm[torch.from_numpy(rows)] = torch.from_numpy(cols).to(torch.int64)
    return perm.to(x1.device)


def sinkhorn_log_plan(cost: Tensor, reg: float, num_iters: int = 50, tol: float = 1e-2,
                      eps_scaling: float | None = 0.5, stage_iters: int = 5) -> Tensor:
    """``log P`` of the entropic OT plan between uniform marginals for ``cost`` (n, m), in log-domain.

    With potentials ``f, g`` and ``log P_ij = (f_i + g_j − C_ij)/ε``, alternate
    ``f_i = ε log a_i − ε LSE_j((g_j − C_ij)/ε)`` and ``g_j = ε log b_j − ε LSE_i((f_i − C_ij)/ε)``
    (stable for small ε, where the kernel ``exp(−C/ε)`` underflows). Small ε converges slowly from a cold start, so
    ε is annealed (Schmitzer, 2019, "Stabilized sparse scaling algorithms for entropy regularized transport
    problems"): ``stage_iters`` iterations at each of ``ε_k = max(C) · eps_scaling^k`` above ``reg``, the
    potentials carried over, then at most ``num_iters`` at ``reg`` until the row marginals are within ``tol``
    (L1) of ``a = 1/n`` (``eps_scaling=None``: no annealing). The last update is a ``g`` one, so the column
    marginals hold exactly.
    """
    if not (math.isfinite(reg) and reg > 0):
        raise ValueError(f"the entropic regularisation reg must be a positive number, got {reg}")
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters <= 0:
        raise ValueError(f"num_iters must be a positive integer, got {num_iters!r}")
    if eps_scaling is not None and not 0.0 < eps_scaling < 1.0:
        raise ValueError(f"eps_scaling must be in (0, 1) (or None: no annealing), got {eps_scaling}")
    c = cost.double()
    n, m = c.shape
    log_a, log_b = -math.log(n), -math.log(m)
    # scaled potentials u = f/ε, w = g/ε and the kernel K = −C/ε of the current ε: one LSE pass per half-sweep
    u = torch.zeros(n, dtype=c.dtype, device=c.device)
    w = torch.zeros(m, dtype=c.dtype, device=c.device)
    if eps_scaling is not None:
        eps = float(c.max())
        while eps > reg:
            k = -c / eps
            for _ in range(stage_iters):
                u = log_a - torch.logsumexp(k + w[None, :], dim=1)
                w = log_b - torch.logsumexp(k + u[:, None], dim=0)
            new = max(eps * eps_scaling, reg)
            u, w, eps = u * (eps / new), w * (eps / new), new
    k = -c / reg
    for i in range(num_iters):
        u = log_a - torch.logsumexp(k + w[None, :], dim=1)
        w = log_b - torch.logsumexp(k + u[:, None], dim=0)
        if (i + 1) % 10 == 0 and i + 1 < num_iters:
            log_p = k + u[:, None] + w[None, :]
            if float((log_p.exp().sum(1) - 1.0 / n).abs().sum()) < tol:
                return log_p
    return k + u[:, None] + w[None, :]


class Coupling(RecordsInit):
    """Interface: ``coupling(x0, x1, generator=None) -> (x0, x1')``, ``x1'`` the data points paired with ``x0``."""

    def __call__(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class IndependentCoupling(Coupling):
    """The batches as drawn (independent pairs)."""

    def __call__(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        _check_batches(x0, x1, same_size=True)
        return x0, x1

    def __repr__(self) -> str:
        return "IndependentCoupling()"


class ExactOTCoupling(Coupling):
    """Minibatch exact OT: ``x1`` reordered by :func:`exact_ot_assignment` (squared Euclidean cost)."""

    def __call__(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        return x0, x1[exact_ot_assignment(x0, x1)]

    def __repr__(self) -> str:
        return "ExactOTCoupling()"


class SinkhornCoupling(Coupling):
    """Minibatch entropic OT: pairs drawn from the Sinkhorn plan, row by row.

    Args:
        reg: the entropic regularisation ε, in units of the squared distance (SB-CFM: ``2σ²``).
        num_iters, tol: Sinkhorn iterations at ``reg`` at most, and the row-marginal tolerance that stops them
            early (after the ε-annealing of :func:`sinkhorn_log_plan`).
    """

    def __init__(self, reg: float = 0.02, num_iters: int = 50, tol: float = 1e-2) -> None:
        reg = float(reg)
        if not (math.isfinite(reg) and reg > 0):
            raise ValueError(f"reg (the entropic regularisation ε) must be a positive number, got {reg}")
        if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters <= 0:
            raise ValueError(f"num_iters must be a positive integer, got {num_iters!r}")
        self.reg, self.num_iters, self.tol = reg, num_iters, float(tol)

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The entropic plan ``P`` (n, m), float64, rows summing to ``1/n``."""
        _check_batches(x0, x1, same_size=False)
        return sinkhorn_log_plan(squared_distances(x0, x1), self.reg, self.num_iters, self.tol).exp()

    def __call__(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        _check_batches(x0, x1, same_size=False)
        log_p = sinkhorn_log_plan(squared_distances(x0, x1), self.reg, self.num_iters, self.tol)
        probs = torch.softmax(log_p, dim=1)  # P(i, ·) / P(i, ·).sum(), computed stably
        if generator is not None and generator.device != probs.device:
            probs = probs.to(generator.device)
        idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return x0, x1[idx.to(x1.device)]

    def __repr__(self) -> str:
        return f"SinkhornCoupling(reg={self.reg}, num_iters={self.num_iters})"


#: shorthand names of :func:`build_coupling`
COUPLINGS: tuple[str, ...] = ("independent", "ot", "sinkhorn")


def build_coupling(spec: Coupling | str, reg: float = 0.02) -> Coupling:
    """``spec`` itself if it is a coupling, else the named one: ``independent``, ``ot`` or ``sinkhorn``
    (``SinkhornCoupling(reg)``)."""
    if isinstance(spec, Coupling):
        return spec
    if spec == "independent":
        return IndependentCoupling()
    if spec == "ot":
        return ExactOTCoupling()
    if spec == "sinkhorn":
        return SinkhornCoupling(reg=reg)
    raise ValueError(
        f"unknown coupling {spec!r}; choose one of {list(COUPLINGS)} or give a lit_gen.flows.Coupling "
        "(class_path in YAML)"
    )

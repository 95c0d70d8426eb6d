"""Explicit Runge–Kutta ODE solvers in pure torch: fixed-step Euler, midpoint, Heun, RK4 and adaptive
Dormand–Prince 5(4); shared by the flow-matching models and the probability-flow samplers of diffusion models.

Each solver integrates ``dx/dt = f(t, x)`` from ``t0`` to ``t1`` (either direction) and returns an
:class:`ODESolution` with the end state and the number of evaluations of ``f`` (NFE). The state is a tensor or
a tuple of tensors (e.g. ``(x, log-density)`` for a continuous normalising flow); ``f`` takes the time as a Python
float and returns the same structure. An ``s``-stage explicit method with Butcher tableau ``(c, A, b)`` takes
the step ``x_{n+1} = x_n + h Σ_i b_i k_i`` with ``k_i = f(t_n + c_i h, x_n + h Σ_{j<i} a_ij k_j)``:

========  ==============================  ===========================  =====  =====
method    c                               A (rows)                     b      order
========  ==============================  ===========================  =====  =====
euler     0                               —                            1      1
midpoint  0, ½                            ½                            0, 1   2
heun      0, 1                            1                            ½, ½   2
rk4       0, ½, ½, 1                      ½; 0, ½; 0, 0, 1             ⅙, ⅓, ⅓, ⅙  4
========  ==============================  ===========================  =====  =====

``dopri5`` is the 7-stage, first-same-as-last pair of Dormand & Prince (1980), "A family of embedded Runge–Kutta
formulae", J. Comput. Appl. Math. 6(1); the 5th-order solution is propagated and the embedded 4th-order one gives
the local error estimate. Step-size control follows Hairer, Nørsett & Wanner (1993), "Solving Ordinary
Differential Equations I", §II.4: the error is measured in the weighted RMS norm
``‖e‖ = sqrt(mean((e / (atol + rtol · max(|x_n|, |x_{n+1}|)))²))`` over every element of the state (the whole
batch shares one step size), a step is accepted when ``‖e‖ ≤ 1``, and the next step is
``h · clip(safety · ‖e‖^{−1/5}, min_factor, max_factor)`` (no growth right after a rejection). The first step is
chosen by Hairer et al.'s starting-step algorithm unless given. Equations in
``docs/algorithms.md#ode-solvers-and-dpm-solver``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "ButcherTableau",
    "EULER",
    "MIDPOINT",
    "HEUN",
    "RK4",
    "DOPRI5",
    "FIXED_STEP_METHODS",
    "METHODS",
    "Method",
    "ODESolution",
    "State",
    "VectorField",
    "dopri5",
    "euler",
    "heun",
    "midpoint",
    "odeint",
    "rk4",
    "solve_fixed",
    "time_grid",
]

State = Tensor | tuple[Tensor, ...]
VectorField = Callable[[float, State], State]
Method = Literal["euler", "midpoint", "heun", "rk4", "dopri5"]


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit Runge–Kutta method: nodes ``c``, the strictly lower-triangular ``a`` (row
    ``i`` holds ``a_i0 .. a_i,i−1``), weights ``b``, optionally the embedded weights ``b_low`` of a lower-order
    solution (for the error estimate), and the order of ``b``."""

    name: str
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    b_low: tuple[float, ...] | None = None

    @property
    def stages(self) -> int:
        return len(self.b)


EULER = ButcherTableau("euler", (0.0,), ((),), (1.0,), 1)
MIDPOINT = ButcherTableau("midpoint", (0.0, 0.5), ((), (0.5,)), (0.0, 1.0), 2)
HEUN = ButcherTableau("heun", (0.0, 1.0), ((), (1.0,)), (0.5, 0.5), 2)
RK4 = ButcherTableau(
    "rk4", (0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6), 4
)
DOPRI5 = ButcherTableau(
    "dopri5",
    (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    5,
    (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
)

FIXED_STEP_METHODS: dict[str, ButcherTableau] = {"euler": EULER, "midpoint": MIDPOINT, "heun": HEUN, "rk4": RK4}
METHODS: tuple[str, ...] = (*FIXED_STEP_METHODS, "dopri5")


@dataclass
class ODESolution:
    """End state ``x`` (same structure as the initial state), evaluations of ``f`` (``nfe``), accepted steps
    (``steps``) and, for the adaptive solver, rejected steps (``rejected``)."""

    x: State
    nfe: int
    steps: int
    rejected: int = 0


# ------------------------------------------------------------------------------------------- state helpers
def _as_tuple(x: State) -> tuple[tuple[Tensor, ...], bool]:
    if isinstance(x, Tensor):
        return (x,), True
    if isinstance(x, (tuple, list)) and x and all(isinstance(v, Tensor) for v in x):
        return tuple(x), False
    raise TypeError(f"the ODE state must be a tensor or a non-empty tuple of tensors, got {type(x).__name__}")


def _wrap_field(f: VectorField, single: bool, size: int) -> Callable[[float, tuple[Tensor, ...]], tuple[Tensor, ...]]:
    def g(t: float, x: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        out = f(t, x[0] if single else x)
        parts, _ = _as_tuple(out)
        if len(parts) != size or any(p.shape != q.shape for p, q in zip(parts, x, strict=True)):
            raise ValueError(
                f"the vector field returned shapes {[tuple(p.shape) for p in parts]} for a state of shapes "
                f"{[tuple(q.shape) for q in x]}: f(t, x) must return dx/dt shaped like x"
            )
        return parts

    return g


def _combine(x: tuple[Tensor, ...], h: float, coefs: Sequence[float], ks: Sequence[tuple[Tensor, ...]]
             ) -> tuple[Tensor, ...]:
    """``x + h Σ_j coefs_j k_j`` component-wise (zero coefficients skipped)."""
    out = []
    for i, xi in enumerate(x):
        acc = xi
        for c, k in zip(coefs, ks, strict=False):
            if c != 0.0:
                acc = acc + (h * c) * k[i]
        out.append(acc)
    return tuple(out)


def _rk_step(g: Callable[[float, tuple[Tensor, ...]], tuple[Tensor, ...]], t: float, x: tuple[Tensor, ...],
             h: float, tab: ButcherTableau, k1: tuple[Tensor, ...] | None = None
             ) -> tuple[tuple[Tensor, ...], list[tuple[Tensor, ...]], int]:
    """One step of ``tab``; returns the new state, the stages and the evaluations spent (``k1`` reused if given)."""
    ks: list[tuple[Tensor, ...]] = []
    nfe = 0
    for i in range(tab.stages):
        if i == 0 and k1 is not None:
            ks.append(k1)
            continue
        xi = _combine(x, h, tab.a[i], ks) if i else x
        ks.append(g(t + tab.c[i] * h, xi))
        nfe += 1
    return _combine(x, h, tab.b, ks), ks, nfe


def _check_time(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def time_grid(t0: float, t1: float, num_steps: int) -> list[float]:
    """``num_steps + 1`` equally spaced times from ``t0`` to ``t1`` (both included)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    t0, t1 = _check_time("t0", t0), _check_time("t1", t1)
    return [t0 + (t1 - t0) * i / num_steps for i in range(num_steps)] + [t1]


# ------------------------------------------------------------------------------------------- fixed step
def solve_fixed(
    f: VectorField,
    x0: State,
    tableau: ButcherTableau,
    t0: float = 0.0,
    t1: float = 1.0,
    num_steps: int | None = None,
    grid: Sequence[float] | None = None,
) -> ODESolution:
    """Integrate with the explicit method ``tableau`` on ``grid`` (a monotone sequence of times), or on
    ``num_steps`` equal steps from ``t0`` to ``t1``. ``nfe = stages · steps``."""
    if grid is None:
        if num_steps is None:
            raise ValueError("give num_steps (equal steps from t0 to t1) or grid (the times to step through)")
        grid = time_grid(t0, t1, num_steps)
    elif num_steps is not None:
        raise ValueError("give either num_steps or grid, not both")
    times = [_check_time("grid time", s) for s in grid]
    if len(times) < 2:
        raise ValueError(f"grid needs at least two times (start and end), got {len(times)}")
    diffs = [b - a for a, b in zip(times, times[1:], strict=False)]
    if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        raise ValueError("grid must be strictly increasing or strictly decreasing")
    state, single = _as_tuple(x0)
    g = _wrap_field(f, single, len(state))
    nfe = 0
    for a, b in zip(times, times[1:], strict=False):
        state, _, spent = _rk_step(g, a, state, b - a, tableau)
        nfe += spent
    return ODESolution(x=state[0] if single else state, nfe=nfe, steps=len(times) - 1)


def euler(f: VectorField, x0: State, t0: float = 0.0, t1: float = 1.0, num_steps: int | None = None,
          grid: Sequence[float] | None = None) -> ODESolution:
    """Forward Euler, ``x_{n+1} = x_n + h f(t_n, x_n)`` (order 1, 1 NFE per step)."""
    return solve_fixed(f, x0, EULER, t0, t1, num_steps, grid)


def midpoint(f: VectorField, x0: State, t0: float = 0.0, t1: float = 1.0, num_steps: int | None = None,
             grid: Sequence[float] | None = None) -> ODESolution:
    """Explicit midpoint, ``x_{n+1} = x_n + h f(t_n + h/2, x_n + (h/2) f(t_n, x_n))`` (order 2, 2 NFE per step)."""
    return solve_fixed(f, x0, MIDPOINT, t0, t1, num_steps, grid)


def heun(f: VectorField, x0: State, t0: float = 0.0, t1: float = 1.0, num_steps: int | None = None,
         grid: Sequence[float] | None = None) -> ODESolution:
    """Heun's method (explicit trapezoid), ``x_{n+1} = x_n + (h/2)(k_1 + k_2)`` with ``k_2 = f(t_n + h, x_n + h k_1)``
    (order 2, 2 NFE per step)."""
    return solve_fixed(f, x0, HEUN, t0, t1, num_steps, grid)


def rk4(f: VectorField, x0: State, t0: float = 0.0, t1: float = 1.0, num_steps: int | None = None,
        grid: Sequence[float] | None = None) -> ODESolution:
    """Classical 4th-order Runge–Kutta, ``x_{n+1} = x_n + (h/6)(k_1 + 2k_2 + 2k_3 + k_4)`` (4 NFE per step)."""
    return solve_fixed(f, x0, RK4, t0, t1, num_steps, grid)


# ------------------------------------------------------------------------------------------- adaptive
def _rms(parts: Sequence[Tensor]) -> float:
    total = sum(float(p.double().square().sum()) for p in parts)
    count = sum(p.numel() for p in parts)
    return math.sqrt(total / max(count, 1))


def _initial_step(g: Callable[[float, tuple[Tensor, ...]], tuple[Tensor, ...]], t0: float, x0: tuple[Tensor, ...],
                  f0: tuple[Tensor, ...], direction: float, span: float, rtol: float, atol: float) -> tuple[float, int]:
    """Hairer, Nørsett & Wanner (1993), §II.4 starting step size for a method of order 5 (1 extra NFE)."""
    scale = [atol + rtol * x.abs() for x in x0]
    d0 = _rms([x / s for x, s in zip(x0, scale, strict=True)])
    d1 = _rms([v / s for v, s in zip(f0, scale, strict=True)])
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    x1 = _combine(x0, direction * h0, (1.0,), (f0,))
    f1 = g(t0 + direction * h0, x1)
    d2 = _rms([(a - b) / s for a, b, s in zip(f1, f0, scale, strict=True)]) / h0
    big = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 else (0.01 / big) ** (1.0 / 5.0)
    return min(100.0 * h0, h1, span), 1


def dopri5(
    f: VectorField,
    x0: State,
    t0: float = 0.0,
    t1: float = 1.0,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    first_step: float | None = None,
    max_steps: int = 10_000,
    safety: float = 0.9,
    min_factor: float = 0.2,
    max_factor: float = 10.0,
) -> ODESolution:
    """Adaptive Dormand–Prince 5(4) (first same as last: 6 new NFE per step, accepted or rejected).

    Args:
        f, x0, t0, t1: the problem ``dx/dt = f(t, x)``, ``x(t0) = x0``; ``t1 < t0`` integrates backwards.
        rtol, atol: relative and absolute tolerance of the local error (weighted RMS norm, see the module).
        first_step: size of the first trial step (default: Hairer et al.'s estimate, one extra NFE).
        max_steps: accepted plus rejected steps allowed before giving up with a ``RuntimeError``.
        safety, min_factor, max_factor: step-size controller ``h ← h · clip(safety ‖e‖^{−1/5}, min, max)``.
    """
    t0, t1 = _check_time("t0", t0), _check_time("t1", t1)
    if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
        raise ValueError(f"need rtol >= 0, atol >= 0 and not both zero; got rtol={rtol}, atol={atol}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps <= 0:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not (0 < safety <= 1 and 0 < min_factor < 1 < max_factor):
        raise ValueError(
            f"need 0 < safety <= 1 and 0 < min_factor < 1 < max_factor; got {safety}, {min_factor}, {max_factor}"
        )
    state, single = _as_tuple(x0)
    if t0 == t1:
        return ODESolution(x=x0, nfe=0, steps=0)
    g = _wrap_field(f, single, len(state))
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    k1 = g(t0, state)
    nfe = 1
    if first_step is None:
        h, extra = _initial_step(g, t0, state, k1, direction, span, rtol, atol)
        nfe += extra
    else:
        if not first_step > 0:
            raise ValueError(f"first_step must be positive (its sign follows t1 - t0), got {first_step}")
        h = min(float(first_step), span)
    tab = DOPRI5
    err_w = [b - bl for b, bl in zip(tab.b, tab.b_low, strict=True)]  # type: ignore[arg-type]
    t, steps, rejected, just_rejected = t0, 0, 0, False
    while direction * (t1 - t) > 0:
        if steps + rejected >= max_steps:
            raise RuntimeError(
                f"dopri5 took {max_steps} steps and reached t={t:.6g} of [{t0:.6g}, {t1:.6g}]: raise max_steps, "
                "loosen rtol/atol, or check the vector field for a blow-up"
            )
        h = min(h, abs(t1 - t))
        if h <= 1e-12 * max(1.0, abs(t)):
            raise RuntimeError(
                f"dopri5 step size fell to {h:.3g} at t={t:.6g}: the vector field is non-finite or too stiff there "
                "(check the model; a fixed-step method with enough steps also works)"
            )
        signed = direction * h
        x_new, ks, spent = _rk_step(g, t, state, signed, tab, k1)
        nfe += spent
        err = [sum((signed * w) * k[i] for w, k in zip(err_w, ks, strict=True) if w != 0.0)
               for i in range(len(state))]
        scale = [atol + rtol * torch.maximum(a.abs(), b.abs()) for a, b in zip(state, x_new, strict=True)]
        norm = _rms([e / s for e, s in zip(err, scale, strict=True)])
        if not math.isfinite(norm):
            h *= min_factor
            rejected += 1
            just_rejected = True
            continue
        if norm <= 1.0:
            t = t1 if abs(t1 - (t + signed)) <= 1e-12 * max(1.0, abs(t1)) else t + signed
            state, k1 = x_new, ks[-1]  # first same as last: stage 7 is f at the new point
            steps += 1
            factor = max_factor if norm == 0.0 else min(max_factor, max(min_factor, safety * norm ** -0.2))
            h *= min(factor, 1.0) if just_rejected else factor
            just_rejected = False
        else:
            h *= max(min_factor, safety * norm ** -0.2)
            rejected += 1
            just_rejected = True
    return ODESolution(x=state[0] if single else state, nfe=nfe, steps=steps, rejected=rejected)


def odeint(
    f: VectorField,
    x0: State,
    t0: float = 0.0,
    t1: float = 1.0,
    method: Method = "rk4",
    num_steps: int | None = None,
    grid: Sequence[float] | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    **adaptive_options: float | int | None,
) -> ODESolution:
    """Integrate ``dx/dt = f(t, x)`` with ``method``: a fixed-step one (``euler``, ``midpoint``, ``heun``,
    ``rk4``: ``num_steps`` equal steps or a ``grid``) or ``dopri5`` (``rtol``, ``atol`` and its other options;
    ``num_steps`` and ``grid`` do not apply)."""
    if method in FIXED_STEP_METHODS:
        if adaptive_options:
            raise ValueError(f"options {sorted(adaptive_options)} apply to dopri5 only, not to {method!r}")
        return solve_fixed(f, x0, FIXED_STEP_METHODS[method], t0, t1, num_steps, grid)
    if method == "dopri5":
        if grid is not None:
            raise ValueError("dopri5 chooses its own steps; give t0 and t1 instead of a grid")
        return dopri5(f, x0, t0, t1, rtol=rtol, atol=atol, **adaptive_options)  # type: ignore[arg-type]
    raise ValueError(f"unknown ODE method {method!r}; choose one of {list(METHODS)}")

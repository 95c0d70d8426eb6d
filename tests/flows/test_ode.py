"""The ODE solvers of ``lit_gen.diffusion.ode`` on linear systems ``dx/dt = A x`` (solution ``expm(tA) x0``).

Dormand–Prince meets its tolerance (the global error stays within a small multiple of ``atol + rtol |x|`` for
tolerances from 1e-3 to 1e-9) and spends more evaluations for tighter ones; the fixed-step methods converge at
their order; NFE counts, tuple states, backward integration and bad arguments are checked too.
"""

from __future__ import annotations

import math

import pytest
import torch

from lit_gen.diffusion.ode import DOPRI5, FIXED_STEP_METHODS, dopri5, odeint, solve_fixed, time_grid

A = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=torch.float64)  # a damped rotation


def _problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x0, x0 @ torch.linalg.matrix_exp(3.0 * A).T


def _field(t: float, x: torch.Tensor) -> torch.Tensor:
    return x @ A.T


def test_dormand_prince_tableau_is_consistent() -> None:
    for row, c in zip(DOPRI5.a, DOPRI5.c, strict=True):
        assert sum(row) == pytest.approx(c, abs=1e-14)  # row sums are the nodes
    assert sum(DOPRI5.b) == pytest.approx(1.0) and sum(DOPRI5.b_low) == pytest.approx(1.0)  # type: ignore[arg-type]
    assert DOPRI5.a[-1] == DOPRI5.b[:-1]  # first same as last


@pytest.mark.parametrize("tol", [1e-3, 1e-5, 1e-7, 1e-9])
def test_dopri5_meets_its_tolerance_on_a_linear_ode(tol: float) -> None:
    x0, exact = _problem()
    sol = dopri5(_field, x0, 0.0, 3.0, rtol=tol, atol=tol)
    scale = tol + tol * exact.abs()
    assert float(((sol.x - exact).abs() / scale).max()) < 10.0
    assert sol.nfe == 2 + 6 * (sol.steps + sol.rejected)  # f(t0), the starting-step probe, 6 per step


def test_dopri5_tighter_tolerance_costs_more_and_runs_backwards() -> None:
    x0, exact = _problem(1)
    nfes = [dopri5(_field, x0, 0.0, 3.0, rtol=tol, atol=tol).nfe for tol in (1e-3, 1e-6, 1e-9)]
    assert nfes[0] < nfes[1] < nfes[2]
    back = dopri5(_field, exact, 3.0, 0.0, rtol=1e-9, atol=1e-9)
    assert float((back.x - x0).abs().max()) < 1e-6
    # with a given first step there is no starting-step probe
    assert dopri5(_field, x0, 0.0, 3.0, first_step=0.1).nfe % 6 == 1


def test_dopri5_on_a_tuple_state() -> None:
    x0, exact = _problem(2)

    def f(t: float, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = state
        return x @ A.T, torch.full((x.shape[0],), math.cos(t), dtype=x.dtype)  # ℓ(t) = sin t

    sol = dopri5(f, (x0, torch.zeros(8, dtype=torch.float64)), 0.0, 3.0, rtol=1e-8, atol=1e-8)
    x, ell = sol.x
    assert float((x - exact).abs().max()) < 1e-6 and float((ell - math.sin(3.0)).abs().max()) < 1e-6


@pytest.mark.parametrize("method", sorted(FIXED_STEP_METHODS))
def test_fixed_step_methods_converge_at_their_order(method: str) -> None:
    x0, exact = _problem(3)
    tab = FIXED_STEP_METHODS[method]
    errs = []
    for n in (40, 80):
        sol = odeint(_field, x0, 0.0, 3.0, method, num_steps=n)  # type: ignore[arg-type]
        assert sol.nfe == tab.stages * n and sol.steps == n
        errs.append(float((sol.x - exact).abs().max()))
    assert math.log2(errs[0] / errs[1]) == pytest.approx(tab.order, abs=0.3)
    # an explicit grid (here non-uniform, decreasing) works as well: back from t = 3 to 0
    grid = [3.0 * (1 - (i / 80) ** 1.5) for i in range(81)]
    back = solve_fixed(_field, exact, tab, grid=grid)
    assert float((back.x - x0).abs().max()) < {1: 1.0, 2: 0.05, 4: 1e-4}[tab.order]


def test_bad_arguments_are_named() -> None:
    x0, _ = _problem()
    with pytest.raises(ValueError, match="unknown ODE method"):
        odeint(_field, x0, method="rk45")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_steps"):
        odeint(_field, x0, method="euler")
    with pytest.raises(ValueError, match="either num_steps or grid"):
        odeint(_field, x0, method="euler", num_steps=3, grid=[0.0, 1.0])
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        odeint(_field, x0, method="rk4", grid=[0.0, 0.5, 0.4, 1.0])
    with pytest.raises(ValueError, match="apply to dopri5 only"):
        odeint(_field, x0, method="rk4", num_steps=2, max_steps=3)
    with pytest.raises(ValueError, match="rtol"):
        dopri5(_field, x0, rtol=0.0, atol=0.0)
    with pytest.raises(ValueError, match="shaped like x"):
        odeint(lambda t, x: x[:, :1], x0, method="euler", num_steps=2)
    with pytest.raises(TypeError, match="tensor or a non-empty tuple"):
        odeint(_field, [1.0, 2.0], method="euler", num_steps=2)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="raise max_steps"):
        dopri5(_field, x0, 0.0, 100.0, rtol=1e-10, atol=1e-10, max_steps=5)
    with pytest.raises(ValueError, match="positive integer"):
        time_grid(0.0, 1.0, 0)

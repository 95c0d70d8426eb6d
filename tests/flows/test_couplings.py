"""Couplings: the exact minibatch OT assignment equals a brute-force search over all permutations (batches of
2 to 6 points, several data shapes); the Sinkhorn plan has the prescribed marginals, tends to the OT plan as the
regularisation vanishes and to the independent one as it grows; pairs are reproducible from a generator."""

from __future__ import annotations

import itertools

import pytest
import torch

from lit_gen.flows import (
    ExactOTCoupling,
    IndependentCoupling,
    SinkhornCoupling,
    build_coupling,
    exact_ot_assignment,
    squared_distances,
)


def _brute_force_cost(x0: torch.Tensor, x1: torch.Tensor) -> float:
    cost = squared_distances(x0, x1)
    n = len(x0)
    return min(float(sum(cost[i, p[i]] for i in range(n))) for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("shape", [(2,), (3,), (1, 2, 2)], ids=["2d", "3d", "image"])
def test_exact_ot_equals_brute_force_over_permutations(n: int, shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(10 * n + len(shape))
    for _ in range(5):
        x0 = torch.randn(n, *shape, generator=g)
        x1 = torch.randn(n, *shape, generator=g) * 2.0 + 1.0
        perm = exact_ot_assignment(x0, x1)
        assert sorted(perm.tolist()) == list(range(n))  # a permutation
        cost = squared_distances(x0, x1)
        found = float(cost[torch.arange(n), perm].sum())
        assert found == pytest.approx(_brute_force_cost(x0, x1), rel=1e-10, abs=1e-10)
        a, b = ExactOTCoupling()(x0, x1)
        assert torch.equal(a, x0) and torch.equal(b, x1[perm])


def test_independent_coupling_keeps_the_batches_and_checks_shapes() -> None:
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    a, b = IndependentCoupling()(x0, x1)
    assert a is x0 and b is x1
    with pytest.raises(ValueError, match="same data shape"):
        IndependentCoupling()(x0, torch.randn(4, 3))
    with pytest.raises(ValueError, match="as many source points"):
        ExactOTCoupling()(x0, torch.randn(5, 2))


def test_sinkhorn_plan_marginals_and_limits() -> None:
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(32, 2, generator=g), torch.randn(24, 2, generator=g) + 1.0
    plan = SinkhornCoupling(reg=0.5, num_iters=500, tol=1e-10).plan(x0, x1)
    assert torch.allclose(plan.sum(0), torch.full((24,), 1 / 24, dtype=plan.dtype), atol=1e-9)  # exact (last)
    assert torch.allclose(plan.sum(1), torch.full((32,), 1 / 32, dtype=plan.dtype), atol=1e-8)
    # large ε: the independent plan 1/(n m)
    wide = SinkhornCoupling(reg=1e4).plan(x0, x1)
    assert torch.allclose(wide, torch.full_like(wide, 1 / (32 * 24)), rtol=1e-2)
    # small ε on equal batches: the transport cost approaches the exact OT cost
    y0, y1 = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)
    cost = squared_distances(y0, y1)
    ot = float(cost[torch.arange(16), exact_ot_assignment(y0, y1)].sum()) / 16
    sharp = SinkhornCoupling(reg=0.01, num_iters=2000, tol=1e-9).plan(y0, y1)
    assert float((sharp * cost).sum()) == pytest.approx(ot, rel=0.02)


def test_sinkhorn_pairs_follow_the_plan_and_the_generator() -> None:
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    coupling = SinkhornCoupling(reg=0.05)
    a, b = coupling(x0, x1, torch.Generator().manual_seed(5))
    _, c = coupling(x0, x1, torch.Generator().manual_seed(5))
    assert torch.equal(a, x0) and torch.equal(b, c)
    # paired points are much closer than random pairs
    assert float((b - x0).square().sum(1).mean()) < 0.5 * float((x1 - x0).square().sum(1).mean())
    with pytest.raises(ValueError, match="positive number"):
        SinkhornCoupling(reg=0.0)


def test_build_coupling_names() -> None:
    assert isinstance(build_coupling("independent"), IndependentCoupling)
    assert isinstance(build_coupling("ot"), ExactOTCoupling)
    assert build_coupling("sinkhorn", reg=0.3).reg == 0.3  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="choose one of"):
        build_coupling("emd")

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.mixed.knapsack import (
    convex_front,
    hull_steps,
    pareto_front,
    solve_brute_force,
    solve_lagrangian,
    solve_milp,
)


def random_problem(rng, n, k, mask=True):
    bits = np.sort(rng.choice(np.arange(1, 9), k, replace=False))
    sizes = rng.integers(1, 60, n)
    cost = sizes[:, None] * bits[None, :] + rng.integers(0, 40, (n, 1))
    # Sensitivity-like losses: roughly 4^-b times a per-unit weight, plus noise.
    loss = 4.0 ** (-bits[None, :]) * rng.random((n, 1)) * sizes[:, None] + 1e-3 * rng.random((n, k))
    allowed = rng.random((n, k)) > 0.25 if mask else np.ones((n, k), bool)
    allowed[np.arange(n), rng.integers(0, k, n)] = True
    lo = np.where(allowed, cost, np.inf).min(1).sum()
    hi = np.where(allowed, cost, -np.inf).max(1).sum()
    return loss, cost, allowed, lo, hi


def test_milp_is_optimal_against_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n, k = int(rng.integers(1, 7)), int(rng.integers(2, 5))
        loss, cost, allowed, lo, hi = random_problem(rng, n, k)
        limit = float(rng.uniform(lo, hi))
        best = solve_brute_force(loss, cost, limit, allowed)
        sol = solve_milp(loss, cost, limit, allowed)
        assert sol.optimal
        assert sol.cost <= limit
        assert sol.loss == pytest.approx(best.loss, rel=1e-9, abs=1e-12)
        rows = np.arange(n)
        assert allowed[rows, sol.choice].all()


def test_milp_with_extra_constraint_matches_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n, k = int(rng.integers(2, 6)), 4
        loss, cost, allowed, lo, hi = random_problem(rng, n, k, mask=False)
        bops = rng.integers(1, 100, (n, 1)) * np.arange(1, k + 1)[None, :] ** 2
        lim2 = float(rng.uniform(bops[:, 0].sum(), bops[:, -1].sum()))
        limit = float(rng.uniform(lo, hi))
        extra = ((bops, lim2),)
        try:
            best = solve_brute_force(loss, cost, limit, allowed, extra)
        except SpecError:
            with pytest.raises(SpecError):
                solve_milp(loss, cost, limit, allowed, extra)
            continue
        sol = solve_milp(loss, cost, limit, allowed, extra)
        assert sol.loss == pytest.approx(best.loss, rel=1e-9, abs=1e-12)
        assert sol.extra_costs[0] <= lim2


def test_lagrangian_feasible_bounded_and_near_optimal():
    rng = np.random.default_rng(3)
    gaps = []
    for _ in range(80):
        n, k = int(rng.integers(1, 7)), int(rng.integers(2, 5))
        loss, cost, allowed, lo, hi = random_problem(rng, n, k)
        limit = float(rng.uniform(lo, hi))
        best = solve_brute_force(loss, cost, limit, allowed)
        sol = solve_lagrangian(loss, cost, limit, allowed)
        assert sol.cost <= limit + 1e-9
        assert allowed[np.arange(n), sol.choice].all()
        # The LP bound is a true lower bound; the heuristic never beats the optimum.
        assert sol.bound <= best.loss + 1e-12
        assert sol.loss >= best.loss - 1e-12
        if sol.optimal:
            assert sol.loss == pytest.approx(best.loss, rel=1e-9, abs=1e-12)
        gaps.append(sol.loss - best.loss)
    assert np.mean(np.array(gaps) <= 1e-12) > 0.5  # optimal on most small instances


def test_hull_vertices_are_exact_optima():
    # At the cost of each convex-front vertex, the Lagrangian solution is exactly optimal.
    rng = np.random.default_rng(4)
    loss, cost, allowed, lo, hi = random_problem(rng, 5, 4)
    hull = hull_steps(loss, cost, allowed)
    c, lo_front = convex_front(hull)
    assert np.all(np.diff(c) > 0) and np.all(np.diff(lo_front) < 0)
    for ci, li in zip(c, lo_front, strict=True):
        best = solve_brute_force(loss, cost, ci, allowed)
        assert li == pytest.approx(best.loss, rel=1e-9, abs=1e-12)


def test_large_problem_lagrangian_gap_is_tiny():
    rng = np.random.default_rng(5)
    n = 800
    bits = np.array([2, 3, 4, 5, 6, 8])
    sizes = rng.integers(50, 500, n)
    cost = sizes[:, None] * bits + 32
    loss = rng.random((n, 1)) * sizes[:, None] * 4.0 ** (-bits)
    limit = float(cost[:, 2].sum())
    lag = solve_lagrangian(loss, cost, limit)
    exact = solve_milp(loss, cost, limit)
    assert lag.cost <= limit and exact.cost <= limit
    assert exact.loss <= lag.loss
    assert (lag.loss - exact.loss) <= 1e-4 * exact.loss
    assert lag.bound <= exact.loss * (1 + 1e-9)


def test_pareto_front_is_monotone():
    rng = np.random.default_rng(6)
    loss, cost, allowed, lo, hi = random_problem(rng, 6, 4)
    for solver in ("milp", "lagrangian"):
        pts = pareto_front(loss, cost, allowed, n_points=12, solver=solver)
        assert len(pts) >= 2
        pairs = zip(pts[:-1], pts[1:], strict=True)
        assert all(b.cost >= a.cost - 1e-9 and b.loss < a.loss for a, b in pairs)


def test_infeasible_and_bad_inputs():
    loss = np.ones((2, 2))
    cost = np.array([[10, 20], [10, 20]])
    with pytest.raises(SpecError, match="below the smallest"):
        solve_milp(loss, cost, 19)
    with pytest.raises(SpecError, match="below the smallest"):
        solve_lagrangian(loss, cost, 19)
    with pytest.raises(SpecError):
        solve_milp(np.ones((2, 3)), cost, 100)
    with pytest.raises(SpecError, match="no allowed option"):
        solve_milp(loss, cost, 100, np.array([[True, True], [False, False]]))
    with pytest.raises(SpecError):
        solve_lagrangian(np.array([[np.nan, 1.0]]), np.array([[1, 2]]), 10)


def test_hull_in_blocks_of_units_is_the_same_hull(monkeypatch):
    """The vertex test runs in blocks of units (bounded memory): any block size, same hull."""
    from nnshare.mixed import lagrangian

    rng = np.random.default_rng(2)
    loss = np.sort(rng.random((37, 5)), axis=1)[:, ::-1].copy()
    cost = np.sort(rng.integers(1, 50, (37, 5)), axis=1).astype(float)
    allowed = rng.random((37, 5)) > 0.2
    allowed[:, 0] = True
    whole = hull_steps(loss, cost, allowed)
    monkeypatch.setattr(lagrangian, "_HULL_BLOCK", 5 * 5 * 4)  # 4 units per block
    part = hull_steps(loss, cost, allowed)
    for f in ("start", "unit", "src", "dst", "dcost", "gain"):
        assert np.array_equal(getattr(whole, f), getattr(part, f)), f
    assert (whole.start_loss, whole.start_cost) == (part.start_loss, part.start_cost)


def test_channel_errors_in_blocks_of_rows(monkeypatch):
    """Per-channel errors are computed in blocks of rows: the same table for any block size."""
    from nnshare.format.spec import QuantSpec
    from nnshare.mixed import tensors

    w = np.random.default_rng(1).normal(size=(23, 9)).astype(np.float32)
    base = QuantSpec(granularity="channel", symmetric=True)
    whole = tensors.channel_errors(w, base, (2, 4))
    monkeypatch.setattr(tensors, "_BLOCK", 20)  # 2 rows per block
    np.testing.assert_array_equal(tensors.channel_errors(w, base, (2, 4)), whole)

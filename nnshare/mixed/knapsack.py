"""Multiple-choice knapsack solvers: pick one option per unit (a bit width per tensor or per channel)
minimising the summed predicted loss subject to linear budgets.

Arrays are ``(N, K)``: N units, K options (candidate bit widths). ``loss[i, k]`` is the predicted
loss increase of unit i at option k, ``cost[i, k]`` its size in bits, ``allowed[i, k]`` False for
options outside a unit's floor/ceiling (checks and :class:`Solution` in :mod:`.problem`). Solvers:

- :func:`solve_milp`: exact, a 0/1 integer program solved by HiGHS (``scipy.optimize.milp``);
  any number of extra linear constraints (BOPs, latency).
- :func:`solve_lagrangian` (in :mod:`.lagrangian`): the Lagrangian sweep over each unit's lower
  convex hull of (cost, loss). Near-optimal (the gap is at most one unit's step, reported as
  ``bound``), O(N K log N K): for problems too large for the MILP.
- :func:`solve_brute_force`: enumeration, for tests on tiny instances.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys

import numpy as np

from ..format.errors import SpecError
from .lagrangian import Hull, convex_front, hull_steps, solve_from_hull, solve_lagrangian
from .problem import Solution, check_problem, choice_totals, infeasible, min_cost_choice

__all__ = [
    "MILP_MAX_VARIABLES",
    "Hull",
    "Solution",
    "check_problem",
    "choose_solver",
    "convex_front",
    "hull_steps",
    "min_cost_choice",
    "pareto_front",
    "solve_brute_force",
    "solve_from_hull",
    "solve_lagrangian",
    "solve_milp",
]


# ---------------------------------------------------------------- exact: MILP (HiGHS)


@contextlib.contextmanager
def _quiet_fd1():
    """Silence file descriptor 1 while HiGHS runs: some builds print a stray debug line
    ("HighsMipSolverData::transformNewIntegerFeasibleSolution") from C++ whatever the options."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def solve_milp(
    loss: np.ndarray,
    cost: np.ndarray,
    limit: float | None,
    allowed: np.ndarray | None = None,
    extra: tuple[tuple[np.ndarray, float], ...] = (),
    time_limit: float = 60.0,
) -> Solution:
    """Exact minimum of sum loss s.t. sum cost <= limit (and each extra ``(cost_i, limit_i)``).

    ``limit`` None means no size constraint (only ``extra``). Raises SpecError when infeasible.
    If HiGHS stops at ``time_limit`` seconds with a feasible point, ``optimal`` is False.
    """
    from scipy.optimize import LinearConstraint, milp
    from scipy.sparse import csr_matrix

    loss, cost, allowed = check_problem(loss, cost, allowed)
    n, k = loss.shape
    rows, cols = np.nonzero(allowed)
    nv = rows.size
    # Normalise the objective to O(1) so HiGHS tolerances do not swallow small differences.
    lmin = np.where(allowed, loss, np.inf).min(axis=1)
    obj = loss[rows, cols] - lmin[rows]
    scale = float(obj.max()) if nv and obj.max() > 0 else 1.0
    obj = obj / scale
    cons = [LinearConstraint(csr_matrix((np.ones(nv), (rows, np.arange(nv))), shape=(n, nv)), 1, 1)]
    limits = []
    mats = []
    if limit is not None:
        mats.append(cost)
        limits.append(float(limit))
    for m, lim in extra:
        m = np.asarray(m, np.float64)
        if m.shape != loss.shape:
            raise SpecError(f"extra cost table shape {m.shape} != {loss.shape}")
        mats.append(m)
        limits.append(float(lim))
    floor_choice = min_cost_choice(loss, cost, allowed)
    for m, lim in zip(mats, limits, strict=True):
        mm = np.where(allowed, m, np.inf).min(axis=1).sum()
        if mm > lim * (1 + 1e-12) + 1e-9:
            raise infeasible(lim, mm)
        cons.append(LinearConstraint(m[rows, cols][None, :], -np.inf, lim))
    with _quiet_fd1():
        res = milp(
            obj,
            integrality=np.ones(nv),
            bounds=(0, 1),
            constraints=cons,
            options={"time_limit": float(time_limit), "mip_rel_gap": 1e-9, "disp": False},
        )
    if res.x is None:
        if res.status == 2:
            raise SpecError("no allocation satisfies every budget at once (infeasible)")
        raise SpecError(f"the MILP solver found no solution: {res.message}")
    x = np.zeros((n, k))
    x[rows, cols] = res.x
    choice = np.where(allowed, x, -1.0).argmax(axis=1)
    # Guard against tolerance drift: the rounded choice must satisfy every limit exactly.
    for m, lim in zip(mats, limits, strict=True):
        if m[np.arange(n), choice].sum() > lim + 1e-6 * max(1.0, abs(lim)):
            choice = floor_choice  # cannot happen with a 0/1 solution; stay safe anyway
            break
    total_loss, total_cost = choice_totals(loss, cost, choice)
    optimal = res.status == 0
    bound = total_loss
    if not optimal and getattr(res, "mip_dual_bound", None) is not None:
        bound = float(res.mip_dual_bound) * scale + float(lmin.sum())
    extra_costs = tuple(float(np.asarray(m)[np.arange(n), choice].sum()) for m, _ in extra)
    return Solution(choice, total_loss, total_cost, optimal, bound, "milp", extra_costs)




def solve_brute_force(
    loss: np.ndarray,
    cost: np.ndarray,
    limit: float | None,
    allowed: np.ndarray | None = None,
    extra: tuple[tuple[np.ndarray, float], ...] = (),
) -> Solution:
    """Enumerate every combination (at most 2e5); ties go to the lower cost."""
    loss, cost, allowed = check_problem(loss, cost, allowed)
    n, k = loss.shape
    opts = [np.flatnonzero(allowed[i]) for i in range(n)]
    if np.prod([len(o) for o in opts], dtype=np.float64) > 2e5:
        raise SpecError("too many combinations for brute force")
    rows = np.arange(n)
    best = None
    for combo in itertools.product(*opts):
        ch = np.array(combo)
        c = cost[rows, ch].sum()
        if limit is not None and c > limit + 1e-9:
            continue
        if any(np.asarray(m)[rows, ch].sum() > lim + 1e-9 for m, lim in extra):
            continue
        lo = loss[rows, ch].sum()
        if best is None or lo < best[0] - 1e-12 or (abs(lo - best[0]) <= 1e-12 and c < best[1]):
            best = (lo, c, ch)
    if best is None:
        raise SpecError("no allocation satisfies every budget at once (infeasible)")
    return Solution(best[2], float(best[0]), float(best[1]), True, float(best[0]), "brute")


# ---------------------------------------------------------------- Pareto front


def pareto_front(
    loss: np.ndarray,
    cost: np.ndarray,
    allowed: np.ndarray | None = None,
    limits: np.ndarray | None = None,
    n_points: int = 25,
    solver: str = "auto",
    time_limit: float = 20.0,
) -> list[Solution]:
    """Optimal allocations at ``limits`` (default: ``n_points`` spaced from the smallest to the
    largest useful size); dominated points (more bits, no less loss) are dropped."""
    loss, cost, allowed = check_problem(loss, cost, allowed)
    hull = hull_steps(loss, cost, allowed)
    if limits is None:
        top = hull.start_cost + float(hull.dcost.sum())
        limits = np.linspace(hull.start_cost, top, n_points)
    use_milp = choose_solver(loss.size, solver) == "milp"
    out: list[Solution] = []
    for lim in np.asarray(limits, np.float64):
        if use_milp:
            sol = solve_milp(loss, cost, float(lim), allowed, time_limit=time_limit)
        else:
            sol = solve_from_hull(loss, cost, hull, float(lim))
        if out and sol.loss >= out[-1].loss - 1e-15 * max(1.0, abs(out[-1].loss)):
            continue
        out.append(sol)
    return out


MILP_MAX_VARIABLES = 40_000


def choose_solver(n_variables: int, solver: str) -> str:
    """``"auto"`` picks the exact MILP up to ``MILP_MAX_VARIABLES`` options, else Lagrangian."""
    if solver not in ("auto", "milp", "lagrangian"):
        raise SpecError(f"solver must be 'auto', 'milp' or 'lagrangian', got {solver!r}")
    if solver == "auto":
        return "milp" if n_variables <= MILP_MAX_VARIABLES else "lagrangian"
    return solver

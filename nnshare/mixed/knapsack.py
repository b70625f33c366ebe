"""Multiple-choice knapsack: pick one option per unit (a bit width per tensor or per channel)
minimising the summed predicted loss subject to linear budgets.

Arrays are ``(N, K)``: N units, K options (candidate bit widths). ``loss[i, k]`` is the predicted
loss increase of unit i at option k, ``cost[i, k]`` its size in bits, ``allowed[i, k]`` False for
options outside a unit's floor/ceiling. Solvers:

- :func:`solve_milp`: exact, a 0/1 integer program solved by HiGHS (``scipy.optimize.milp``);
  any number of extra linear constraints (BOPs, latency).
- :func:`solve_lagrangian`: the Lagrangian sweep. Each unit's options are reduced to the lower
  convex hull of (cost, loss); hull steps sorted by loss saved per bit give every point of the
  convex front at once; a budget between two hull points is filled greedily. Near-optimal (the
  gap is at most one unit's step, reported as ``bound``), O(N K log N K): for problems too large
  for the MILP.
- :func:`solve_brute_force`: enumeration, for tests on tiny instances.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError


@dataclass(frozen=True, eq=False)
class Solution:
    """One allocation: ``choice[i]`` is the option index of unit i.

    ``loss`` and ``cost`` are the sums over units (cost in bits); ``bound`` is a proven lower
    bound on the optimal loss at this budget (equal to ``loss`` when ``optimal``).
    """

    choice: np.ndarray
    loss: float
    cost: float
    optimal: bool
    bound: float
    solver: str
    extra_costs: tuple[float, ...] = ()


def check_problem(
    loss: np.ndarray, cost: np.ndarray, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes and values; return float64 loss/cost and a bool mask."""
    loss = np.asarray(loss, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if loss.ndim != 2 or loss.shape != cost.shape:
        raise SpecError(f"loss and cost must be (N, K) arrays of one shape, got {loss.shape}, {cost.shape}")
    if loss.shape[0] == 0 or loss.shape[1] == 0:
        raise SpecError("the allocation problem has no units or no options")
    allowed = np.ones(loss.shape, bool) if allowed is None else np.asarray(allowed, bool)
    if allowed.shape != loss.shape:
        raise SpecError(f"allowed mask shape {allowed.shape} != {loss.shape}")
    if not allowed.any(axis=1).all():
        bad = int(np.flatnonzero(~allowed.any(axis=1))[0])
        raise SpecError(f"unit {bad} has no allowed option (floor above ceiling?)")
    if not np.all(np.isfinite(loss[allowed])) or not np.all(np.isfinite(cost[allowed])):
        raise SpecError("loss and cost must be finite for every allowed option")
    if np.any(cost[allowed] < 0):
        raise SpecError("costs must be non-negative")
    return loss, cost, allowed


def _choice_totals(loss, cost, choice) -> tuple[float, float]:
    rows = np.arange(loss.shape[0])
    return float(loss[rows, choice].sum()), float(cost[rows, choice].sum())


def min_cost_choice(loss: np.ndarray, cost: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per unit, the cheapest allowed option (ties: the lower loss)."""
    c = np.where(allowed, cost, np.inf)
    cmin = c.min(axis=1, keepdims=True)
    ll = np.where(c == cmin, loss, np.inf)
    return ll.argmin(axis=1)


def _infeasible(limit: float, floor: float) -> SpecError:
    return SpecError(
        f"budget of {limit:.0f} bits for the allocated tensors is below the smallest achievable "
        f"{floor:.0f} bits (every unit at its lowest allowed bit width)"
    )


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
            raise _infeasible(lim, mm)
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
    total_loss, total_cost = _choice_totals(loss, cost, choice)
    optimal = res.status == 0
    bound = total_loss
    if not optimal and getattr(res, "mip_dual_bound", None) is not None:
        bound = float(res.mip_dual_bound) * scale + float(lmin.sum())
    extra_costs = tuple(float(np.asarray(m)[np.arange(n), choice].sum()) for m, _ in extra)
    return Solution(choice, total_loss, total_cost, optimal, bound, "milp", extra_costs)


# ---------------------------------------------------------------- Lagrangian sweep


@dataclass(frozen=True, eq=False)
class Hull:
    """The convex front of a problem, as steps sorted by loss saved per bit (best first).

    Start: every unit at ``start[i]``; step j moves unit ``unit[j]`` from option ``src[j]`` to
    ``dst[j]`` at ``dcost[j]`` more bits saving ``gain[j]`` loss. Steps of one unit appear in order.
    """

    start: np.ndarray
    start_loss: float
    start_cost: float
    unit: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    dcost: np.ndarray
    gain: np.ndarray


#: Unit-option-option entries per block of :func:`hull_steps` (~8 MB per float64 temporary).
_HULL_BLOCK = 1 << 20


def _vertices(loss: np.ndarray, cost: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(N, K) whether option k of each unit is a vertex of its lower convex hull (start aside)."""
    k = loss.shape[1]
    # s[i, a, b] = (loss_a - loss_b) / (cost_b - cost_a): loss saved per bit going a -> b.
    dl = loss[:, :, None] - loss[:, None, :]
    dc = cost[:, None, :] - cost[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = dl / dc
    same = dc == 0
    idx = np.arange(k)
    a_before_b = idx[:, None] < idx[None, :]
    # Equal cost: the lower loss wins (ties: the lower index).
    a_beats_b = (dl < 0) | ((dl == 0) & a_before_b)
    pair_ok = allowed[:, :, None] & allowed[:, None, :] & ~np.eye(k, dtype=bool)[None]
    # Constraint on vertex b from a cheaper (or equal-cost) option a: lambda <= s[a, b].
    s_in = np.where(same, np.where(a_beats_b, -np.inf, np.inf), s)
    s_in = np.where(pair_ok & (dc >= 0), s_in, np.inf)
    in_slope = s_in.min(axis=1)  # (N, K): over a for each b
    # Constraint on vertex a from a dearer option b: lambda >= s[a, b].
    s_out = np.where(pair_ok & (dc > 0), s, -np.inf)
    out_slope = np.maximum(s_out.max(axis=2), 0.0)  # (N, K): over b for each a
    return allowed & (in_slope >= out_slope) & (in_slope > 0)


def hull_steps(loss: np.ndarray, cost: np.ndarray, allowed: np.ndarray | None = None) -> Hull:
    """Lower convex hull of each unit's (cost, loss) options, merged into one sorted step list.

    Option k of a unit is a hull vertex iff some multiplier lambda >= 0 makes it minimise
    loss + lambda * cost; checked for all units at once with (N, K, K) slope arrays.
    """
    loss, cost, allowed = check_problem(loss, cost, allowed)
    n, k = loss.shape
    start = min_cost_choice(loss, cost, allowed)
    # (N, K, K) slope arrays in blocks of units: bounded temporaries for any number of units
    blk = max(1, _HULL_BLOCK // (k * k))
    vertex = np.concatenate([_vertices(loss[a:a + blk], cost[a:a + blk], allowed[a:a + blk])
                             for a in range(0, n, blk)]) if n else np.zeros((0, k), bool)
    vertex[np.arange(n), start] = True
    # Steps between consecutive vertices (in cost order).
    order = np.argsort(np.where(vertex, cost, np.inf), axis=1, kind="stable")
    nvert = vertex.sum(axis=1)
    units, srcs, dsts = [], [], []
    for j in range(1, k):
        has = nvert > j
        if not has.any():
            break
        u = np.flatnonzero(has)
        units.append(u)
        srcs.append(order[u, j - 1])
        dsts.append(order[u, j])
    if units:
        unit = np.concatenate(units)
        src = np.concatenate(srcs)
        dst = np.concatenate(dsts)
        step_no = np.concatenate([np.full(len(u), j) for j, u in enumerate(units)])
    else:
        unit = src = dst = step_no = np.zeros(0, np.int64)
    dcost = cost[unit, dst] - cost[unit, src]
    gain = loss[unit, src] - loss[unit, dst]
    slope = gain / dcost
    perm = np.lexsort((step_no, unit, -slope))
    rows = np.arange(n)
    return Hull(
        start=start,
        start_loss=float(loss[rows, start].sum()),
        start_cost=float(cost[rows, start].sum()),
        unit=unit[perm],
        src=src[perm],
        dst=dst[perm],
        dcost=dcost[perm],
        gain=gain[perm],
    )


def convex_front(hull: Hull) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of the convex (cost bits, loss) front: arrays of length steps + 1."""
    c = hull.start_cost + np.concatenate([[0.0], np.cumsum(hull.dcost)])
    lo = hull.start_loss - np.concatenate([[0.0], np.cumsum(hull.gain)])
    return c, lo


def solve_from_hull(loss: np.ndarray, cost: np.ndarray, hull: Hull, limit: float) -> Solution:
    """Best hull prefix within ``limit``, then a greedy pass over the remaining steps."""
    n = loss.shape[0]
    if hull.start_cost > limit + 1e-9:
        raise _infeasible(limit, hull.start_cost)
    ccum = hull.start_cost + np.cumsum(hull.dcost)
    p = int(np.searchsorted(ccum, limit + 1e-9, side="right"))  # steps 0..p-1 fit
    choice = hull.start.copy()
    # Steps of a unit come in order: its last step in the prefix decides.
    units_rev, first_rev = np.unique(hull.unit[:p][::-1], return_index=True)
    choice[units_rev] = hull.dst[:p][p - 1 - first_rev]
    used = float(ccum[p - 1]) if p else hull.start_cost
    bound = hull.start_loss - float(hull.gain[:p].sum())
    if p < hull.unit.size:
        frac = (limit - used) / float(hull.dcost[p])
        bound -= max(0.0, min(1.0, frac)) * float(hull.gain[p])
        left = limit - used
        blocked = np.zeros(n, bool)
        for j in range(p, hull.unit.size):
            if left <= 0:
                break
            u = int(hull.unit[j])
            if blocked[u] or choice[u] != hull.src[j]:
                continue
            dc = float(hull.dcost[j])
            if dc <= left + 1e-9:
                choice[u] = hull.dst[j]
                left -= dc
            else:
                blocked[u] = True
    total_loss, total_cost = _choice_totals(loss, cost, choice)
    optimal = p == hull.unit.size or abs(total_loss - bound) <= 1e-12 * max(1.0, abs(bound))
    return Solution(choice, total_loss, total_cost, bool(optimal), min(bound, total_loss), "lagrangian")


def solve_lagrangian(
    loss: np.ndarray, cost: np.ndarray, limit: float, allowed: np.ndarray | None = None
) -> Solution:
    """Lagrangian sweep for one size limit (see module docstring)."""
    loss, cost, allowed = check_problem(loss, cost, allowed)
    return solve_from_hull(loss, cost, hull_steps(loss, cost, allowed), float(limit))


# ---------------------------------------------------------------- brute force (tests)


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

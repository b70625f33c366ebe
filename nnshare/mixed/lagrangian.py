"""The Lagrangian sweep for the multiple-choice knapsack: each unit's options are reduced to the
lower convex hull of (cost, loss); hull steps sorted by loss saved per bit give every point of the
convex front at once; a budget between two hull points is filled greedily. Near-optimal (the gap
is at most one unit's step, reported as ``bound``), O(N K log N K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import Solution, check_problem, choice_totals, infeasible, min_cost_choice


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
        raise infeasible(limit, hull.start_cost)
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
    total_loss, total_cost = choice_totals(loss, cost, choice)
    optimal = p == hull.unit.size or abs(total_loss - bound) <= 1e-12 * max(1.0, abs(bound))
    return Solution(choice, total_loss, total_cost, bool(optimal), min(bound, total_loss), "lagrangian")


def solve_lagrangian(
    loss: np.ndarray, cost: np.ndarray, limit: float, allowed: np.ndarray | None = None
) -> Solution:
    """Lagrangian sweep for one size limit ``limit`` in bits (see module docstring)."""
    loss, cost, allowed = check_problem(loss, cost, allowed)
    return solve_from_hull(loss, cost, hull_steps(loss, cost, allowed), float(limit))


"""The multiple-choice knapsack problem shared by every solver: input checks, the
:class:`Solution` they return and small helpers over ``(N, K)`` loss / cost arrays.

``loss[i, k]`` is the predicted loss increase of unit i at option k, ``cost[i, k]`` its size in
bits, ``allowed[i, k]`` False for options outside a unit's floor/ceiling.
"""

from __future__ import annotations

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


def choice_totals(loss, cost, choice) -> tuple[float, float]:
    """(summed loss, summed cost in bits) of one option per unit."""
    rows = np.arange(loss.shape[0])
    return float(loss[rows, choice].sum()), float(cost[rows, choice].sum())


def min_cost_choice(loss: np.ndarray, cost: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per unit, the cheapest allowed option (ties: the lower loss)."""
    c = np.where(allowed, cost, np.inf)
    cmin = c.min(axis=1, keepdims=True)
    ll = np.where(c == cmin, loss, np.inf)
    return ll.argmin(axis=1)


def infeasible(limit: float, floor: float) -> SpecError:
    """The error for a budget of ``limit`` bits below the smallest reachable ``floor`` bits."""
    return SpecError(
        f"budget of {limit:.0f} bits for the allocated tensors is below the smallest achievable "
        f"{floor:.0f} bits (every unit at its lowest allowed bit width)"
    )

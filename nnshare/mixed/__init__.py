"""Mixed precision: sensitivity per tensor / channel and bit-width allocation under a budget.

>>> plan = allocate(model, Budget(bytes=4000), sensitivity="output", data=calib,
...                 granularity="channel")
"""

from .allocator import Allocation, FrontPoint, allocate, search
from .budget import Budget
from .knapsack import (
    Solution,
    pareto_front,
    solve_brute_force,
    solve_lagrangian,
    solve_milp,
)
from .plans import exact_stream_bits, plan_from_widths
from .report import bits_table, pareto_plot, rich_bits_table
from .sensitivity import METHODS, Sensitivity, estimate_sensitivity

__all__ = [
    "METHODS",
    "Allocation",
    "Budget",
    "FrontPoint",
    "Sensitivity",
    "Solution",
    "allocate",
    "bits_table",
    "estimate_sensitivity",
    "exact_stream_bits",
    "pareto_front",
    "pareto_plot",
    "plan_from_widths",
    "rich_bits_table",
    "search",
    "solve_brute_force",
    "solve_lagrangian",
    "solve_milp",
]

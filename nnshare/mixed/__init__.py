"""Mixed precision: sensitivity per tensor / channel and bit-width allocation under a budget.

>>> plan = allocate(model, Budget(bytes=4000), sensitivity="output", data=calib,
...                 granularity="channel")
"""

from .allocation import Allocation, FrontPoint
from .allocator import allocate, search
from .budget import Budget
from .compress import Point, Result, compress
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
from .task_weights import TaskWeights, task_weights

__all__ = [
    "METHODS",
    "Allocation",
    "Budget",
    "FrontPoint",
    "Sensitivity",
    "Point",
    "Result",
    "Solution",
    "TaskWeights",
    "allocate",
    "bits_table",
    "compress",
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
    "task_weights",
]

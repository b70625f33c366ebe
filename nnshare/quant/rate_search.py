"""The rate control's search: the log2 step at which a monotone measure (bits, falling with the
step; squared error, rising with it) meets a target from the allowed side.

Safeguarded regula falsi (Illinois) on log(measure) against x = log2(step): at high rate bits
fall linearly and the squared error rises as 2^(2x), so a secant through two points lands within
a fraction of a percent; one point and a slope extrapolate; a step outside the bracket falls back
to bisection. Pure function of the evaluations: the same evaluations give the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..format.errors import SpecError


@dataclass(frozen=True)
class Found:
    """The best allowed evaluation (None if none was allowed), its x, the evaluations made and
    the slope d log(measure) / dx seen last (for a follow-up search)."""

    result: Any
    x: float | None
    evaluations: int
    slope: float | None


def search(evaluate: Callable[[float], tuple[float, Any]], target: float, lo: float, hi: float,
           x0: float, *, rising: bool, tol: float, max_iter: int,
           slope: float | None = None) -> Found:
    """Find x in [lo, hi] with ``target * (1 - tol) <= y <= target`` for ``y, result =
    evaluate(x)``; ``rising``: y grows with x (else it falls). ``evaluate`` may raise SpecError
    for an x too small (codes too wide): the search moves up. ``slope``: a guess of
    d log(y) / dx for the first extrapolation. Returns the allowed evaluation closest to the
    target (``y <= target``) even when the window was not reached."""
    aim = math.log(target * (1 - tol / 2))
    sign = 1.0 if rising else -1.0
    a_x, a_g = lo, None  # g = sign * (log y - aim) < 0 at a, > 0 at b: the root lies between
    b_x, b_g = hi, None
    last: tuple[float, float] | None = None
    side = 0
    best = best_x = None
    best_y = -math.inf
    x = min(max(x0, lo + 1e-3), hi - 1e-3)
    n = 0
    while n < max_iter:
        n += 1
        try:
            y, res = evaluate(x)
        except SpecError:  # step too small: every x below is out too
            a_x, a_g, last = x, None, None
            x = (a_x + b_x) / 2
            continue
        if y <= target and y > best_y:
            best, best_x, best_y = res, x, y
        if target * (1 - tol) <= y <= target:
            break
        g = sign * (math.log(y) - aim) if y > 0 else -math.inf
        if last is not None and x != last[0] and math.isfinite(g) and math.isfinite(last[1]):
            slope = sign * (g - last[1]) / (x - last[0])
        last = (x, g)
        if g < 0:
            a_x, a_g = x, g
            if side == -1 and b_g is not None:
                b_g /= 2  # Illinois: the stale end weighs half
            side = -1
        else:
            b_x, b_g = x, g
            if side == 1 and a_g is not None:
                a_g /= 2
            side = 1
        if b_x - a_x < 1e-4:
            break
        if a_g is not None and b_g is not None and math.isfinite(a_g):
            nx = a_x - a_g * (b_x - a_x) / (b_g - a_g)
        elif slope and math.isfinite(g) and sign * slope > 0:
            nx = x - g / (sign * slope)
        else:
            nx = (a_x + b_x) / 2
        x = nx if a_x < nx < b_x else (a_x + b_x) / 2
    return Found(best, best_x, n, slope)

"""Companders: a compressor c maps x to [-1, 1], a uniform K-cell quantizer runs on c(x), and the
expander maps each cell centre back: levels ``y_j = c^-1(-1 + (2j + 1) / K)``.

In nnshare a compander designs a codebook: the sender ships the K levels (codebook scheme) and
assigns every element to its nearest level, which never loses to the compander's own thresholds.

- mu-law / A-law (G.711 shapes) with a loading ``xmax``.
- The optimal compressor for a density, c' ~ f^(1/3) (Panter-Dite): parametric for a fitted
  Gaussian / Laplacian, or from a histogram of the data.
- A piecewise-linear (first-degree spline) approximation of the optimal compressor over L equal
  segments of [0, threshold], i.e. a piecewise-uniform quantizer, with the segment threshold
  chosen numerically to maximise the SQNR.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError
from . import densities


def _centres(k: int) -> np.ndarray:
    return -1 + (2 * np.arange(k) + 1) / k


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise SpecError(f"a compander needs K >= 2 levels, got {k!r}")


def mu_law_levels(k: int, xmax: float, mu: float = 255.0) -> np.ndarray:
    """Levels of the mu-law compander c(x) = sgn(x) ln(1 + mu |x| / xmax) / ln(1 + mu)."""
    _check_k(k)
    if not (xmax > 0 and mu > 0):
        raise SpecError("mu-law needs xmax > 0 and mu > 0")
    u = _centres(k)
    return np.sign(u) * xmax * np.expm1(np.abs(u) * np.log1p(mu)) / mu


def a_law_levels(k: int, xmax: float, a: float = 87.6) -> np.ndarray:
    """Levels of the A-law compander (linear below |x| = xmax / A, logarithmic above)."""
    _check_k(k)
    if not (xmax > 0 and a >= 1):
        raise SpecError("A-law needs xmax > 0 and A >= 1")
    u = _centres(k)
    v = np.abs(u) * (1 + np.log(a))
    mag = np.where(v < 1, v / a, np.exp(v - 1) / a)
    return np.sign(u) * xmax * mag


def optimal_levels(source: str, k: int, scale: float = 1.0, loc: float = 0.0) -> np.ndarray:
    """Levels of the optimal compander for a Gaussian / Laplacian of std ``scale`` and mean ``loc``."""
    _check_k(k)
    return loc + scale * densities.compander_levels(source, k)


def histogram_levels(x: np.ndarray, k: int, bins: int = 256) -> np.ndarray:
    """Levels of the optimal compander for the histogram density of ``x``: c = cumulative f^(1/3)."""
    _check_k(k)
    x = np.asarray(x, np.float64).reshape(-1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise SpecError("histogram compander needs finite data")
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.full(k, lo)
    hist, edges = np.histogram(x, bins=bins, range=(lo, hi))
    c = np.concatenate([[0.0], np.cumsum(np.cbrt(hist.astype(np.float64)))])
    c /= c[-1]
    u = (np.arange(k) + 0.5) / k
    keep = np.concatenate([[True], np.diff(c) > 0])  # strictly increasing for interpolation
    return np.interp(u, c[keep], edges[keep])


def spline_levels(source: str, k: int, threshold: float, segments: int = 4) -> np.ndarray:
    """Piecewise-uniform levels from a first-degree spline of the optimal compressor (even K).

    [0, threshold] is cut into ``segments`` equal parts; part i gets n_i of the K / 2 positive
    cells, n_i proportional to the rise of the optimal compressor over it (largest remainder,
    at least 1), uniform within the part; levels at cell centres, mirrored for x < 0.
    """
    _check_k(k)
    if k % 2 or segments < 1 or segments > k // 2 or not threshold > 0:
        raise SpecError("spline compander needs even K, 1 <= segments <= K / 2 and threshold > 0")
    knots = np.linspace(0.0, threshold, segments + 1)
    if source == "gaussian":
        c = densities.special.ndtr(knots / np.sqrt(3.0))
    else:
        densities._check(source)
        c = -np.expm1(-np.sqrt(2.0) * knots / 3.0)
    share = np.diff(c) / (c[-1] - c[0]) * (k // 2)
    n = np.maximum(np.floor(share).astype(np.int64), 1)
    while n.sum() > k // 2:
        n[np.argmax(n)] -= 1
    rem = share - np.floor(share)
    for i in np.argsort(-rem):
        if n.sum() >= k // 2:
            break
        n[i] += 1
    pos = np.concatenate([knots[i] + (np.arange(n[i]) + 0.5) * (knots[i + 1] - knots[i]) / n[i]
                          for i in range(segments)])
    return np.concatenate([-pos[::-1], pos])


def best_spline(source: str, k: int, segments: int = 4) -> tuple[float, np.ndarray, float]:
    """(threshold, levels, MSE) of the spline compander whose segment threshold maximises the
    exact SQNR for the unit-variance source (bounded scalar search)."""
    from scipy.optimize import minimize_scalar

    def mse(t: float) -> float:
        return densities.quantizer_mse(source, spline_levels(source, k, t, segments))

    # the cell counts are integers, so the MSE jumps with the threshold: grid first, then refine
    hi = 4.0 + 2.0 * np.log2(k) if source == "gaussian" else 6.0 + 3.0 * np.log2(k)
    grid = np.linspace(0.5, hi, 241)
    j = int(np.argmin([mse(t) for t in grid]))
    lo, up = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    res = minimize_scalar(mse, bounds=(lo, up), method="bounded", options={"xatol": 1e-7})
    t = float(res.x) if res.fun <= mse(grid[j]) else float(grid[j])
    return t, spline_levels(source, k, t, segments), mse(t)


def best_mu_law(source: str, k: int, mu: float = 255.0) -> tuple[float, np.ndarray, float]:
    """(xmax, levels, MSE) of the mu-law compander at its best loading for the unit source."""
    from scipy.optimize import minimize_scalar

    def mse(xm: float) -> float:
        return densities.quantizer_mse(source, mu_law_levels(k, xm, mu))

    res = minimize_scalar(mse, bounds=(0.5, 60.0), method="bounded", options={"xatol": 1e-6})
    return float(res.x), mu_law_levels(k, float(res.x), mu), float(res.fun)

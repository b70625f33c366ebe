"""Unit-variance Gaussian and Laplacian sources: partial moments and the exact MSE of any scalar
quantizer, the basis of every theoretical SQNR nnshare quotes (Lloyd-Max, optimal uniform step,
companders, minifloat grids).

A scalar quantizer is given by sorted reconstruction levels ``y`` (K,) and decision thresholds
``t`` (K - 1,) (nearest neighbour: the midpoints of ``y``). Its MSE under density f is
``sum_k int_{t_k}^{t_{k+1}} (x - y_k)^2 f(x) dx``, computed from closed-form partial moments.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..format.errors import SpecError

SOURCES = ("gaussian", "laplacian")
_LAM = np.sqrt(2.0)  # Laplacian rate for unit variance: f(x) = (lam / 2) exp(-lam |x|)


def _check(source: str) -> None:
    if source not in SOURCES:
        raise SpecError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")


def _tail_moments(source: str, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int_a^inf x^k f(x) dx for k = 0, 1, 2 and a >= 0 (a may be inf)."""
    a = np.asarray(a, np.float64)
    fin = np.isfinite(a)
    af = np.where(fin, a, 0.0)
    if source == "gaussian":
        phi = np.where(fin, np.exp(-0.5 * af * af) / np.sqrt(2 * np.pi), 0.0)
        g0 = special.ndtr(-a)
        return g0, phi, g0 + np.where(fin, af * phi, 0.0)
    e = np.where(fin, 0.5 * np.exp(-_LAM * af), 0.0)
    return e, e * (af + 1 / _LAM), e * (af * af + 2 * af / _LAM + 2 / _LAM**2)


def partial_moments(source: str, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """(M0, M1, M2): int_lo^hi x^k f(x) dx elementwise, lo <= hi (either may be infinite)."""
    _check(source)
    lo, hi = np.broadcast_arrays(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    out = []
    # split each interval at 0 and use the symmetry of f: [lo, hi] = [lo, min(hi,0)] + [max(lo,0), hi]
    pa, pb = np.maximum(lo, 0.0), np.maximum(hi, 0.0)  # positive part [pa, pb]
    na, nb = np.maximum(-hi, 0.0), np.maximum(-lo, 0.0)  # mirrored negative part [na, nb]
    tp_a, tp_b = _tail_moments(source, pa), _tail_moments(source, pb)
    tn_a, tn_b = _tail_moments(source, na), _tail_moments(source, nb)
    for k in range(3):
        pos = tp_a[k] - tp_b[k]
        neg = (tn_a[k] - tn_b[k]) * (-1.0) ** k
        out.append(pos + neg)
    return tuple(out)


def quantizer_mse(source: str, levels: np.ndarray, thresholds: np.ndarray | None = None) -> float:
    """Exact MSE (unit-variance source) of the quantizer with sorted ``levels`` and decision
    ``thresholds`` (default: nearest neighbour, the midpoints)."""
    y = np.asarray(levels, np.float64)
    if y.ndim != 1 or y.size == 0 or np.any(np.diff(y) < 0):
        raise SpecError("levels must be a non-empty sorted 1-D array")
    t = (y[1:] + y[:-1]) / 2 if thresholds is None else np.asarray(thresholds, np.float64)
    edges = np.concatenate([[-np.inf], t, [np.inf]])
    m0, m1, m2 = partial_moments(source, edges[:-1], edges[1:])
    return float(np.sum(m2 - 2 * y * m1 + y * y * m0))


def sqnr_db(mse: float) -> float:
    """SQNR in dB of a unit-variance source with error power ``mse``."""
    return float(-10 * np.log10(mse))


def centroids(source: str, edges: np.ndarray) -> np.ndarray:
    """Conditional means E[X | edges_k <= X < edges_k+1] (K + 1 edges -> K values)."""
    m0, m1, _ = partial_moments(source, edges[:-1], edges[1:])
    mid = np.where(np.isfinite(edges[:-1] + edges[1:]), (edges[:-1] + edges[1:]) / 2, 0.0)
    return np.where(m0 > 1e-300, m1 / np.maximum(m0, 1e-300), mid)


def uniform_levels(k: int, step: float) -> np.ndarray:
    """K midrise levels (k - (K - 1) / 2) * step, symmetric about 0."""
    return (np.arange(k) - (k - 1) / 2) * step


def optimal_uniform_step(source: str, k: int) -> tuple[float, float]:
    """(step, MSE) of the MSE-optimal symmetric uniform K-level quantizer (golden-section search)."""
    from scipy.optimize import minimize_scalar

    _check(source)
    hi = 12.0 / max(k - 1, 1) + 0.5
    res = minimize_scalar(
        lambda s: quantizer_mse(source, uniform_levels(k, s)), bounds=(1e-4, hi), method="bounded",
        options={"xatol": 1e-10},
    )
    return float(res.x), float(res.fun)


def compander_levels(source: str, k: int) -> np.ndarray:
    """Levels of the optimal compander (c' ~ f^(1/3), the source's CDF with 3x variance / scale):
    y_j = c^-1((j + 1/2) / K)."""
    _check(source)
    u = (np.arange(k) + 0.5) / k
    if source == "gaussian":
        return np.sqrt(3.0) * special.ndtri(u)
    scale = 3.0 / _LAM  # Laplacian with 3x the scale
    return -np.sign(u - 0.5) * scale * np.log1p(-np.abs(2 * u - 1))


def lloyd_max(source: str, k: int, iters: int = 20000, tol: float = 1e-13) -> tuple[np.ndarray, float]:
    """(levels, MSE) of the K-level Lloyd-Max quantizer for a unit-variance source, iterated from
    the optimal compander until no level moves by more than ``tol``."""
    y = compander_levels(source, k)
    for _ in range(iters):
        edges = np.concatenate([[-np.inf], (y[1:] + y[:-1]) / 2, [np.inf]])
        new = centroids(source, edges)
        done = np.max(np.abs(new - y)) < tol
        y = new
        if done:
            break
    return y, quantizer_mse(source, y)


def entropy_bits(source: str, levels_edges: np.ndarray) -> float:
    """Entropy (bits / sample) of the cell index for decision ``edges`` (K + 1 values)."""
    m0, _, _ = partial_moments(source, levels_edges[:-1], levels_edges[1:])
    p = m0[m0 > 0]
    return float(-np.sum(p * np.log2(p)))


def differential_entropy_bits(source: str) -> float:
    """h(X) in bits of the unit-variance source."""
    _check(source)
    if source == "gaussian":
        return float(0.5 * np.log2(2 * np.pi * np.e))
    return float(np.log2(np.sqrt(2.0) * np.e))  # log2(2 e b), b = 1 / sqrt(2)


def inverse_cdf(source: str, u: np.ndarray) -> np.ndarray:
    """Quantile function of the unit-variance source, u in (0, 1)."""
    _check(source)
    u = np.asarray(u, np.float64)
    if source == "gaussian":
        return special.ndtri(u)
    return -np.sign(u - 0.5) * np.log1p(-np.abs(2 * u - 1)) / _LAM


def sample(source: str, n: int, seed: int = 0, stratified: bool = False) -> np.ndarray:
    """n float64 samples of the unit-variance source: i.i.d., or stratified (one uniform draw in
    each of n equal-probability strata, shuffled) so the tails hold exactly their share of the
    samples and Monte Carlo noise in the MSE of a clipping quantizer drops by orders of magnitude."""
    _check(source)
    rng = np.random.default_rng(seed)
    if stratified:
        u = (np.arange(n) + rng.random(n)) / n
        return rng.permutation(inverse_cdf(source, u))
    if source == "gaussian":
        return rng.standard_normal(n)
    return rng.laplace(0.0, 1 / _LAM, n)

"""Sender side of the entropy coder's distributions: fitting a distribution record
(:class:`nnshare.format.entropy.dists.Dist`) to a histogram, and the row/column scale classes of
the row/column contexts. A sender decision: the receiver only reads the records.
"""

from __future__ import annotations

import numpy as np

from ..format.entropy.dists import CONST, GAUSS, GEOMETRIC, LEVEL_BITS, TABLE, UNIFORM, Dist
from ..format.entropy.header import MAX_CODE_RANGE
from ..format.errors import SpecError
from . import _entropy_fast as _fast
from ._entropy_fast import counts, span, sq_means

_MAX_LEVEL = (1 << LEVEL_BITS) - 1
_FLOOR = 2.0**-20
_SCALE_STEPS = (0.85, 0.93, 1.0, 1.07, 1.15)


def cost_of(hist: np.ndarray, dist: Dist) -> float:
    """Ideal coded bits of symbols with histogram ``hist`` (over dist's range) under ``dist``."""
    if dist.kind == CONST:
        return 0.0
    p = dist.probs()
    nz = hist > 0
    return float(-(hist[nz] * np.log2(p[nz])).sum())


def _table(hist: np.ndarray, lo: int) -> Dist:
    c = hist.astype(np.float64)
    v = 1 + np.rint(-4.0 * np.log2(np.maximum(c, 1e-300) / c.max()))
    levels = np.where(c > 0, np.clip(v, 1, _MAX_LEVEL), 0).astype(np.uint8)
    return Dist(TABLE, lo, hist.size, levels=levels)


def _varint_len(v: int) -> int:
    return max(1, (int(v).bit_length() + 6) // 7)


def side_bits(kind: int, lo: int, width: int) -> int:
    """Bits of a distribution record (same as ``Dist.side_bits`` without writing it)."""
    b = 1 + _varint_len(2 * lo if lo >= 0 else -2 * lo - 1)
    if kind == CONST:
        return 8 * b
    b += _varint_len(width - 1)
    if kind == TABLE:
        b += (width * LEVEL_BITS + 7) // 8
    elif kind in (GEOMETRIC, GAUSS):
        b += 8
    return 8 * b


def _refine(hist: np.ndarray, lo: int, centres: list[tuple[int, float, float]]) -> list[tuple[Dist, float]]:
    """For each (kind, a, b) of ``centres`` the best of a few scales around ``b`` (the same
    probabilities as ``Dist.probs``) with its coded bits; every scale of every kind evaluated in
    one array (each row reduced on its own: the same values as one kind at a time)."""
    k = np.arange(hist.size, dtype=np.float64) + lo
    rows, meta = [], []
    for kind, a, b in centres:
        a32 = float(np.float32(a))
        bs = [float(np.float32(max(b * f, 0.05))) for f in _SCALE_STEPS]
        bv = np.array(bs)[:, None]
        rows.append(-np.abs(k - a32) / bv if kind == GEOMETRIC else -0.5 * ((k - a32) / bv) ** 2)
        meta.append((kind, a32, bs))
    p = np.exp(np.concatenate(rows) if len(rows) > 1 else rows[0])
    p = np.maximum(p / np.maximum(p.max(axis=1, keepdims=True), 1e-300), _FLOOR)
    nz = hist > 0
    lp = np.log2(p[:, nz]) - np.log2(p.sum(axis=1, keepdims=True))
    costs = -(lp * hist[nz]).sum(axis=1)
    out, m = [], len(_SCALE_STEPS)
    for i, (kind, a32, bs) in enumerate(meta):
        j = int(np.argmin(costs[i * m:(i + 1) * m]))
        out.append((Dist(kind, lo, hist.size, a=a32, b=bs[j]), float(costs[i * m + j])))
    return out


def _parametric_loses(hist: np.ndarray, n, lo: int, cands: list[tuple[Dist, float]]) -> bool:
    """Whether a geometric or Gauss record must cost more than the best candidate in hand: no
    distribution codes ``hist`` in fewer bits than its empirical entropy (Gibbs' inequality), and
    both records carry the same side info. A margin of 1e-9 relative (plus 1e-6 bits) covers
    rounding, so a skipped record is strictly worse and the choice is the full fit's."""
    h = hist[hist > 0].astype(np.float64)
    floor = float(-(h * np.log2(h / float(n))).sum())
    best = min(c + side_bits(d.kind, lo, hist.size) for d, c in cands)
    return best < floor * (1 - 1e-9) - 1e-6 + side_bits(GEOMETRIC, lo, hist.size)


def fit_cost(
    hist: np.ndarray, lo: int, kinds: tuple[int, ...] = (TABLE, GEOMETRIC, GAUSS, UNIFORM)
) -> tuple[Dist, float]:
    """:func:`fit` and the ideal coded bits of ``hist`` under the chosen distribution."""
    if hist.size == 1:
        return Dist(CONST, lo, 1), 0.0
    k = np.arange(hist.size, dtype=np.float64) + lo
    n = hist.sum()
    mean = float((hist * k).sum() / n)
    cands: list[tuple[Dist, float]] = []
    if UNIFORM in kinds:
        cands.append((Dist(UNIFORM, lo, hist.size), float(n) * np.log2(hist.size)))
    if TABLE in kinds:
        d = _table(hist, lo)
        cands.append((d, cost_of(hist, d)))
    if cands and _parametric_loses(hist, n, lo, cands):
        kinds = ()  # neither geometric nor Gauss can beat what is in hand
    centres = []
    if GEOMETRIC in kinds:
        cdf = np.cumsum(hist)
        med = float(k[np.searchsorted(cdf, (n + 1) // 2)])
        mad = float((hist * np.abs(k - med)).sum() / n)
        centres.append((GEOMETRIC, med, max(mad, 0.1)))
    if GAUSS in kinds:
        std = float(np.sqrt((hist * (k - mean) ** 2).sum() / n))
        centres.append((GAUSS, mean, max(std, 0.1)))
    if centres:
        cands += _refine(hist, lo, centres)
    return min(cands, key=lambda dc: dc[1] + side_bits(dc[0].kind, lo, hist.size))


def fit(
    hist: np.ndarray, lo: int, kinds: tuple[int, ...] = (TABLE, GEOMETRIC, GAUSS, UNIFORM)
) -> Dist:
    """The cheapest distribution (coded bits + side-info bits) for a histogram starting at ``lo``.

    ``hist``: int64 counts of the symbols ``lo .. lo + len(hist) - 1``; first and last non-zero.
    """
    return fit_cost(hist, lo, kinds)[0]


def class_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Class index of each value against sorted class edges."""
    return np.searchsorted(edges, values, side="right").astype(np.int8)


def scale_classes(rms: np.ndarray, k: int, iters: int = 12) -> np.ndarray:
    """Cluster RMS values into ``k`` classes by 1-D k-means on log2(rms + 0.5) (encoder only)."""
    v = np.log2(rms + 0.5)
    centers = np.unique(linear_quantiles(v, (np.arange(k) + 0.5) / k)) if k > 1 else v[:1]
    if _fast._kmeans_fast is not None:  # the same loop compiled (same floats, tested)
        return _fast._kmeans_fast(np.ascontiguousarray(v, np.float64), centers, int(iters))
    for _ in range(iters):
        if centers.size < 2:
            break
        cls = class_of(v, (centers[1:] + centers[:-1]) / 2)
        sums = np.bincount(cls, weights=v, minlength=centers.size)
        cnt = np.bincount(cls, minlength=centers.size)
        centers = np.unique(np.where(cnt > 0, sums / np.maximum(cnt, 1), centers))
    if centers.size < 2:
        return np.zeros(v.size, np.int8)
    return class_of(v, (centers[1:] + centers[:-1]) / 2)


def linear_quantiles(v: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``np.quantile(v, qs)`` (method "linear") of a non-empty 1-D float64 array without NaN,
    qs in [0, 1]: the same index, weight and interpolation arithmetic on the sorted values (one
    sort instead of numpy's generic partition path, ~10x less call overhead on small arrays)."""
    s = np.sort(v)
    n = s.size
    vi = (n - 1) * np.asarray(qs, np.float64)
    prev = np.floor(vi)
    top = vi >= n - 1
    i = np.where(top, n - 1, prev).astype(np.intp)
    j = np.where(top, n - 1, prev + 1).astype(np.intp)
    gamma = vi - prev
    a, b = s[i], s[j]
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def rowcol_classes(
    sym: np.ndarray, center: int, row_len: int, k_row: int, k_col: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column scale classes of ``sym - center`` seen as a (rows, row_len) matrix."""
    r2, c2 = sq_means(np.ascontiguousarray(sym), center, row_len)
    rows = scale_classes(np.sqrt(r2), k_row)
    cols = scale_classes(np.sqrt(c2), k_col)
    return rows, cols


def int_quantile(v: np.ndarray, qs) -> list[int]:
    """Quantiles (lower) of a non-empty array of non-negative integers, via a histogram."""
    v = np.asarray(v)
    if v.size and v.max() < (1 << 22):
        cdf = np.cumsum(np.bincount(v.astype(np.int64, copy=False)))
        return [int(np.searchsorted(cdf, q * (v.size - 1) + 1)) for q in qs]
    return [int(x) for x in np.quantile(v, qs, method="lower")]


def median(v: np.ndarray, memo: dict | None = None) -> int:
    """Lower median of an integer array (remembered in ``memo`` per array)."""
    if memo is not None and id(v) in memo:
        return memo[id(v)]
    lo, h = _counts(v, memo)
    if h.size < (1 << 22):  # as int_quantile(v - lo): the lower median from the histogram
        m = lo + int(np.searchsorted(np.cumsum(h), 0.5 * (v.size - 1) + 1))
    else:
        m = lo + int_quantile(v - lo, [0.5])[0]
    if memo is not None:
        memo[id(v)] = m
    return m


def _counts(v: np.ndarray, memo: dict | None) -> tuple[int, np.ndarray]:
    """(min, counts of v - min), remembered in ``memo`` per array."""
    key = ("counts", id(v))
    if memo is not None and key in memo:
        return memo[key]
    out = counts(v)
    if memo is not None:
        memo[key] = out
    return out


def mag_quantiles(sym: np.ndarray, center: int, memo: dict) -> list[int]:
    """Lower 1/3 and 2/3 quantiles of |sym - center| (as :func:`int_quantile`), folded from
    the histogram of ``sym``."""
    lo, h = _counts(sym, memo)
    mags = np.abs(np.arange(h.size, dtype=np.int64) + (lo - center))
    if int(mags.max()) >= 1 << 22:
        return int_quantile(np.abs(sym - center), [1 / 3, 2 / 3])
    cdf = np.cumsum(np.bincount(mags, weights=h, minlength=int(mags.max()) + 1).astype(np.int64))
    return [int(np.searchsorted(cdf, q * (sym.size - 1) + 1)) for q in (1 / 3, 2 / 3)]


def check_codes(codes: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """The codes as a contiguous 1-D int32 or int64 array (others as int64), checked against
    [qmin, qmax] (one typed error)."""
    a = np.asarray(codes)
    if a.ndim != 1:
        raise SpecError(f"codes must be a 1-D array, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise SpecError(f"codes must be integers, got dtype {a.dtype}")
    if not (isinstance(qmin, int | np.integer) and isinstance(qmax, int | np.integer)):
        raise SpecError("qmin and qmax must be integers")
    if not 0 <= qmax - qmin <= MAX_CODE_RANGE:
        raise SpecError(f"code range [{qmin}, {qmax}] empty or wider than {MAX_CODE_RANGE}")
    a = _fast.ints(a)
    lo, hi = span(a) if a.size else (qmin, qmax)
    if lo < qmin or hi > qmax:
        raise SpecError(f"codes outside [{qmin}, {qmax}]: min {lo}, max {hi}")
    return a

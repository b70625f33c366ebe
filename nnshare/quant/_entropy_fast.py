"""Single-pass helpers of the encoder's model fitting, compiled by numba when available (the
``fast`` extra), with numpy equivalents otherwise (same results)."""

from __future__ import annotations

import os

import numpy as np

from . import tcq_levels as _tcq_levels

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
if os.environ.get("NNSHARE_NO_NUMBA"):
    numba = None


def _hist_loop(ctx, sym, lo, n_ctx, width):
    h = np.zeros((n_ctx, width), np.int64)
    for i in range(sym.size):
        h[ctx[i], sym[i] - lo] += 1
    return h


def _sq_means_loop(sym, center, row_len):
    n_rows = sym.size // row_len
    rows = np.zeros(n_rows)
    cols = np.zeros(row_len)
    for r in range(n_rows):
        acc = 0.0
        base = r * row_len
        for c in range(row_len):
            d = float(sym[base + c] - center)
            d *= d
            acc += d
            cols[c] += d
        rows[r] = acc / row_len
    return rows, cols / n_rows


def _counts_loop(v):
    """(min, counts of v - min) of a non-empty integer array."""
    lo = v[0]
    hi = v[0]
    for i in range(v.size):
        if v[i] < lo:
            lo = v[i]
        elif v[i] > hi:
            hi = v[i]
    h = np.zeros(hi - lo + 1, np.int64)
    for i in range(v.size):
        h[v[i] - lo] += 1
    return lo, h


def _span_loop(v):
    """(min, max) of a non-empty integer array."""
    lo = v[0]
    hi = v[0]
    for i in range(v.size):
        lo = min(lo, v[i])
        hi = max(hi, v[i])
    return lo, hi


def _kmeans_loop(v, centers, iters):
    """1-D k-means as ``entropy_fit.scale_classes`` (same float operations in the same order):
    class = number of midpoints <= value, centers = the distinct sorted class means (an empty
    class keeps its center). Returns int8 classes (all 0 when fewer than 2 centers remain)."""
    for _ in range(iters):
        if centers.size < 2:
            break
        mids = (centers[1:] + centers[:-1]) / 2
        sums = np.zeros(centers.size)
        cnt = np.zeros(centers.size, np.int64)
        for i in range(v.size):
            c = 0
            for m in mids:
                c += m <= v[i]
            sums[c] += v[i]
            cnt[c] += 1
        new = np.empty(centers.size)
        for c in range(centers.size):
            new[c] = sums[c] / max(cnt[c], 1) if cnt[c] > 0 else centers[c]
        centers = np.unique(new)
    out = np.zeros(v.size, np.int8)
    if centers.size < 2:
        return out
    mids = (centers[1:] + centers[:-1]) / 2
    for i in range(v.size):
        c = 0
        for m in mids:
            c += m <= v[i]
        out[i] = c
    return out


def _ctx_loop(q, use_q, sym, nb, center, t1, t2, t_len, rows, cols, row_len, k_rc, k_col):
    """Contexts (int16) in the order of ``entropy_setup.setup``: quantizer id, neighbour class
    of the previous symbol in the stripe (0 at a stripe start), row/column class. The stripe
    step, row and column are counted along (no integer division per element: ~3x faster)."""
    n = sym.size
    out = np.empty(n, np.int16)
    step = 0  # i % t_len
    row = 0  # i // row_len
    col = 0  # i % row_len
    for i in range(n):
        c = np.int64(q[i]) if use_q else np.int64(0)
        if nb:
            pm = np.int64(0) if step == 0 else abs(sym[i - 1] - center)
            c = c * 3 + (1 if pm > t1 else 0) + (1 if pm > t2 else 0)
        if k_rc:
            c = c * k_rc + np.int64(rows[row]) * k_col + np.int64(cols[col])
        out[i] = c
        step += 1
        if step == t_len:
            step = 0
        col += 1
        if col == row_len:
            col = 0
            row += 1
    return out


if numba is not None:
    _hist_fast = numba.njit(cache=True, nogil=True)(_hist_loop)
    _sq_means_fast = numba.njit(cache=True, nogil=True)(_sq_means_loop)
    _counts_fast = numba.njit(cache=True, nogil=True)(_counts_loop)
    _ctx_fast = numba.njit(cache=True, nogil=True)(_ctx_loop)
    _span_fast = numba.njit(cache=True, nogil=True)(_span_loop)
    _kmeans_fast = numba.njit(cache=True, nogil=True)(_kmeans_loop)
else:  # pragma: no cover
    _hist_fast = _sq_means_fast = _counts_fast = _ctx_fast = _span_fast = _kmeans_fast = None


def counts(v: np.ndarray) -> tuple[int, np.ndarray]:
    """(min, int64 counts of ``v - min``) of a non-empty integer array: one compiled pass."""
    if _counts_fast is not None:
        lo, h = _counts_fast(np.ascontiguousarray(v))
        return int(lo), h
    lo = int(v.min())
    return lo, np.bincount((v - lo).astype(np.int64, copy=False))


def ints(v: np.ndarray) -> np.ndarray:
    """Contiguous int32 or int64 (others as int64) for the compiled loops: int32 codes go in
    as they are (no 8-byte copy of a big tensor's codes; the loops widen each value)."""
    return np.ascontiguousarray(v, None if v.dtype in (np.int32, np.int64) else np.int64)


def span(v: np.ndarray) -> tuple[int, int]:
    """(min, max) of a non-empty integer array: one compiled pass (numpy: two reductions)."""
    if _span_fast is not None and v.size >= 4096:
        lo, hi = _span_fast(np.ascontiguousarray(v))
        return int(lo), int(hi)
    return int(v.min()), int(v.max())


def contexts(q, sym, nb: tuple[int, int, int] | None, rc: tuple | None, compiled: bool = True) -> np.ndarray:
    """All of a model's contexts but the temporal one (int16): quantizer id, neighbour class of
    the previous symbol in the stripe, row/column class. One compiled pass (``compiled`` and
    numba), else composed component by component in numpy (the same contexts, tested). ``q``:
    quantizer ids or None; ``nb``: (center, t1, t2) or None; ``rc``: (rows, cols, row_len,
    k_row, k_col) or None."""
    from ..format.entropy import contexts as cx

    n = sym.size
    if compiled and _ctx_fast is not None and n:
        center, t1, t2 = nb if nb else (0, 0, 0)
        rows, cols, row_len, k_row, k_col = rc if rc else (np.zeros(1, np.int8), np.zeros(1, np.int8),
                                                           1, 0, 0)
        return _ctx_fast(q if q is not None else np.zeros(1, np.int8), q is not None,
                         ints(sym), nb is not None, int(center), int(t1),
                         int(t2), cx.stripes(n)[1], rows, cols, int(row_len), int(k_row * k_col),
                         int(k_col))
    ctx = q.astype(np.int16) if q is not None else np.zeros(n, np.int16)
    if nb:
        ctx = ctx * 3 + cx.neighbour_ctx(cx.prev_magnitudes(sym, nb[0]), nb[1], nb[2])
    if rc:
        ctx = ctx * (rc[3] * rc[4]) + cx.rowcol_ctx(rc[0], rc[1], rc[4])
    return ctx.astype(np.int16, copy=False)


def joint_hist(ctx: np.ndarray, sym: np.ndarray, lo: int, n_ctx: int, width: int) -> np.ndarray:
    """Counts (n_ctx x width, int64) of each (context, symbol - lo) pair."""
    if _hist_fast is not None:
        return _hist_fast(ctx, sym, int(lo), int(n_ctx), int(width))
    return np.bincount(ctx.astype(np.int64) * width + (sym - lo),
                       minlength=n_ctx * width).reshape(n_ctx, width)


def sq_means(sym: np.ndarray, center: int, row_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of (sym - center)**2 over each row and each column of the (-1, row_len) matrix."""
    if _sq_means_fast is not None:
        return _sq_means_fast(sym, int(center), int(row_len))
    m = (sym.astype(np.float64) - center).reshape(-1, row_len) ** 2
    return m.mean(axis=1), m.mean(axis=0)


# the compiled extraction: whole blocks of 32 stripes together, then the stripe loop for the rest
_levels_fast = (numba.njit(cache=True, nogil=True)(_tcq_levels.levels_lanes) if numba is not None
                else None)
_levels_tail_fast = (numba.njit(cache=True, nogil=True)(_tcq_levels.levels_into)
                     if numba is not None else None)


_TRELLIS64: dict = {}  # trellis states -> (transitions, quantizer ids) as int64 for the loop


def tcq_levels(codes: np.ndarray, zero: int, states: int):
    """(levels, quantizer ids) of ``codes - zero`` along the trellis, or None if not a path."""
    from ..format.entropy import contexts as cx

    if _levels_fast is None:
        return cx.tcq_levels(codes - zero, states)
    if states not in _TRELLIS64:
        _TRELLIS64[states] = tuple(t.astype(np.int64) for t in cx.TRELLISES[states])
    trans, quant = _TRELLIS64[states]
    r, t_len = ints(codes), cx.stripes(codes.size)[1]
    k, q = np.empty(r.size, np.int32), np.empty(r.size, np.int8)  # int32 levels: half the bytes
    head = _levels_fast(r, int(zero), t_len, trans, quant, k, q)
    ok = head >= 0 and _levels_tail_fast(r[head:], int(zero), t_len, trans, quant, k[head:], q[head:])
    return (k, q) if ok else None

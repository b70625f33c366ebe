"""Single-pass helpers of the encoder's model fitting, compiled by numba when available (the
``fast`` extra), with numpy equivalents otherwise (same results)."""

from __future__ import annotations

import os

import numpy as np

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


if numba is not None:
    _hist_fast = numba.njit(cache=True, nogil=True)(_hist_loop)
    _sq_means_fast = numba.njit(cache=True, nogil=True)(_sq_means_loop)
else:  # pragma: no cover
    _hist_fast = _sq_means_fast = None


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


def _levels_loop(r, zero, t_len, trans, quant):
    """Levels k and quantizer ids q of reconstruction indices ``r - zero`` along the trellis
    (restarting every ``t_len``), and whether the path is valid."""
    n = r.size
    k = np.empty(n, np.int64)
    q = np.empty(n, np.int8)
    state = 0
    step = t_len
    for i in range(n):
        if step == t_len:
            step = 0
            state = 0
        step += 1
        v = r[i] - zero
        qq = quant[state]
        if qq == 0:
            if v & 1:
                return k, q, False
            kk = v >> 1
        else:
            if v != 0 and not v & 1:
                return k, q, False
            kk = (v + 1) >> 1 if v > 0 else -((1 - v) >> 1) if v < 0 else 0
        k[i] = kk
        q[i] = qq
        state = trans[state, kk & 1]
    return k, q, True


_levels_fast = numba.njit(cache=True, nogil=True)(_levels_loop) if numba is not None else None


def tcq_levels(codes: np.ndarray, zero: int, states: int):
    """(levels, quantizer ids) of ``codes - zero`` along the trellis, or None if not a path."""
    from ..format.entropy import contexts as cx

    if _levels_fast is None:
        return cx.tcq_levels(codes - zero, states)
    trans, quant = cx.TRELLISES[states]
    k, q, ok = _levels_fast(np.ascontiguousarray(codes, np.int64), int(zero), cx.stripes(codes.size)[1],
                            trans.astype(np.int64), quant.astype(np.int64))
    return (k, q) if ok else None

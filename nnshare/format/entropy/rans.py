"""Static rANS over context-modelled symbols in natural element order (the ``rans`` coder flag).

One 64-bit rANS state, 32-bit renormalisation words (state in [2**31, 2**63)), frequencies
quantised to ``2**prec`` per context. The encoder runs from the last element to the first and
the word list is reversed, so the decoder reads forward: words ``[state_hi, state_lo, w...]``.
A clean stream ends with every word consumed and the state back at 2**31.

The decoder computes each element's context itself (trellis state, neighbour magnitude,
row/column and temporal classes), so sequential models decode in one pass. The loops are
compiled with numba when it is available (the ``fast`` extra). Without numba (or with
``NNSHARE_NO_NUMBA=1``) the same Python functions run, bit-identical but ~1 us per code, and the
encoder's ``coder="auto"`` picks constriction's range coder instead.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
if os.environ.get("NNSHARE_NO_NUMBA"):
    numba = None

RANS_L = 1 << 31
MIN_PREC, MAX_PREC = 10, 16
MAX_LOSS = 0.001  # relative coding loss accepted from a smaller frequency precision
_TABLE_ENTRIES = 1 << 22  # most slot-table entries (contexts x 2**prec): 32 MiB


def available() -> bool:
    """Whether the fast (compiled) rANS path is available to the encoder."""
    return numba is not None


def precision(n_tables: int, max_width: int, loss=None) -> int | None:
    """Frequency precision (bits) for ``n_tables`` contexts whose widest alphabet has
    ``max_width`` symbols, or None when rANS does not apply (the range coder is used instead).

    ``loss(prec)``: extra bits of coding at ``prec`` (the encoder's histograms); the smallest
    precision within :data:`MAX_LOSS` of the ideal code length wins (small decoder tables stay
    in cache), else the largest that fits.
    """
    ok = [p for p in range(MIN_PREC + 2, MAX_PREC + 1) if fits(n_tables, max_width, p)]
    if not ok or loss is None:
        return ok[0] if ok else None
    for p in ok:
        if loss(p) <= 0:
            return p
    return ok[-1]


def fits(n_tables: int, max_width: int, prec: int) -> bool:
    """Whether ``prec`` bits suit the tables (at most 2**prec / 2 symbols per context, bounded
    decoder tables)."""
    return max_width * 2 <= (1 << prec) and n_tables << prec <= _TABLE_ENTRIES


def quantize(p: np.ndarray, prec: int) -> np.ndarray:
    """Integer frequencies (int64, each >= 1, summing to ``2**prec``) of probabilities ``p``:
    rounded, floored at 1, the remainder on the first most probable symbol (if that leaves it
    < 1: floor(p * (2**prec - width)) + 1 instead). Deterministic float64 arithmetic."""
    m = 1 << prec
    top = int(np.argmax(p))
    f = np.maximum(np.rint(p * float(m)), 1.0).astype(np.int64)
    f[top] += m - int(f.sum())
    if f[top] < 1:  # only for flat tables with many floored symbols
        f = np.floor(p * float(m - p.size)).astype(np.int64) + 1
        f[top] += m - int(f.sum())
    return f


def tables(probs: list[np.ndarray | None], prec: int):
    """Frequency and cumulative tables (contexts x width; zero rows for constant contexts,
    ``None`` in ``probs``) and the decoder's slot table (contexts x 2**prec, each entry
    ``freq << 32 | (slot - cum) << 16 | symbol index``)."""
    n_ctx = len(probs)
    width = max([p.size for p in probs if p is not None], default=1)
    freq = np.zeros((n_ctx, width), np.int64)
    for i, p in enumerate(probs):
        if p is not None:
            freq[i, : p.size] = quantize(p, prec)
    cum = np.cumsum(freq, axis=1) - freq
    slot = _slots_fast(freq, cum, prec) if _slots_fast is not None else _slots_np(freq, cum, prec)
    return freq, cum, slot


def _slots_np(freq, cum, prec):
    """numpy equivalent of :func:`_slots_loop`."""
    slot = np.zeros((freq.shape[0], 1 << prec), np.uint64)
    for c in range(freq.shape[0]):
        if not freq[c].any():
            continue
        k = np.repeat(np.arange(freq.shape[1], dtype=np.int64), freq[c])
        bias = np.arange(1 << prec, dtype=np.int64) - cum[c, k]
        slot[c] = ((freq[c, k] << 32) | (bias << 16) | k).astype(np.uint64)
    return slot


def _slots_loop(freq, cum, prec):
    """Slot table of the decoder (see :func:`tables`)."""
    n_ctx, width = freq.shape
    slot = np.zeros((n_ctx, 1 << prec), np.uint64)
    for c in range(n_ctx):
        for k in range(width):
            f = freq[c, k]
            base = cum[c, k]
            for j in range(f):
                slot[c, base + j] = np.uint64((f << 32) | (j << 16) | k)
    return slot


def _encode_loop(sym, ctx, const, lo, freq, cum, prec):
    """Words of the rANS stream (uint64 array holding 32-bit values), decoder order."""
    n = sym.size
    out = np.empty(n + 2, np.uint64)
    pos = 0
    x = np.uint64(RANS_L)
    mask32 = np.uint64(0xFFFFFFFF)
    p = np.uint64(prec)
    for i in range(n - 1, -1, -1):
        r = ctx[i]
        if const[r]:
            continue
        s = sym[i] - lo[r]
        f = np.uint64(freq[r, s])
        x_max = np.uint64((RANS_L >> prec) << 32) * f
        if x >= x_max:
            out[pos] = x & mask32
            pos += 1
            x = x >> np.uint64(32)
        x = ((x // f) << p) + (x % f) + np.uint64(cum[r, s])
    res = np.empty(pos + 2, np.uint64)
    res[0] = x >> np.uint64(32)
    res[1] = x & mask32
    for j in range(pos):
        res[2 + j] = out[pos - 1 - j]
    return res


def _decode_loop(words, n, t_len, tcq, nb, center, t1, t2, rc, n_rc, trans, quant, const, lo,
                 slot, prec):
    """Symbols (codes; reconstruction indices r under TCQ, before the zero offset) and a status:
    0 ok, 1 words exhausted, 2 words left over or bad final state."""
    out = np.empty(n, np.int32)
    nw = words.size
    if nw < 2:
        return out, 1
    x = (np.uint64(words[0]) << np.uint64(32)) | np.uint64(words[1])
    pos = 2
    mask = np.uint64((1 << prec) - 1)
    p = np.uint64(prec)
    low = np.uint64(RANS_L)
    m16 = np.uint64(0xFFFF)
    s16 = np.uint64(16)
    s32 = np.uint64(32)
    state = 0
    prev = 0
    step = t_len
    for i in range(n):
        if step == t_len:
            step = 0
            state = 0
            prev = 0
        step += 1
        c = 0
        q = 0
        if tcq:
            q = quant[state]
            c = q
        if nb:
            c = c * 3 + (1 if prev > t1 else 0) + (1 if prev > t2 else 0)
        if n_rc > 1:
            c = c * n_rc + rc[i]
        if const[c]:
            s = lo[c]
        else:
            e = slot[c, x & mask]
            k = np.int64(e & m16)
            x = (e >> s32) * (x >> p) + ((e >> s16) & m16)
            if x < low:
                if pos >= nw:
                    return out, 1
                x = (x << np.uint64(32)) | np.uint64(words[pos])
                pos += 1
            s = lo[c] + k
        if tcq:
            if q == 0:
                out[i] = 2 * s
            elif s > 0:
                out[i] = 2 * s - 1
            elif s < 0:
                out[i] = 2 * s + 1
            else:
                out[i] = 0
            state = trans[state, s & 1]
        else:
            out[i] = s
        if nb:
            prev = abs(s - center)
    if pos != nw or x != low:
        return out, 2
    return out, 0


if numba is not None:
    _encode_fast = numba.njit(cache=True, nogil=True)(_encode_loop)
    _decode_fast = numba.njit(cache=True, nogil=True)(_decode_loop)
    _slots_fast = numba.njit(cache=True, nogil=True)(_slots_loop)
else:  # pragma: no cover
    _encode_fast = _decode_fast = _slots_fast = None


def encode(sym: np.ndarray, ctx: np.ndarray, const, lo, freq, cum, prec: int) -> np.ndarray:
    """uint32 words of the symbols ``sym`` (int64) under contexts ``ctx``."""
    fn = _encode_fast or _encode_loop
    w = fn(np.ascontiguousarray(sym, np.int64), np.ascontiguousarray(ctx, np.int16),
           np.asarray(const, np.bool_), np.asarray(lo, np.int64), freq, cum, int(prec))
    return w.astype(np.uint32)


def decode(words: np.ndarray, n: int, *, t_len: int, tcq: bool, nb: bool, center: int, t1: int,
           t2: int, rc: np.ndarray | None, n_rc: int, trellis, const, lo, slot,
           prec: int) -> np.ndarray:
    """n symbols (int32): codes, or reconstruction indices r under TCQ (before the zero)."""
    fn = _decode_fast or _decode_loop
    rc_a = np.zeros(1, np.int16) if rc is None else np.ascontiguousarray(rc, np.int16)
    trans, quant = trellis
    out, status = fn(np.ascontiguousarray(words, np.uint32), int(n), int(t_len), bool(tcq),
                     bool(nb), int(center), int(t1), int(t2), rc_a, int(n_rc),
                     trans.astype(np.int64), quant.astype(np.int64), np.asarray(const, np.bool_),
                     np.asarray(lo, np.int64), slot, int(prec))
    if status == 1:
        raise FormatError("entropy payload: rANS words exhausted before the last code")
    if status == 2:
        raise FormatError("entropy payload: rANS stream does not end cleanly")
    return out

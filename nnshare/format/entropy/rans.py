"""Static rANS over context-modelled symbols in natural element order (the ``rans`` coder flag).

One 64-bit rANS state, 32-bit renormalisation words (state in [2**31, 2**63)), frequencies
quantised to ``2**prec`` per context. The encoder runs from the last element to the first and
the word list is reversed, so the decoder reads forward: words ``[state_hi, state_lo, w...]``.
A clean stream ends with every word consumed and the state back at 2**31.

The decoder computes each element's context itself (trellis state, neighbour magnitude,
row/column and temporal classes), so sequential models decode in one pass. The loops are
compiled with numba when it is available (the ``fast`` extra). Without numba (or with
``NNSHARE_NO_NUMBA=1``) the same loops run in plain Python integers (:mod:`.rans_py`),
bit-identical, ~1 us per code.
Frequencies come from :mod:`.tables` (integer, or float64 for payloads written before).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError
from . import rans_py

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
if os.environ.get("NNSHARE_NO_NUMBA"):
    numba = None

RANS_L = 1 << 31
MIN_PREC, MAX_PREC = 10, 22
LEGACY_MAX_PREC = 16  # payloads with float tables (before the INT flag)
MAX_LOSS = 0.001  # relative coding loss accepted from a smaller frequency precision
_TABLE_ENTRIES = 1 << 22  # most slot-table entries (contexts x 2**prec): 16 MiB of int32


def available() -> bool:
    """Whether the compiled (numba) rANS loops are available."""
    return numba is not None


def precision(n_tables: int, max_width: int, loss=None, max_prec: int = MAX_PREC) -> int | None:
    """Frequency precision (bits) for ``n_tables`` contexts whose widest alphabet has
    ``max_width`` symbols, or None when no precision fits (:func:`fits`).

    ``loss(prec)``: extra bits of coding at ``prec`` (the encoder's histograms); the smallest
    precision within :data:`MAX_LOSS` of the ideal code length wins (small decoder tables stay
    in cache), else the largest that fits.
    """
    ok = [p for p in range(MIN_PREC + 2, max_prec + 1) if fits(n_tables, max_width, p)]
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


def tables(freqs: list[np.ndarray | None], prec: int):
    """Frequency and cumulative tables (int64, contexts x width; zero rows for constant
    contexts, ``None`` in ``freqs``) and the decoder's slot table (int32, contexts x 2**prec:
    the symbol index whose frequency interval holds each slot)."""
    n_ctx = len(freqs)
    width = max([f.size for f in freqs if f is not None], default=1)
    freq = np.zeros((n_ctx, width), np.int64)
    for i, f in enumerate(freqs):
        if f is not None:
            freq[i, : f.size] = f
    cum = np.cumsum(freq, axis=1) - freq
    slot = np.zeros((n_ctx, 1 << prec), np.int32)
    for c, f in enumerate(freqs):
        if f is not None:
            slot[c] = np.repeat(np.arange(f.size, dtype=np.int32), f)
    return freq, cum, slot


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
                 freq, cum, slot, prec):
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
            j = x & mask
            k = slot[c, j]
            x = np.uint64(freq[c, k]) * (x >> p) + j - np.uint64(cum[c, k])
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
else:  # pragma: no cover
    _encode_fast = _decode_fast = None


def encode(sym: np.ndarray, ctx: np.ndarray, const, lo, freq, cum, prec: int) -> np.ndarray:
    """uint32 words of the symbols ``sym`` (int64) under contexts ``ctx``."""
    fn = _encode_fast or rans_py.encode_loop
    w = fn(np.ascontiguousarray(sym, np.int64), np.ascontiguousarray(ctx, np.int16),
           np.asarray(const, np.bool_), np.asarray(lo, np.int64), freq, cum, int(prec))
    return w.astype(np.uint32)


def decode(words: np.ndarray, n: int, *, t_len: int, tcq: bool, nb: bool, center: int, t1: int,
           t2: int, rc: np.ndarray | None, n_rc: int, trellis, const, lo, freq, cum, slot,
           prec: int) -> np.ndarray:
    """n symbols (int32): codes, or reconstruction indices r under TCQ (before the zero)."""
    fn = _decode_fast or rans_py.decode_loop
    rc_a = np.zeros(1, np.int16) if rc is None else np.ascontiguousarray(rc, np.int16)
    trans, quant = trellis
    out, status = fn(np.ascontiguousarray(words, np.uint32), int(n), int(t_len), bool(tcq),
                     bool(nb), int(center), int(t1), int(t2), rc_a, int(n_rc),
                     trans.astype(np.int64), quant.astype(np.int64), np.asarray(const, np.bool_),
                     np.asarray(lo, np.int64), freq, cum, slot, int(prec))
    if status == 1:
        raise FormatError("entropy payload: rANS words exhausted before the last code")
    if status == 2:
        raise FormatError("entropy payload: rANS stream does not end cleanly")
    return out

"""Static rANS over context-modelled symbols, interleaved over lanes (the ``rans`` coder flag).

64-bit rANS states, 32-bit renormalisation words (state in [2**31, 2**63)), frequencies
quantised to ``2**prec`` per context. Payloads with the ``lanes`` flag (every v2 payload of
>= 2**19 codes) interleave :func:`lanes` (n) states: stripe k of
:data:`.contexts.STRIPE` codes belongs to lane k % L, and the lanes decode side by side
(layout and order: :mod:`.rans_loops`). Other payloads have one state, the layout of the first
payloads. A clean stream ends with every word consumed and every state back at 2**31.

Back ends, bit-identical (the tests compare them): the loops of :mod:`.rans_loops` compiled by
numba when it is installed (the ``fast`` extra); without numba (or ``NNSHARE_NO_NUMBA=1``) the
lanes as numpy vectors (:mod:`.rans_np`) when there are many, else plain Python integers
(:mod:`.rans_py`). Contexts of one symbol (constant records, or tables of width 1, which code
in 0 bits) are never stepped. Frequencies come from :mod:`.tables`.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError
from . import rans_loops, rans_np, rans_py

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
_TABLE_ENTRIES = 1 << 22  # most contexts x 2**prec
LANE_ELEMENTS = 1024  # codes per lane (a lane costs 8 bytes: 0.0625 bit per code)
LANES_FROM = 1 << 19  # payloads of fewer codes keep one state (no overhead; numpy: ~1 us/code)
MAX_LANES = 1024
NUMPY_LANES = 32  # without numba: this many lanes or more run as numpy vectors


def available() -> bool:
    """Whether the compiled (numba) rANS loops are available."""
    return numba is not None


def lanes(n: int) -> int:
    """Lanes of an interleaved payload of n codes: n // 1024 (at most 1024) for n >= 2**19
    (524,288), else 1."""
    return min(MAX_LANES, int(n) // LANE_ELEMENTS) if n >= LANES_FROM else 1


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
    """Whether ``prec`` bits suit the tables (at most 2**prec / 2 symbols per context, contexts
    x 2**prec <= 2**22)."""
    return max_width * 2 <= (1 << prec) and n_tables << prec <= _TABLE_ENTRIES


def const_mask(freqs: list[np.ndarray | None]) -> np.ndarray:
    """Contexts never stepped: constant (None) or a single symbol (it codes in 0 bits)."""
    return np.array([f is None or f.size == 1 for f in freqs], np.bool_)


def tables(freqs: list[np.ndarray | None], prec: int, slot: bool = False):
    """Flat tables of the contexts: ``freq``, ``cum`` (int64; context c's symbols at flat
    indices ``off[c] .. off[c + 1] - 1``; a constant context (None) is one symbol of frequency
    2**prec, which leaves a state unchanged), ``off`` (int64, contexts + 1) and, when ``slot``,
    the decoder's slot table (int32, contexts x 2**prec: the flat index of the symbol whose
    interval holds each slot; else an empty array and the decoder searches ``cum``)."""
    full = np.array([1 << prec], np.int64)
    fs = [full if f is None else np.asarray(f, np.int64) for f in freqs]
    off = np.zeros(len(fs) + 1, np.int64)
    off[1:] = np.cumsum([f.size for f in fs])
    freq = np.concatenate(fs) if fs else np.zeros(0, np.int64)
    cum = np.zeros_like(freq)
    for c, f in enumerate(fs):
        cum[off[c] : off[c + 1]] = np.cumsum(f) - f
    table = np.zeros(0, np.int32)
    if slot:
        table = np.empty(len(fs) << prec, np.int32)
        for c, f in enumerate(fs):
            table[c << prec : (c + 1) << prec] = np.repeat(
                np.arange(off[c], off[c + 1], dtype=np.int32), f)
    return freq, cum, off, table


if numba is not None:
    _encode_fast = numba.njit(cache=True, nogil=True)(rans_loops.encode_loop)
    _decode_fast = numba.njit(cache=True, nogil=True)(rans_loops.decode_loop)
else:  # pragma: no cover
    _encode_fast = _decode_fast = None


def encode(sym: np.ndarray, ctx: np.ndarray, const, lo, freq, cum, off, prec: int, *, t: int,
           n_lanes: int = 1) -> np.ndarray:
    """uint32 words of the symbols ``sym`` (int64) under contexts ``ctx`` (stripes of ``t``)."""
    args = (np.ascontiguousarray(sym, np.int64), np.ascontiguousarray(ctx, np.int16),
            np.asarray(const, np.bool_), np.asarray(lo, np.int64), freq, cum, off, int(prec),
            int(t), int(n_lanes))
    if _encode_fast is not None:
        w = _encode_fast(*args)
    elif n_lanes >= NUMPY_LANES:
        w = rans_np.encode(*args)
    else:
        w = rans_py.encode_loop(*args)
    return w.astype(np.uint32)


def decode(words: np.ndarray, n: int, *, t_len: int, n_lanes: int, tcq: bool, nb: bool,
           center: int, t1: int, t2: int, rc: np.ndarray | None, n_rc: int, trellis, const, lo,
           freq, cum, off, slot, prec: int) -> np.ndarray:
    """n symbols (int32): codes, or reconstruction indices r under TCQ (before the zero)."""
    const = np.asarray(const, np.bool_)
    if const.all() and not (tcq or nb):  # nothing coded: every state must be the clean one
        w = np.asarray(words, np.uint32)
        if w.size != 2 * n_lanes or np.any(w[0::2] != 0) or np.any(w[1::2] != RANS_L):
            raise FormatError("entropy payload: rANS stream does not end cleanly")
        lo_a = np.asarray(lo, np.int32)
        return np.full(n, lo_a[0], np.int32) if rc is None or n_rc == 1 else lo_a[rc]
    if _decode_fast is not None:
        fn = _decode_fast
    else:
        fn = rans_np.decode if n_lanes >= NUMPY_LANES else rans_py.decode_loop
    rc_a = np.zeros(1, np.int16) if rc is None else np.ascontiguousarray(rc, np.int16)
    trans, quant = trellis
    out, status = fn(np.ascontiguousarray(words, np.uint32), int(n), int(t_len), int(n_lanes),
                     bool(tcq), bool(nb), int(center), int(t1), int(t2), rc_a, int(n_rc),
                     trans.astype(np.int64), quant.astype(np.int64), np.asarray(const, np.bool_),
                     np.asarray(lo, np.int64), freq, cum, off, slot, int(prec))
    if status == 1:
        raise FormatError("entropy payload: rANS words exhausted before the last code")
    if status == 2:
        raise FormatError("entropy payload: rANS stream does not end cleanly")
    return out

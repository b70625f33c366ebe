"""Static rANS over context-modelled symbols, interleaved over lanes (the ``rans`` coder flag).

64-bit rANS states, 32-bit renormalisation words (state in [2**31, 2**63)), frequencies
quantised to ``2**prec`` per context. Payloads with the ``lanes`` flag (every v2 payload of
>= 2**19 codes) interleave :func:`lanes` (n) states: stripe k of
:data:`.contexts.STRIPE` codes belongs to lane k % L, and the lanes decode side by side
(layout and order: :mod:`.rans_loops`). Other payloads have one state, the layout of the first
payloads. A clean stream ends with every word consumed and every state back at 2**31.

Back ends, bit-identical (the tests compare them): the loops of :mod:`.rans_loops` compiled by
numba when it is installed (the ``fast`` extra; imported on first use, and by a decoder only for a
stream of :data:`NUMBA_FROM` codes or more, or once loaded: :func:`use_compiled`); else (or with
``NNSHARE_NO_NUMBA=1``) the lanes as numpy vectors (:mod:`.rans_np`) when there are many, else
plain Python integers (:mod:`.rans_py`). Contexts of one symbol (constant records, or tables of
width 1, which code in 0 bits) are never stepped. Frequencies come from :mod:`.tables`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np

from ..errors import FormatError
from . import rans_loops, rans_np, rans_py

RANS_L = 1 << 31
MIN_PREC, MAX_PREC = 10, 22
LEGACY_MAX_PREC = 16  # payloads with float tables (before the INT flag)
MAX_LOSS = 0.001  # relative coding loss accepted from a smaller frequency precision
_TABLE_ENTRIES = 1 << 22  # most contexts x 2**prec
LANE_ELEMENTS = 1024  # codes per lane (a lane costs 8 bytes: 0.0625 bit per code)
LANES_FROM = 1 << 19  # payloads of fewer codes keep one state (no overhead; numpy: ~1 us/code)
MAX_LANES = 1024
NUMPY_LANES = 32  # without numba: this many lanes or more run as numpy vectors


NUMBA_FROM = 1 << 22  # decode with numba from this many codes in the stream (or once loaded)
PYTHON_MAX = 1 << 18  # or from this many codes in a payload the plain-Python path would decode


def available() -> bool:
    """Whether the compiled (numba) rANS loops are available (numba installed, and
    ``NNSHARE_NO_NUMBA`` unset). Does not import numba."""
    if os.environ.get("NNSHARE_NO_NUMBA"):
        return False
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a blocked or broken installation
        return False


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
    run = np.cumsum(freq) - freq  # running sum; each context's share starts at off[c]
    cum = run - np.repeat(run[off[:-1]], np.diff(off)) if freq.size else freq.copy()
    table = np.zeros(0, np.int32)
    if slot:  # every context's frequencies sum to 2**prec: its slots follow the previous ones
        table = np.repeat(np.arange(freq.size, dtype=np.int32), freq)
        if table.size != len(fs) << prec:
            raise FormatError("entropy payload: a context's frequencies do not sum to 2**prec")
    return freq, cum, off, table


def local_slots(slot: np.ndarray, off: np.ndarray, prec: int) -> np.ndarray:
    """The compiled decoder's slot table: each slot's symbol within its context (``slot`` of
    :func:`tables` less the context's first flat index) as uint8, uint16 or int32, the smallest
    that holds the widest alphabet (a smaller table stays in cache)."""
    if not slot.size:
        return slot
    w = int(np.diff(off).max())
    dt = np.uint8 if w <= 1 << 8 else np.uint16 if w <= 1 << 16 else np.int32
    loc = slot.reshape(-1, 1 << prec) - off[:-1, None].astype(np.int32)
    return loc.astype(dt).reshape(-1)


class _Unloaded:
    """Placeholder of a compiled loop numba has not loaded yet (importing numba and loading its
    cache costs ~0.2 s + ~0.5 s, more than the numpy path spends on a small stream)."""

    def __repr__(self) -> str:
        return "<numba loop, loaded on first use>"


_UNLOADED = _Unloaded()
#: The compiled loops: _UNLOADED until first used, None when numba is absent (or switched off:
#: ``NNSHARE_NO_NUMBA``; the tests set None to run the numpy/Python paths).
_encode_fast = _decode_fast = _UNLOADED if available() else None


def _compiled(name: str):
    """The compiled loop ``name`` ("encode" or "decode"), loading numba on first use."""
    global _encode_fast, _decode_fast
    fn = _encode_fast if name == "encode" else _decode_fast
    if fn is _UNLOADED:
        try:
            import numba
        except ImportError:  # pragma: no cover - found but not importable
            _encode_fast = _decode_fast = None
            return None
        _encode_fast = numba.njit(cache=True, nogil=True)(rans_loops.encode_loop)
        _decode_fast = numba.njit(cache=True, nogil=True)(rans_loops.decode_loop)
        fn = _encode_fast if name == "encode" else _decode_fast
    return fn


def load_compiled() -> bool:
    """Load numba's loops now (a long-running receiver then decodes every stream with them);
    False when numba is unavailable."""
    return _decode_fast is not None and _compiled("decode") is not None


def use_compiled(n: int, n_lanes: int, stream_codes: int = 0) -> bool:
    """Whether a decode of ``n`` codes over ``n_lanes`` lanes runs the compiled loop: numba is
    available and already loaded (numba imported by anyone: a sender, a trellis search), or the
    stream holds at least :data:`NUMBA_FROM` codes
    (``stream_codes``), or the payload would take the plain-Python path (fewer than
    :data:`NUMPY_LANES` lanes, ~1 us per code) for :data:`PYTHON_MAX` codes or more. Below
    that, loading numba (~0.7 s) costs more than the numpy path it saves. Same result either
    way."""
    fn = _decode_fast
    if fn is None:
        return False
    return (fn is not _UNLOADED or "numba" in sys.modules  # its import is paid already
            or max(n, stream_codes) >= NUMBA_FROM or (n_lanes < NUMPY_LANES and n >= PYTHON_MAX))


def encode(sym: np.ndarray, ctx: np.ndarray, const, lo, freq, cum, off, prec: int, *, t: int,
           n_lanes: int = 1) -> np.ndarray:
    """uint32 words of the symbols ``sym`` (integers; the compiled loop takes int32 as they
    are, the others int64) under contexts ``ctx`` (stripes of ``t``)."""
    fast = _compiled("encode") if _encode_fast is not None else None  # the sender loads numba
    narrow = fast is not None and np.asarray(sym).dtype == np.int32
    args = (np.ascontiguousarray(sym, np.int32 if narrow else np.int64),
            np.ascontiguousarray(ctx, np.int16), np.asarray(const, np.bool_),
            np.asarray(lo, np.int64), freq, cum, off, int(prec), int(t), int(n_lanes))
    if fast is not None:  # for its other loops anyway
        w = fast(*args[:4], rans_loops.packed(freq, cum), *args[6:])
    elif n_lanes >= NUMPY_LANES:
        w = rans_np.encode(*args)
    else:
        w = rans_py.encode_loop(*args)
    return w.astype(np.uint32, copy=False)


_TRELLIS64: dict = {}  # id of a trellis' tables -> (tables, int64 copies)


def _int64_trellis(trellis) -> tuple[np.ndarray, np.ndarray]:
    """(transitions, quantizer ids) as int64 for the loops, converted once per trellis."""
    key = (id(trellis[0]), id(trellis[1]))
    hit = _TRELLIS64.get(key)
    if hit is None or hit[0] is not trellis[0] or hit[1] is not trellis[1]:
        if len(_TRELLIS64) >= 8:  # the module's trellises, or a caller's own: keep a few
            _TRELLIS64.clear()
        hit = _TRELLIS64[key] = (trellis[0], trellis[1], *(np.asarray(t).astype(np.int64)
                                                           for t in trellis))
    return hit[2], hit[3]


def decode(words: np.ndarray, n: int, *, t_len: int, n_lanes: int, tcq: bool, nb: bool,
           center: int, t1: int, t2: int, rc: np.ndarray | None, n_rc: int, trellis, const, lo,
           freq, cum, off, slot, prec: int, stream_codes: int | None = None, scale=None,
           add: int = 0):
    """n symbols (int32): codes, or reconstruction indices r under TCQ (before the zero).
    ``stream_codes``: elements of the whole stream, for :func:`use_compiled`. With ``scale``
    (a float32): ``(values, min, max)``, values = float32(symbol + ``add``) * scale (n float32,
    made by the compiled loop in its pass, else from the symbols), min/max of the symbols."""
    const = np.asarray(const, np.bool_)
    if const.all() and not (tcq or nb):  # nothing coded: every state must be the clean one
        w = np.asarray(words, np.uint32)
        if w.size != 2 * n_lanes or np.any(w[0::2] != 0) or np.any(w[1::2] != RANS_L):
            raise FormatError("entropy payload: rANS stream does not end cleanly")
        lo_a = np.asarray(lo, np.int32)
        out = np.full(n, lo_a[0], np.int32) if rc is None or n_rc == 1 else lo_a[rc]
        return out if scale is None else scaled(out, add, scale)
    fn = _compiled("decode") if use_compiled(n, n_lanes, stream_codes or 0) else None
    if fn is None:
        fn = rans_np.decode if n_lanes >= NUMPY_LANES else rans_py.decode_loop
    rc_a = np.zeros(1, np.int16) if rc is None else np.ascontiguousarray(rc, np.int16)
    trans, quant = _int64_trellis(trellis)
    w = np.ascontiguousarray(words, np.uint32)
    head = (int(t_len), int(n_lanes), bool(tcq), bool(nb), int(center), int(t1), int(t2), rc_a,
            int(n_rc), trans, quant,
            np.asarray(const, np.bool_), np.asarray(lo, np.int64))
    vals = np.empty(0 if scale is None else n, np.float32)
    sc = np.array([0.0 if scale is None else scale], np.float32)
    if fn is _decode_fast:  # symbols within their context, padded words, packed freq/cum
        slot = local_slots(np.asarray(slot), np.asarray(off), int(prec))
        out, status, mn, mx = fn(rans_loops.padded(w, int(n_lanes), int(t_len)), w.size, int(n),
                                 *head, rans_loops.packed(freq, cum), off, slot, int(prec), vals,
                                 int(add), sc)
    else:
        out, status = fn(w, int(n), *head, freq, cum, off, slot, int(prec))
        vals = None
    if status == 1:
        raise FormatError("entropy payload: rANS words exhausted before the last code")
    if status == 2:
        raise FormatError("entropy payload: rANS stream does not end cleanly")
    if scale is None:
        return out
    return scaled(out, add, scale) if vals is None else (vals, int(mn), int(mx))


def scaled(sym: np.ndarray, add: int, scale) -> tuple[np.ndarray, int, int]:
    """(float32(sym + add) * scale, min, max of sym): the unfused path of :func:`decode`
    (the int32 + add is exact, then one float32 multiply, as the compiled loop does)."""
    if not sym.size:
        return np.zeros(0, np.float32), 0, -1
    v = np.multiply(sym + np.int32(add), np.float32(scale), dtype=np.float32, casting="unsafe")
    return v, int(sym.min()), int(sym.max())

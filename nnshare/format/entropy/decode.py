"""Decoding entropy-coded payloads (the receiver): header, contexts, tables, back end.

rANS payloads decode in one pass, lanes side by side (:mod:`.rans`: compiled by numba when
installed, else numpy vectors over the lanes or plain Python). Range-coded payloads
(:mod:`.range_coder`, numpy and Python only) were coded stripe step by stripe step (sequential
models: neighbour, TCQ) or context by context (others), each run in ascending order of position.
Every table is charged against the decoding budget (:mod:`..budget`) before it is built.
"""

from __future__ import annotations

import numpy as np

from .. import budget as bud
from ..errors import FormatError
from . import contexts as cx
from . import range_coder as rcd
from . import rans, tables
from .dists import CONST, KIND_NAMES
from .header import K_T, MAX_CODE_RANGE, NEIGHBOUR, ROWCOL, TCQ, TCQ8, TEMPORAL, PayloadHeader


def check_context(context, n: int, error=FormatError) -> np.ndarray | None:
    """The temporal context as int64 (n values) or None; ``error`` if its shape is wrong."""
    if context is None:
        return None
    c = np.asarray(context)
    if c.shape != (n,) or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise error(f"temporal context must be {n} integers, got shape {c.shape} {c.dtype}")
    return c.astype(np.int64)


def element_contexts(h: PayloadHeader, n: int, context: np.ndarray | None) -> np.ndarray | None:
    """Per-element row/column x temporal context (int16, n) or None when the model has none."""
    rc = cx.rowcol_ctx(h.rows, h.cols, h.k_col) if h.flags & ROWCOL else None
    if h.flags & TEMPORAL:
        tc = cx.temporal_ctx(context - (h.zero if h.flags & TCQ else 0), h.t_thr)
        rc = tc if rc is None else rc * K_T + tc
    return rc


def decode_codes(
    payload: bytes | memoryview,
    n: int,
    qmin: int,
    qmax: int,
    *,
    context: np.ndarray | None = None,
) -> np.ndarray:
    """Decode ``n`` codes (int32, values in ``[qmin, qmax]``) from an entropy-coded payload.

    ``context``: the encoder's temporal context array (n ints), needed by temporal models.
    Raises FormatError on any corrupted, truncated or inconsistent payload, or a missing context.
    """
    return _decode(payload, n, qmin, qmax, context, None)


def decode_values(payload: bytes | memoryview, n: int, qmin: int, qmax: int, scale, *,
                  context: np.ndarray | None = None) -> np.ndarray:
    """``float32(code) * float32(scale)`` of :func:`decode_codes`' codes, bit for bit, the
    same checks and errors; the compiled rANS loop dequantizes in its pass (no int32 codes)."""
    return _decode(payload, n, qmin, qmax, context, np.float32(scale))


def _decode(payload, n, qmin: int, qmax: int, context, scale) -> np.ndarray:
    if not (isinstance(n, int | np.integer) and n >= 0):
        raise FormatError(f"bad element count {n!r}")
    if not 0 <= qmax - qmin <= MAX_CODE_RANGE:
        raise FormatError(f"bad code range [{qmin}, {qmax}]")
    n = int(n)
    size = len(memoryview(payload).cast("B"))
    budget = bud.current(size)
    if budget.version == 0:  # a bare payload (a stream checked its header already)
        budget.check_elements(n)
    h, words = PayloadHeader.parse(payload, n, qmin, qmax)
    budget.charge_tables(h.table_entries, "entropy payload")
    context = check_context(context, n)
    if h.flags & TEMPORAL and context is None:
        raise FormatError("payload uses a temporal context (previous update) the receiver lacks")
    if n == 0:
        return np.zeros(0, np.int32 if scale is None else np.float32)
    zero = int(h.zero) if h.flags & TCQ else 0
    try:
        rc = element_contexts(h, n, context)
        if h.rans_prec:
            res = _decode_rans(h, words, n, rc, budget.version, size, budget.elements, scale, zero)
        else:
            res = _decode_range(h, words, n, rc, size)
            if scale is not None:
                res = rans.scaled(res, zero, scale)
    except (IndexError, ValueError, OverflowError) as e:  # numpy on inconsistent fields
        raise FormatError(f"entropy payload inconsistent: {e}") from None
    if scale is not None:
        vals, mn, mx = res
        if mn + zero < qmin or mx + zero > qmax:
            raise FormatError(f"decoded codes outside [{qmin}, {qmax}]")
        return vals
    sym = res
    if zero:
        sym += np.int32(zero)
    if sym.min() < qmin or sym.max() > qmax:
        raise FormatError(f"decoded codes outside [{qmin}, {qmax}]")
    return np.ascontiguousarray(sym, dtype=np.int32)


def payload_lanes(h: PayloadHeader, n: int) -> int:
    """rANS lanes of a payload: :func:`.rans.lanes` (n) with the lanes flag, else 1."""
    return rans.lanes(n) if h.lanes else 1


def _decode_rans(h: PayloadHeader, words: np.ndarray, n: int, rc, version: int,
                 size: int, stream_codes: int, scale=None, add: int = 0):
    if version >= 2 and not h.lanes and rans.lanes(n) > 1:
        raise FormatError(f"entropy payload: a v2 rANS payload of {n} codes must interleave "
                          f"{rans.lanes(n)} lanes")
    freqs = tables.context_freqs(h.dists, h.rans_prec, h.int_tables)
    const = rans.const_mask(freqs)
    slot = bud.slot_table_ok(len(freqs), h.rans_prec, size)
    freq, cum, off, slot_t = rans.tables(freqs, h.rans_prec, slot=slot)
    return rans.decode(
        words, n, t_len=cx.stripes(n)[1], n_lanes=payload_lanes(h, n), tcq=bool(h.flags & TCQ),
        nb=bool(h.flags & NEIGHBOUR), center=h.center, t1=h.t1, t2=h.t2, rc=rc, n_rc=h.n_rc,
        trellis=cx.TRELLISES[8 if h.flags & TCQ8 else 4], const=const,
        lo=[d.lo for d in h.dists], freq=freq, cum=cum, off=off, slot=slot_t, prec=h.rans_prec,
        stream_codes=stream_codes, scale=scale, add=add)


def _cdfs(h: PayloadHeader) -> list:
    """Range-coder cumulative tables of the contexts (None for a constant context)."""
    if h.int_tables:
        return [None if f is None else rcd.cdf_from_freqs(f)
                for f in tables.context_freqs(h.dists, rcd.PRECISION, True)]
    return [None if d.kind == CONST else rcd.cdf_from_floats(d.probs()) for d in h.dists]


def _decode_runs(dec, h: PayloadHeader, ctx: np.ndarray, cdfs: list) -> np.ndarray:
    """Decode one batch: symbols whose contexts are ``ctx``, coded context by context."""
    counts = np.bincount(ctx, minlength=len(h.dists))
    dec.charge(int(sum(int(counts[c]) for c in np.flatnonzero(counts) if cdfs[c] is not None)))
    order = np.argsort(ctx.astype(np.int64), kind="stable")
    vals = np.empty(ctx.size, np.int32)
    pos = 0
    for c in np.flatnonzero(counts):
        m = int(counts[c])
        d = h.dists[c]
        vals[pos : pos + m] = d.lo if cdfs[c] is None else dec.decode(cdfs[c], m) + d.lo
        pos += m
    out = np.empty(ctx.size, np.int32)
    out[order] = vals
    return out


def _decode_range(h: PayloadHeader, words: np.ndarray, n: int, rc, size: int) -> np.ndarray:
    dec = rcd.RangeDecoder(words, bud.range_symbol_allowance(size))
    cdfs = _cdfs(h)
    if not h.flags & (NEIGHBOUR | TCQ):
        out = _decode_runs(dec, h, rc if rc is not None else np.zeros(n, np.int16), cdfs)
        dec.finish()
        return out
    n_s, t = cx.stripes(n)
    sym2 = np.zeros((t, n_s), np.int32)  # step-major; r (not k) under TCQ
    rc2 = None
    if rc is not None:
        rc2 = np.zeros(n_s * t, np.int16)
        rc2[:n] = rc
        rc2 = np.ascontiguousarray(rc2.reshape(n_s, t).T)
    state = np.zeros(n_s, np.int8)
    trans, quant = cx.TRELLISES[8 if h.flags & TCQ8 else 4]
    prev = np.zeros(n_s, np.int64)
    for step in range(t):
        a = cx.active(n, n_s, t, step)
        ctx = np.zeros(a, np.int16)
        if h.flags & TCQ:
            q = quant[state[:a]]
            ctx = q.astype(np.int16)
        if h.flags & NEIGHBOUR:
            ctx = ctx * 3 + cx.neighbour_ctx(prev[:a], h.t1, h.t2)
        if rc2 is not None:
            ctx = ctx * h.n_rc + rc2[step, :a]
        s = _decode_runs(dec, h, ctx.astype(np.int16), cdfs)
        if h.flags & TCQ:
            sym2[step, :a] = cx.k_to_r(s, q)
            state[:a] = trans[state[:a], s & 1]
        else:
            sym2[step, :a] = s
        if h.flags & NEIGHBOUR:
            prev[:a] = np.abs(s - h.center)
    dec.finish()
    return sym2.T.reshape(-1)[:n]


def describe(payload: bytes | memoryview, n: int, qmin: int, qmax: int) -> dict:
    """Model name, coder, per-context distribution kinds and byte split of a payload (for
    ``inspect``)."""
    h, words = PayloadHeader.parse(payload, n, qmin, qmax)
    coded = 4 * words.size
    return {
        "model": h.model,
        "coder": f"rans{h.rans_prec}" if h.rans_prec else "range",
        "tables": "integer" if h.int_tables else "float64",
        "contexts": len(h.dists),
        "table_entries": h.table_entries,
        "lanes": payload_lanes(h, n) if h.rans_prec else 0,
        "dists": [KIND_NAMES[d.kind] for d in h.dists],
        "side_info_bytes": len(memoryview(payload)) - coded - 4,
        "coded_bytes": coded,
        "crc_bytes": 4,
    }

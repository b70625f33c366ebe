"""The rANS loops with the lanes as numpy vectors: the path without numba for many lanes.

Same layout, order and results as :mod:`.rans_loops` (see there): one numpy step decodes (or
encodes) one element of every active lane; the lanes that renormalise take consecutive words in
ascending lane order. Per-element inputs are laid out step-major first (one row per step, one
column per lane) for the encoder; the decoder writes its output in element order through
strided views (no step-major copy), so a step is ~15 numpy calls (~20 us) plus ~20 ns per code:
with the lane counts of :func:`.rans.lanes` a 1M-code payload decodes within ~2-3x of numba.
States are int64 (they stay below 2**63). A constant context is a one-symbol table of frequency
2**prec, which leaves the state unchanged, as the scalar loops' skipping does.
"""

from __future__ import annotations

import numpy as np

RANS_L = 1 << 31
_M32 = (1 << 32) - 1
EXPAND_MAX = 1 << 16  # slot tables up to this many entries are expanded per slot (13 B each)


def _shape(n: int, t: int, lanes: int) -> tuple[int, int]:
    """(rounds, steps) of n codes in stripes of t over ``lanes`` lanes."""
    n_s = -(-n // t)
    rounds = -(-n_s // lanes)
    return rounds, rounds * t


def _active(n: int, t: int, lanes: int, r: int, s: int) -> int:
    """Lanes holding an element at step ``s`` of round ``r`` (a prefix of the lanes)."""
    first = r * lanes * t + s  # element of lane 0
    return max(0, min(lanes, -(-(n - first) // t)))


def step_major(a: np.ndarray, n: int, t: int, lanes: int, dtype) -> np.ndarray:
    """Per-element values (n) as (steps, lanes): row r*t + s holds step s of round r."""
    rounds, steps = _shape(n, t, lanes)
    pad = np.zeros(rounds * lanes * t, dtype)
    pad[:n] = a
    return np.ascontiguousarray(pad.reshape(rounds, lanes, t).transpose(0, 2, 1)).reshape(steps, lanes)


def encode(sym, ctx, const, lo, freq, cum, off, prec, t, lanes):
    """Words (uint64 array of 32-bit values), decoder order."""
    n = sym.size
    rounds, _ = _shape(n, t, lanes)
    idx = step_major(off[ctx] + sym - lo[ctx], n, t, lanes, np.int64)
    x = np.full(lanes, RANS_L, np.int64)
    bound = (RANS_L >> prec) << 32
    chunks = []
    for r in range(rounds - 1, -1, -1):
        for s in range(t - 1, -1, -1):
            a = _active(n, t, lanes, r, s)
            if a == 0:
                continue
            i = idx[r * t + s, :a]
            f = freq[i]
            xj = x[:a]
            emit = xj >= bound * f
            if emit.any():
                chunks.append((xj[emit] & _M32)[::-1])
                xj = np.where(emit, xj >> 32, xj)
            d, m = np.divmod(xj, f)
            x[:a] = (d << prec) + m + cum[i]
    head = np.empty(2 * lanes, np.int64)
    head[0::2] = x >> 32
    head[1::2] = x & _M32
    body = np.concatenate(chunks)[::-1] if chunks else np.zeros(0, np.int64)
    return np.concatenate([head, body]).astype(np.uint64)


def _padded(rc: np.ndarray, n: int, t: int, lanes: int, prec: int) -> np.ndarray:
    """Row/column contexts shifted by ``prec`` (int32), padded to (rounds, lanes, t): element
    e of lane j, round r, step s at [r, j, s] (a step reads the strided view [r, :, s])."""
    rounds, _ = _shape(n, t, lanes)
    pad = np.zeros(rounds * lanes * t, np.int32)
    pad[:n] = rc
    pad <<= prec
    return pad.reshape(rounds, lanes, t)


def decode(words, n, t, lanes, tcq, nb, center, t1, t2, rc, n_rc, trans, quant, const, lo,
           freq, cum, off, slot, prec):
    """Symbols (int32; r under TCQ, before the zero offset) and a status (see rans_loops).

    Memory beyond the output (int32, padded to whole rounds of stripes): the words as int64
    (2 bytes per payload byte), row/column contexts (int32 per code, when the model has them)
    and, for a slot table of at most :data:`EXPAND_MAX` entries, per-slot copies of the
    frequency, bias and result (larger slot tables are looked up through the slot table)."""
    rounds, _ = _shape(n, t, lanes)
    nw = words.size
    if nw < 2 * lanes:
        return np.zeros(n, np.int32), 1
    w64 = words.astype(np.int64)
    x = (w64[0 : 2 * lanes : 2] << 32) | w64[1 : 2 * lanes : 2]
    pos = 2 * lanes
    mask = (1 << prec) - 1
    n_ctx = off.size - 1
    ctx_of = np.repeat(np.arange(n_ctx, dtype=np.int64), np.diff(off))
    val = lo[ctx_of] + (np.arange(off[-1]) - off[ctx_of])  # symbol value of each flat entry
    # per flat entry, what a decoded symbol yields: the output (r under TCQ: the context holds
    # the quantizer), the trellis parity and the neighbour class of the next element
    rq = ctx_of // (3 * n_rc if nb else n_rc) if tcq else 0
    res_v = (2 * val - rq * np.sign(val) if tcq else val).astype(np.int32)
    par = (val & 1).astype(np.int64)
    mag = np.abs(val - center)
    nbc = ((mag > t1).astype(np.int64) + (mag > t2)) if nb else None
    del mag
    bias = key = None
    expand = 0 < slot.size <= EXPAND_MAX
    if expand:  # per slot: frequency, bias (slot - cumulative) and what the symbol yields
        bias = ((np.arange(slot.size, dtype=np.int64) & mask) - cum[slot]).astype(np.int32)
        freq, res_v, par = freq[slot].astype(np.int32), res_v[slot], par[slot].astype(np.int8)
        nbc = nbc[slot].astype(np.int8) if nb else None
        slot = None
    elif not slot.size:  # binary search on the cumulative tables, made one ascending key
        key = cum + (ctx_of << prec)
        slot = None
    del ctx_of, val
    csr = _padded(rc, n, t, lanes, prec) if n_rc > 1 else None
    seq = tcq or nb
    stride = n_rc << prec  # context weight of the sequential part
    q3 = quant.astype(np.int64) * (3 if nb else 1)
    trans_f = trans.reshape(-1).astype(np.int64)
    out = np.zeros((rounds, lanes, t), np.int32)  # element-major: a step writes [r, :a, s]
    state = np.zeros(lanes, np.int64)
    prev = np.zeros(lanes, np.int64)  # neighbour class 0..2 of the previous element
    for r in range(rounds):
        last = r == rounds - 1
        a = lanes
        for s in range(t):
            if last:
                a = _active(n, t, lanes, r, s)
                if a == 0:
                    break
            if s == 0 and seq:
                state[:] = 0
                prev[:] = 0
            cs = None if csr is None else csr[r, :a, s]
            if seq:
                part = q3.take(state[:a]) if tcq else None
                if nb:
                    part = prev[:a] if part is None else part + prev[:a]
                cs = part * stride if cs is None else part * stride + cs
            xj = x if a == lanes else x[:a]
            jj = xj & mask
            k = jj if cs is None else cs + jj
            if expand:
                xn = freq.take(k) * (xj >> prec) + bias.take(k)
            else:
                k = slot.take(k) if slot is not None else np.searchsorted(key, k, side="right") - 1
                xn = freq.take(k) * (xj >> prec) + (jj - cum.take(k))
            need = np.flatnonzero(xn < RANS_L)
            m = need.size
            if m:
                if pos + m > nw:
                    return out.reshape(-1)[:n], 1
                xn[need] = (xn.take(need) << 32) | w64[pos : pos + m]
                pos += m
            if a == lanes:
                x = xn
            else:
                x[:a] = xn
            out[r, :a, s] = res_v.take(k)
            if tcq:
                state[:a] = trans_f.take(state[:a] * 2 + par.take(k))
            if nb:
                prev[:a] = nbc.take(k)
    res = out.reshape(-1)[:n]
    if pos != nw or np.any(x != RANS_L):
        return res, 2
    return res, 0

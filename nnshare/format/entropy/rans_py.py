"""The rANS loops in plain Python integers: the path without numba for few lanes.

Same arithmetic, order and results as :mod:`.rans_loops` (a legal or forged stream never takes a
64-bit state past 2**64, so Python's unbounded integers and numba's uint64 agree; the tests
compare every path bit for bit). Python ints and lists are ~10x faster than numpy scalars in a
loop; with many lanes :mod:`.rans_np` runs the lanes as numpy vectors instead. One state without
a sequential context (the common small payload) takes :func:`decode_one_lane` (~250 ns per
code against ~500), one state with one :func:`decode_one_lane_seq` (~25-55% faster than the
lanes loop).
"""

from __future__ import annotations

import numpy as np

RANS_L = 1 << 31
LIST_MAX = 1 << 18  # table + word entries read as Python lists up to this many
_M32 = (1 << 32) - 1


def encode_loop(sym, ctx, const, lo, freq, cum, off, prec, t, lanes):
    """Words of the stream (uint64 array of 32-bit values), decoder order."""
    sym_l, ctx_l, const_l, lo_l = sym.tolist(), ctx.tolist(), const.tolist(), lo.tolist()
    freq_l, cum_l, off_l = freq.tolist(), cum.tolist(), off.tolist()
    bound = (RANS_L >> prec) << 32
    x = [RANS_L] * lanes
    out = []
    n = len(sym_l)
    n_s = -(-n // t)
    for r in range(-(-n_s // lanes) - 1, -1, -1):
        for s in range(t - 1, -1, -1):
            for j in range(lanes - 1, -1, -1):
                k = r * lanes + j
                e = k * t + s
                if k >= n_s or e >= n:
                    continue
                c = ctx_l[e]
                if const_l[c]:
                    continue
                i = off_l[c] + sym_l[e] - lo_l[c]
                f = freq_l[i]
                xj = x[j]
                if xj >= bound * f:
                    out.append(xj & _M32)
                    xj >>= 32
                x[j] = ((xj // f) << prec) + xj % f + cum_l[i]
    head = []
    for xj in x:
        head += [xj >> 32, xj & _M32]
    return np.array(head + out[::-1], np.uint64)


def decode_loop(words, n, t, lanes, tcq, nb, center, t1, t2, rc, n_rc, trans, quant, const, lo,
                freq, cum, off, slot, prec):
    """Symbols (int32; reconstruction indices r under TCQ, before the zero offset) and a
    status: 0 ok, 1 words exhausted, 2 words left over or a bad final state."""
    if lanes == 1 and not (tcq or nb):
        return decode_one_lane(words, n, rc, n_rc, freq, cum, off, slot, prec, lo)
    if lanes == 1:
        return decode_one_lane_seq(words, n, t, tcq, nb, center, t1, t2, rc, n_rc, trans, quant,
                                   const, lo, freq, cum, off, slot, prec)
    from array import array
    from bisect import bisect_right

    w = _view(words, np.uint32, "I")
    nw = len(w)
    if nw < 2 * lanes:
        return np.zeros(n, np.int32), 1
    x = [w[2 * j] << 32 | w[2 * j + 1] for j in range(lanes)]
    pos = 2 * lanes
    mask = (1 << prec) - 1
    slot_l = _view(slot, np.int32, "i") if slot.size else None
    freq_l, cum_l = _view(freq, np.int64, "q"), _view(cum, np.int64, "q")
    off_l = _view(off, np.int64, "q")
    rc_l = _view(rc, np.int16, "h") if n_rc > 1 else None
    trans_l, quant_l, lo_l = trans.tolist(), quant.tolist(), lo.tolist()  # per context: small
    const_l = _view(const, np.uint8, "B")
    out = array("i", [0]) * n
    state = [0] * lanes
    prev = [0] * lanes
    n_s = -(-n // t)
    status = 0
    for r in range(-(-n_s // lanes)):
        for s in range(t):
            for j in range(lanes):
                k = r * lanes + j
                e = k * t + s
                if k >= n_s or e >= n:
                    break
                if s == 0:
                    state[j] = prev[j] = 0
                c = q = 0
                if tcq:
                    q = c = quant_l[state[j]]
                if nb:
                    c = c * 3 + (prev[j] > t1) + (prev[j] > t2)
                if rc_l is not None:
                    c = c * n_rc + rc_l[e]
                if const_l[c]:
                    v = lo_l[c]
                else:
                    xj = x[j]
                    jj = xj & mask
                    a = off_l[c]
                    if slot_l is not None:
                        i = slot_l[(c << prec) + jj]
                    else:
                        i = bisect_right(cum_l, jj, a, off_l[c + 1]) - 1
                    kk = i - a
                    xj = freq_l[i] * (xj >> prec) + jj - cum_l[i]
                    if xj < RANS_L:
                        if pos >= nw:
                            return np.frombuffer(out, np.int32), 1
                        xj = xj << 32 | w[pos]
                        pos += 1
                    x[j] = xj
                    v = lo_l[c] + kk
                if tcq:
                    out[e] = 2 * v if q == 0 else 2 * v - 1 if v > 0 else 2 * v + 1 if v < 0 else 0
                    state[j] = trans_l[state[j]][v & 1]
                else:
                    out[e] = v
                if nb:
                    prev[j] = abs(v - center)
    if pos != nw or any(xj != RANS_L for xj in x):
        status = 2
    return np.frombuffer(out, np.int32), status


def _view(a: np.ndarray, dtype, code: str) -> memoryview:
    """A flat memoryview of ``a`` as ``dtype`` (items read as Python ints, 4-8 bytes each, no
    list of int objects)."""
    return memoryview(np.ascontiguousarray(a, dtype).reshape(-1)).cast("B").cast(code)


def _list(a: np.ndarray, dtype, code: str) -> list[int]:
    """``a`` flat as a list of Python ints (``code`` unused: the signature of :func:`_view`)."""
    return np.ascontiguousarray(a, dtype).reshape(-1).tolist()


def decode_one_lane(words, n, rc, n_rc, freq, cum, off, slot, prec, lo):
    """:func:`decode_loop` for one state and no sequential context (TCQ / neighbour): the
    elements in order, ~2x faster (one slot look-up or a binary search when the slot table was
    not built, no lane bookkeeping); tables read through memoryviews and the symbols' flat
    indices kept in an int32 array, so its memory is 8 bytes per code beyond the tables and
    words. Same results and statuses."""
    from array import array
    from bisect import bisect_right

    # Python lists index ~25 % faster than memoryviews (callgrind, the digits MLP's payloads);
    # big tables stay views (a list costs ~40 bytes per entry).
    ints = _view if words.size + slot.size + freq.size > LIST_MAX else _list
    w = ints(words, np.uint32, "I")
    nw = len(w)
    if nw < 2:
        return np.zeros(n, np.int32), 1
    x = w[0] << 32 | w[1]
    pos = 2
    mask = (1 << prec) - 1
    fl, cl, sl = ints(freq, np.int64, "q"), ints(cum, np.int64, "q"), ints(slot, np.int32, "i")
    idx = array("i", [0]) * n
    status = 0
    if not slot.size:  # binary search in the context's cumulative table
        ol = ints(off, np.int64, "q")
        rcv = _view(rc, np.int16, "h") if n_rc > 1 else None
        for e in range(n):
            jj = x & mask
            c = rcv[e] if rcv is not None else 0
            i = bisect_right(cl, jj, ol[c], ol[c + 1]) - 1
            x = fl[i] * (x >> prec) + jj - cl[i]
            if x < RANS_L:
                if pos >= nw:
                    status = 1
                    break
                x = x << 32 | w[pos]
                pos += 1
            idx[e] = i
    elif n_rc > 1:
        rcv = _view(rc, np.int16, "h")
        for e in range(n):
            jj = x & mask
            i = sl[rcv[e] << prec | jj]
            x = fl[i] * (x >> prec) + jj - cl[i]
            if x < RANS_L:
                if pos >= nw:
                    status = 1
                    break
                x = x << 32 | w[pos]
                pos += 1
            idx[e] = i
    else:
        for e in range(n):
            jj = x & mask
            i = sl[jj]
            x = fl[i] * (x >> prec) + jj - cl[i]
            if x < RANS_L:
                if pos >= nw:
                    status = 1
                    break
                x = x << 32 | w[pos]
                pos += 1
            idx[e] = i
    ctx_of = np.repeat(np.arange(off.size - 1, dtype=np.int64), np.diff(off))
    val = (np.asarray(lo, np.int64)[ctx_of] + (np.arange(off[-1]) - off[ctx_of])).astype(np.int32)
    out = val.take(np.frombuffer(idx, np.int32))
    if status == 0 and (pos != nw or x != RANS_L):
        status = 2
    return out, status


def decode_one_lane_seq(words, n, t, tcq, nb, center, t1, t2, rc, n_rc, trans, quant, const, lo,
                        freq, cum, off, slot, prec):
    """:func:`decode_loop` for one state with a sequential context (trellis state, neighbour
    class; both restart with each stripe of ``t``): the elements in order, no lane bookkeeping.
    Same results and statuses."""
    from array import array
    from bisect import bisect_right

    w = _view(words, np.uint32, "I")
    nw = len(w)
    if nw < 2:
        return np.zeros(n, np.int32), 1
    x = w[0] << 32 | w[1]
    pos = 2
    mask = (1 << prec) - 1
    fl, cl = _view(freq, np.int64, "q"), _view(cum, np.int64, "q")
    sl = _view(slot, np.int32, "i") if slot.size else None
    rcv = _view(rc, np.int16, "h") if n_rc > 1 else None
    trans_l, quant_l = trans.tolist(), quant.tolist()
    const_l, lo_l, off_l = const.tolist(), lo.tolist(), off.tolist()  # per context: small
    out = array("i", [0]) * n
    for e0 in range(0, n, t):
        state = prev = 0
        for e in range(e0, min(e0 + t, n)):
            c = q = 0
            if tcq:
                q = c = quant_l[state]
            if nb:
                c = c * 3 + (prev > t1) + (prev > t2)
            if rcv is not None:
                c = c * n_rc + rcv[e]
            if const_l[c]:
                v = lo_l[c]
            else:
                jj = x & mask
                a = off_l[c]
                if sl is not None:
                    i = sl[(c << prec) + jj]
                else:
                    i = bisect_right(cl, jj, a, off_l[c + 1]) - 1
                x = fl[i] * (x >> prec) + jj - cl[i]
                if x < RANS_L:
                    if pos >= nw:
                        return np.frombuffer(out, np.int32), 1
                    x = x << 32 | w[pos]
                    pos += 1
                v = lo_l[c] + i - a
            if tcq:
                out[e] = 2 * v if q == 0 else 2 * v - 1 if v > 0 else 2 * v + 1 if v < 0 else 0
                state = trans_l[state][v & 1]
            else:
                out[e] = v
            if nb:
                prev = abs(v - center)
    status = 0 if pos == nw and x == RANS_L else 2
    return np.frombuffer(out, np.int32), status

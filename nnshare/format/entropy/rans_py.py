"""The rANS loops in plain Python integers: the path that runs without numba.

Same arithmetic and the same results as the numba-compiled loops of :mod:`.rans` (a legal or
forged stream never takes the 64-bit state past 2**64, so Python's unbounded integers and
numba's uint64 agree; the tests compare both bit for bit). Python ints and lists are ~10x
faster than numpy scalars in a loop.
"""

from __future__ import annotations

import numpy as np

RANS_L = 1 << 31
_M32 = (1 << 32) - 1


def encode_loop(sym, ctx, const, lo, freq, cum, prec):
    """Words of the rANS stream (uint64 array of 32-bit values), decoder order."""
    sym_l, ctx_l, const_l, lo_l = sym.tolist(), ctx.tolist(), const.tolist(), lo.tolist()
    freq_l, cum_l = freq.tolist(), cum.tolist()
    bound = (RANS_L >> prec) << 32
    x = RANS_L
    out = []
    for i in range(len(sym_l) - 1, -1, -1):
        r = ctx_l[i]
        if const_l[r]:
            continue
        s = sym_l[i] - lo_l[r]
        f = freq_l[r][s]
        if x >= bound * f:
            out.append(x & _M32)
            x >>= 32
        x = ((x // f) << prec) + x % f + cum_l[r][s]
    out.append(x & _M32)
    out.append(x >> 32)
    return np.array(out[::-1], np.uint64)


def decode_loop(words, n, t_len, tcq, nb, center, t1, t2, rc, n_rc, trans, quant, const, lo,
                freq, cum, slot, prec):
    """Symbols (int32; reconstruction indices r under TCQ, before the zero offset) and a
    status: 0 ok, 1 words exhausted, 2 words left over or bad final state."""
    w = words.tolist()
    nw = len(w)
    if nw < 2:
        return np.zeros(n, np.int32), 1
    x = w[0] << 32 | w[1]
    pos = 2
    mask = (1 << prec) - 1
    slot_l, freq_l, cum_l = slot.tolist(), freq.tolist(), cum.tolist()
    rc_l = rc.tolist() if n_rc > 1 else None
    trans_l, quant_l, const_l, lo_l = trans.tolist(), quant.tolist(), const.tolist(), lo.tolist()
    out = [0] * n
    state = prev = 0
    step = t_len
    status = 0
    for i in range(n):
        if step == t_len:
            step = state = prev = 0
        step += 1
        c = q = 0
        if tcq:
            q = c = quant_l[state]
        if nb:
            c = c * 3 + (prev > t1) + (prev > t2)
        if rc_l is not None:
            c = c * n_rc + rc_l[i]
        if const_l[c]:
            s = lo_l[c]
        else:
            j = x & mask
            k = slot_l[c][j]
            x = freq_l[c][k] * (x >> prec) + j - cum_l[c][k]
            if x < RANS_L:
                if pos >= nw:
                    status = 1
                    break
                x = x << 32 | w[pos]
                pos += 1
            s = lo_l[c] + k
        if tcq:
            out[i] = 2 * s if q == 0 else 2 * s - 1 if s > 0 else 2 * s + 1 if s < 0 else 0
            state = trans_l[state][s & 1]
        else:
            out[i] = s
        if nb:
            prev = abs(s - center)
    if status == 0 and (pos != nw or x != RANS_L):
        status = 2
    return np.array(out, np.int32), status

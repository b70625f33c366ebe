"""Compiled TCQ level extraction (issue 19): levels k and quantizer ids q of reconstruction
indices ``r - zero`` along the trellis, each stripe of ``t_len`` values from state 0.

Because every stripe restarts in state 0, the chains of :data:`LANES` stripes are independent:
:func:`levels_lanes` steps them together (value s of every lane, then s + 1), which overlaps
their state lookups that a stripe-at-a-time loop serialises (state -> quantizer -> level ->
state); validity is accumulated per block (no early exit inside one). The stripes after the last
whole block go through :func:`levels_into`, the stripe loop (also the reference in the tests).
Both write into arrays the caller allocates (numba compiles each on its own).
"""

from __future__ import annotations

import numpy as np

LANES = 32


def levels_into(r, zero, t_len, trans, quant, k, q):
    """Write the levels of ``r - zero`` into ``k`` (int32) and ``q`` (int8), stripe by stripe;
    False at the first value that is not on the trellis path."""
    state = 0
    step = t_len
    for i in range(r.size):
        if step == t_len:
            step = 0
            state = 0
        step += 1
        v = r[i] - zero
        qq = quant[state]
        odd = v & 1
        if odd != qq and (qq == 0 or v != 0):  # Q0: even only; Q1: odd or zero
            return False
        kk = (v + qq * ((v > 0) - (v < 0))) >> 1  # Q0: v / 2; Q1: (v + sgn v) / 2 (no branch)
        k[i] = kk
        q[i] = qq
        state = trans[state, kk & 1]
    return True


def levels_lanes(r, zero, t_len, trans, quant, k, q):
    """Write the levels of the whole blocks of :data:`LANES` stripes into ``k`` and ``q``; the
    index where the remaining stripes start, or -1 when a block is not on the trellis path."""
    L = LANES
    blocks = r.size // t_len // L
    st = np.zeros(L, np.int64)
    for b in range(blocks):
        base = b * L * t_len
        for l in range(L):
            st[l] = 0
        bad = 0
        for s in range(t_len):
            for l in range(L):
                i = base + l * t_len + s
                state = st[l]
                v = r[i] - zero
                qq = quant[state]
                odd = v & 1
                bad |= (odd != qq) & ((qq == 0) | (v != 0))
                kk = (v + qq * ((v > 0) - (v < 0))) >> 1
                k[i] = kk
                q[i] = qq
                st[l] = trans[state, kk & 1]
        if bad:
            return -1
    return blocks * L * t_len

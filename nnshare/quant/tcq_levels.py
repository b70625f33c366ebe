"""Compiled TCQ level extraction over stripes side by side (issue 19): levels k and quantizer
ids q of reconstruction indices ``r - zero`` along the trellis, the same integers as
``_entropy_fast._levels_loop``.

Each stripe of ``t_len`` values restarts in state 0, so the chains of :data:`LANES` stripes
are independent; stepping them together (value s of every lane, then s + 1) overlaps their
state lookups, which a stripe-at-a-time loop serialises (state -> quantizer -> level -> state).
Validity is accumulated per block (no early exit inside one), the tail stripe by stripe.
"""

from __future__ import annotations

import numpy as np

LANES = 32


def levels_lanes(r, zero, t_len, trans, quant):
    """(k int32, q int8, valid) of ``r - zero``; stripes of ``t_len``, each from state 0."""
    n = r.size
    k = np.empty(n, np.int32)
    q = np.empty(n, np.int8)
    L = LANES
    blocks = n // t_len // L
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
                bad |= (odd != qq) & ((qq == 0) | (v != 0))  # Q0: even only; Q1: odd or zero
                kk = (v + qq * ((v > 0) - (v < 0))) >> 1
                k[i] = kk
                q[i] = qq
                st[l] = trans[state, kk & 1]
        if bad:
            return k, q, False
    state = 0
    step = t_len
    for i in range(blocks * L * t_len, n):
        if step == t_len:
            step = 0
            state = 0
        step += 1
        v = r[i] - zero
        qq = quant[state]
        odd = v & 1
        if odd != qq and (qq == 0 or v != 0):
            return k, q, False
        kk = (v + qq * ((v > 0) - (v < 0))) >> 1
        k[i] = kk
        q[i] = qq
        state = trans[state, kk & 1]
    return k, q, True

"""The rANS loops over interleaved lanes, written for numba (:mod:`.rans` compiles them).

Layout (:mod:`.rans`): ``L`` lanes, each a 64-bit state; the codes are cut into stripes of ``t``
consecutive elements, stripe ``k`` belongs to lane ``k % L``. Decoding runs round by round
(``r``: stripes ``r*L .. r*L + L - 1``), step by step (``s`` = 0 .. t - 1) and, within a step,
lane by lane in ascending order; a lane that renormalises takes the next 32-bit word. Words:
``[hi_0, lo_0, hi_1, lo_1, ..., renormalisation words in decode order]``. The encoder runs the
same order backwards. With one lane this is the single-state layout of the first payloads.

Tables are flat (:func:`.rans.tables`): context ``c``'s symbols ``0 .. w - 1`` have
frequency ``freq[off[c] + k]`` and cumulative ``cum[off[c] + k]``; the decoder's slot table (when
built) holds each slot's symbol within its context, ``slot[c << prec | j] = k``, in the smallest
unsigned type that fits (:func:`.rans.local_slots`: uint8 for alphabets up to 256, so a table of
96 contexts x 2**13 slots is 768 KB instead of 3 MB of int32 flat indices); else the symbol is
found by binary search on ``cum``.

Speed (issue 19): the decoder resets the lanes once per round, and maps a TCQ level to its
reconstruction index without branches (``2v - q sgn(v)``): the sign of a level is unpredictable,
and that branch cost ~30 % of a TCQ decode on MiniLM. It reads a symbol's frequency and
cumulative count in one 64-bit load and checks word exhaustion once per round against padding
(-10-15 % on MiniLM's embedding).
"""

from __future__ import annotations

import numpy as np

RANS_L = 1 << 31


def encode_loop(sym, ctx, const, lo, fc, off, prec, t, lanes):
    """Words of the stream (uint32), decoder order. ``fc``: each symbol's ``freq << 32 | cum``
    (:func:`packed`); a state renormalises when it reaches ``freq << (63 - prec)`` (=
    ``(2**31 >> prec << 32) * freq``). The renormalisation words are gathered in a buffer that
    starts at n / 16 + 1024 words and doubles when full (a code takes at most one word: no
    8 bytes a code up front)."""
    n = sym.size
    out = np.empty(n // 16 + 1024, np.uint32)
    pos = 0
    x = np.full(lanes, np.uint64(RANS_L), np.uint64)
    mask32 = np.uint64(0xFFFFFFFF)
    p = np.uint64(prec)
    sh = np.uint64(63 - prec)
    n_s = (n + t - 1) // t
    rounds = (n_s + lanes - 1) // lanes
    for r in range(rounds - 1, -1, -1):
        live = min(lanes, n_s - r * lanes)
        for s in range(t - 1, -1, -1):
            for j in range(live - 1, -1, -1):
                e = (r * lanes + j) * t + s
                if e >= n:
                    continue
                c = ctx[e]
                if const[c]:
                    continue
                w = fc[off[c] + sym[e] - lo[c]]
                f = w >> np.uint64(32)
                xj = x[j]
                if xj >= f << sh:
                    if pos == out.size:
                        grown = np.empty(2 * out.size, np.uint32)
                        grown[:pos] = out
                        out = grown
                    out[pos] = np.uint32(xj & mask32)
                    pos += 1
                    xj = xj >> np.uint64(32)
                q = xj // f
                x[j] = (q << p) + (xj - q * f) + (w & mask32)
    res = np.empty(pos + 2 * lanes, np.uint32)
    for j in range(lanes):
        res[2 * j] = np.uint32(x[j] >> np.uint64(32))
        res[2 * j + 1] = np.uint32(x[j] & mask32)
    for q in range(pos):
        res[2 * lanes + q] = out[pos - 1 - q]
    return res


def decode_loop(words, nw, n, t, lanes, tcq, nb, center, t1, t2, rc, n_rc, trans, quant, const,
                lo, fc, off, slot, prec, vals, add, scale):
    """Symbols (codes; reconstruction indices r under TCQ, before the zero offset), a status
    (0 ok, 1 words exhausted, 2 words left over or a bad final state) and the symbols' min and
    max. With ``vals`` of n float32, the symbols go there as ``float32(symbol + add) * scale[0]``
    (dequantized in the same pass; the symbol array is then empty). ``words``: the ``nw``
    words of the payload then at least ``lanes * t`` padding words (:func:`padded`; a round
    takes at most one word per code, so exhaustion is checked once per round). ``fc``: each
    symbol's ``freq << 32 | cum`` (:func:`packed`: one load instead of two). ``slot``: symbols
    within their context per slot (:func:`.rans.local_slots`), or empty (binary search)."""
    fused = vals.size > 0
    out = np.zeros(0 if fused else n, np.int32)
    sc = scale[0]
    mn = np.int64(1) << 62
    mx = -mn
    if nw < 2 * lanes:
        return out, 1, mn, mx
    x = np.empty(lanes, np.uint64)
    for j in range(lanes):
        x[j] = (np.uint64(words[2 * j]) << np.uint64(32)) | np.uint64(words[2 * j + 1])
    pos = 2 * lanes
    mask = np.uint64((1 << prec) - 1)
    p = np.uint64(prec)
    low = np.uint64(RANS_L)
    m32 = np.uint64(0xFFFFFFFF)
    has_slot = slot.size > 0
    state = np.zeros(lanes, np.int64)
    prev = np.zeros(lanes, np.int64)
    n_s = (n + t - 1) // t
    rounds = (n_s + lanes - 1) // lanes
    for r in range(rounds):
        if pos > nw:  # the padding was read: the payload's words ran out in the last round
            return out, 1, mn, mx
        base = r * lanes
        live = min(lanes, n_s - base)  # stripes of this round
        for j in range(live):  # every stripe starts in trellis state 0, no neighbour
            state[j] = 0
            prev[j] = 0
        for s in range(t):
            for j in range(live):
                e = (base + j) * t + s
                if e >= n:  # the short last stripe (the last lane of the last round)
                    break
                c = 0
                q = 0
                if tcq:
                    q = quant[state[j]]
                    c = q
                if nb:
                    pj = prev[j]
                    c = c * 3 + (1 if pj > t1 else 0) + (1 if pj > t2 else 0)
                if n_rc > 1:
                    c = c * n_rc + rc[e]
                if const[c]:
                    v = lo[c]
                else:
                    xj = x[j]
                    jj = xj & mask
                    oc = off[c]
                    if has_slot:
                        i = oc + np.int64(slot[(c << prec) + jj])
                    else:
                        a = oc
                        b = off[c + 1]
                        while b - a > 1:
                            m = (a + b) >> 1
                            if (fc[m] & m32) <= jj:
                                a = m
                            else:
                                b = m
                        i = a
                    w = fc[i]
                    xj = (w >> np.uint64(32)) * (xj >> p) + jj - (w & m32)
                    if xj < low:
                        xj = (xj << np.uint64(32)) | np.uint64(words[pos])
                        pos += 1
                    x[j] = xj
                    v = lo[c] + (i - oc)
                y = v
                if tcq:  # Q0: r = 2v; Q1: r = 2v - sgn(v)
                    y = 2 * v - q * ((v > 0) - (v < 0))
                    state[j] = trans[state[j], v & 1]
                mn = min(mn, y)
                mx = max(mx, y)
                if fused:
                    vals[e] = np.float32(y + add) * sc
                else:
                    out[e] = y
                if nb:
                    prev[j] = abs(v - center)
    if pos > nw:
        return out, 1, mn, mx
    if pos != nw:
        return out, 2, mn, mx
    for j in range(lanes):
        if x[j] != low:
            return out, 2, mn, mx
    return out, 0, mn, mx


def packed(freq, cum):
    """The compiled decoder's symbol table: ``freq << 32 | cum`` (uint64; both < 2**32)."""
    return (np.asarray(freq).astype(np.uint64) << np.uint64(32)) | np.asarray(cum).astype(np.uint64)


def padded(words, lanes, t):
    """uint32 ``words`` then ``lanes * t`` zero words (the decoder's per-round check)."""
    out = np.zeros(words.size + lanes * t, np.uint32)
    out[: words.size] = words
    return out

"""Trellis-coded (dependent) quantization: a 4- or 8-state trellis switching between two
quantizers.

Q0 reconstructs at even multiples of the step ``2k``; Q1 at odd multiples and zero,
``2k - sgn(k)``. The parity of each level k drives the state (``TRANS``), so a receiver rebuilds
the reconstruction index ``r`` from the levels alone; the stream carries ``r`` (plain affine codes
with scale = step) and the entropy coder's "tcq" models code the levels. The trellis restarts in
state 0 at every stripe of ``STRIPE`` elements (as the coder expects), so a Viterbi search runs
over all stripes in parallel.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..format.entropy.contexts import STRIPE, TRELLISES, stripes

try:  # optional accelerator (the "fast" extra); the numpy path below gives the same kind of path
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
if os.environ.get("NNSHARE_NO_NUMBA"):  # force the numpy path (tests, comparisons)
    numba = None

_CHUNK = 1 << 13  # stripes per Viterbi block of the numpy path (bounds memory: ~40 MB)
_RATE_SAMPLE = 256  # arrays of >= 2x this many stripes take their rate tables from every k-th stripe


def _edges(states: int) -> tuple[np.ndarray, ...]:
    """For each new state: its two predecessors and the candidate class of each edge
    (class = 2 * quantizer + level parity: 0 Q0-even, 1 Q0-odd, 2 Q1-even, 3 Q1-odd)."""
    trans, quant = TRELLISES[states]
    inc: list[list[tuple[int, int]]] = [[] for _ in range(states)]
    for st in range(states):
        for par in (0, 1):
            inc[int(trans[st, par])].append((st, 2 * int(quant[st]) + par))
    assert all(len(e) == 2 for e in inc), "every state needs exactly two incoming edges"
    return (np.array([e[0][0] for e in inc]), np.array([e[0][1] for e in inc]),
            np.array([e[1][0] for e in inc]), np.array([e[1][1] for e in inc]))


def _candidates(V: np.ndarray, lam: float, rates, kmin: int):
    """Best reconstruction index of each (quantizer, level parity) class for every value of
    ``V`` (in steps): r and cost arrays, order Q0-even, Q0-odd, Q1-even, Q1-odd.

    Q0 even levels reconstruct at 4Z, odd ones at 4Z + 2; Q1 even levels at 0 and +-(4m - 1),
    odd ones at +-(4m + 1). With ``lam`` > 0 the cost adds ``lam`` * bits of the level.
    """
    a = np.abs(V)
    sg = np.where(V < 0, -1.0, 1.0)
    r0e = 4 * np.floor(V / 4 + 0.5)  # round half up, as the compiled loop
    r0o = 4 * np.floor((V - 2) / 4 + 0.5) + 2
    m = np.maximum(np.floor((a + 1) / 4 + 0.5), 1)
    far = 4 * m - 1
    r1e = np.where(a * a <= (a - far) ** 2, 0.0, far) * sg
    r1o = (4 * np.maximum(np.floor((a - 1) / 4 + 0.5), 0) + 1) * sg
    rs = (r0e, r0o, r1e, r1o)
    ds = [(V - r) ** 2 for r in rs]
    if lam and rates is not None:
        for i, r in enumerate(rs):
            q = i // 2
            k = (r / 2) if q == 0 else (r + np.sign(r)) / 2
            tab = rates[q]
            ds[i] = ds[i] + lam * tab[np.clip(k.astype(np.int64) - kmin, 0, tab.size - 1)]
    return [r.astype(np.int32) for r in rs], ds  # float64 costs, as the compiled loop


def _viterbi(V: np.ndarray, lam: float, rates, kmin: int, states: int) -> np.ndarray:
    from_a, cls_a, from_b, cls_b = _edges(states)
    s, t = V.shape
    rs, ds = _candidates(np.ascontiguousarray(V.T), lam, rates, kmin)  # each (t, s)
    R = np.stack(rs)  # (4, t, s)
    D = np.stack(ds)
    J = np.full((states, s), np.inf)
    J[0] = 0.0
    take = np.empty((t, states, s), bool)
    for step in range(t):
        d = D[:, step]
        ja = J[from_a] + d[cls_a]
        jb = J[from_b] + d[cls_b]
        tk = ja <= jb
        take[step] = tk
        J = np.where(tk, ja, jb)
    out = np.empty((t, s), np.int64)
    state = np.argmin(J, axis=0)
    cols = np.arange(s)
    for step in range(t - 1, -1, -1):
        tk = take[step, state, cols]
        cls = np.where(tk, cls_a[state], cls_b[state])
        out[step] = R[cls, step, cols]
        state = np.where(tk, from_a[state], from_b[state])
    return out.T


def _viterbi_loop(u, lam, rate0, rate1, kmin, t_len, from_a, cls_a, from_b, cls_b):
    """Scalar Viterbi over stripes of ``t_len`` (same candidates and rule as the numpy path).
    Compiled by numba when available."""  # pragma: no cover
    n = u.size
    n_st = from_a.size
    out = np.empty(n, np.int64)
    J = np.empty(n_st)
    NJ = np.empty(n_st)
    br = np.empty((t_len, n_st), np.int64)
    bp = np.empty((t_len, n_st), np.int64)
    cr = np.empty(4)
    cd = np.empty(4)
    n0, n1 = rate0.size, rate1.size
    for start in range(0, n, t_len):
        length = min(t_len, n - start)
        J[:] = np.inf
        J[0] = 0.0
        for t in range(length):
            v = u[start + t]
            a = abs(v)
            sg = -1.0 if v < 0 else 1.0
            cr[0] = 4.0 * math.floor(v / 4.0 + 0.5)
            cr[1] = 4.0 * math.floor((v - 2.0) / 4.0 + 0.5) + 2.0
            m = max(math.floor((a + 1.0) / 4.0 + 0.5), 1.0)
            far = 4.0 * m - 1.0
            cr[2] = (0.0 if a * a <= (a - far) ** 2 else far) * sg
            cr[3] = (4.0 * max(math.floor((a - 1.0) / 4.0 + 0.5), 0.0) + 1.0) * sg
            for c in range(4):
                cd[c] = (v - cr[c]) ** 2
                if lam > 0.0:
                    r = cr[c]
                    if c < 2:
                        idx = min(max(int(r / 2.0) - kmin, 0), n0 - 1)
                        cd[c] += lam * rate0[idx]
                    else:
                        sg1 = 1.0 if r > 0 else (-1.0 if r < 0 else 0.0)
                        idx = min(max(int((r + sg1) / 2.0) - kmin, 0), n1 - 1)
                        cd[c] += lam * rate1[idx]
            for ns in range(n_st):
                ja = J[from_a[ns]] + cd[cls_a[ns]]
                jb = J[from_b[ns]] + cd[cls_b[ns]]
                if ja <= jb:
                    NJ[ns] = ja
                    br[t, ns] = int(cr[cls_a[ns]])
                    bp[t, ns] = from_a[ns]
                else:
                    NJ[ns] = jb
                    br[t, ns] = int(cr[cls_b[ns]])
                    bp[t, ns] = from_b[ns]
            J[:] = NJ
        st = 0
        for s_ in range(1, n_st):
            if J[s_] < J[st]:
                st = s_
        for t in range(length - 1, -1, -1):
            out[start + t] = br[t, st]
            st = bp[t, st]
    return out


def _levels_loop(r, t_len, trans, quant):
    """Levels k and quantizer ids q along a valid trellis path r (stripes of ``t_len``).
    Compiled by numba when available."""  # pragma: no cover
    n = r.size
    k = np.empty(n, np.int64)
    q = np.empty(n, np.int64)
    state = 0
    for i in range(n):
        if i % t_len == 0:
            state = 0
        qq = quant[state]
        v = r[i]
        if qq == 0:
            kk = v // 2
        elif v > 0:
            kk = (v + 1) // 2
        elif v < 0:
            kk = -((-v + 1) // 2)
        else:
            kk = 0
        k[i] = kk
        q[i] = qq
        state = trans[state, kk & 1]
    return k, q


if numba is not None:
    _viterbi_fast = numba.njit(cache=True, nogil=True)(_viterbi_loop)
    _levels_fast = numba.njit(cache=True, nogil=True)(_levels_loop)
else:  # pragma: no cover
    _viterbi_fast = _levels_fast = None


def _kernel(states: int):
    """The compiled Viterbi for a trellis: the unrolled one of :mod:`.tcq_kernels` when its
    edges are this trellis's, else the generic loop."""
    from .tcq_kernels import EDGES, KERNELS

    ok = states in KERNELS and all(tuple(map(int, e)) == x for e, x in zip(_edges(states), EDGES[states],
                                                                       strict=True))
    return KERNELS[states] if ok else _viterbi_fast


def _rate_tables(r: np.ndarray, states: int) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """-log2 p(k | quantizer) tables (bits) from a trellis path's levels, Laplace-smoothed."""
    if _levels_fast is not None:
        trans, quant = TRELLISES[states]
        k, q = _levels_fast(r, STRIPE, trans.astype(np.int64), quant.astype(np.int64))
    else:
        from ..format.entropy.contexts import tcq_levels

        k, q = tcq_levels(r, states)
    kmin = int(k.min()) - 1
    width = int(k.max()) + 2 - kmin
    hist = np.bincount((k - kmin) * 2 + q, minlength=2 * width).reshape(width, 2).T + 0.5
    tables = [-np.log2(h / h.sum()) for h in hist]
    return (tables[0], tables[1]), kmin


def _run(vals, lam, rates, kmin, states: int, t: int) -> np.ndarray:
    """Viterbi paths (int64) of ``vals``: flat, whole stripes of ``t`` (the last may be shorter)."""
    if _viterbi_fast is not None:
        r0, r1 = rates if rates else (np.zeros(1), np.zeros(1))
        return _kernel(states)(vals, float(lam), r0, r1, int(kmin), t, *_edges(states))
    full = vals.size // t * t
    rows = vals[:full].reshape(-1, t)
    parts = [_viterbi(rows[a : a + _CHUNK], lam, rates, kmin, states)
             for a in range(0, rows.shape[0], _CHUNK)]
    if vals.size > full:  # the short last stripe on its own, as the compiled loop
        parts.append(_viterbi(vals[None, full:], lam, rates, kmin, states))
    return np.concatenate([p.reshape(-1) for p in parts])


def tcq_codes(u: np.ndarray, lam: float = 0.0, states: int = 8) -> np.ndarray:
    """Trellis path for values ``u`` given in units of the step: reconstruction indices r (int64).

    ``states``: 8 (the NNC trellis, default) or 4 (the VVC one). ``lam`` > 0 adds ``lam`` *
    rate (bits, estimated from a first distortion-only pass over the whole array, or over every
    k-th stripe of arrays of >= 2 * :data:`_RATE_SAMPLE` stripes) to each squared error (in step²
    units): rate-distortion optimised TCQ.
    """
    u = np.asarray(u, np.float64).reshape(-1)
    return tcq_codes_blocks(lambda a, b: u[a:b], u.size, lam, states, block=0)


#: Values per block of :func:`tcq_codes_blocks` (a multiple of the stripe; ~8 MB of float64).
BLOCK = 1 << 20


def tcq_codes_blocks(values, n: int, lam: float = 0.0, states: int = 8, block: int = BLOCK) -> np.ndarray:
    """:func:`tcq_codes` of the ``n`` values that ``values(a, b)`` returns (float64 ``u[a:b]``, in
    steps), computed ``block`` values (whole stripes) at a time: the same codes, since stripes
    restart in state 0 and the rate tables come from the same sampled stripes. int32 codes
    (and peak memory: the codes plus two blocks) when ``block`` > 0; ``block=0``: one pass over
    ``values(0, n)``, int64 codes."""
    if states not in TRELLISES:
        raise ValueError(f"trellis with {states} states not defined; use 4 or 8")
    if n == 0:
        return np.zeros(0, np.int64 if block <= 0 else np.int32)
    s, t = stripes(n)
    rates, kmin = None, 0
    if lam > 0:  # rates from a distortion-only pass, on an evenly spread sample of big arrays
        if s < 2 * _RATE_SAMPLE:
            first = _run(np.asarray(values(0, n), np.float64), 0.0, None, 0, states, t)
        else:  # whole stripes only: every (s // _RATE_SAMPLE)-th of the n // t full ones
            picks = range(0, n // t, s // _RATE_SAMPLE)
            sample = np.concatenate([values(j * t, j * t + t) for j in picks])
            first = _run(sample, 0.0, None, 0, states, t)
        rates, kmin = _rate_tables(first, states)
        del first
    lam_ = lam if lam > 0 else 0.0
    if block <= 0 or block >= n:
        r = _run(np.ascontiguousarray(values(0, n), np.float64), lam_, rates, kmin, states, t)
        return r if block <= 0 else r.astype(np.int32)
    step = max(t, block // t * t)
    out = np.empty(n, np.int32)
    for a in range(0, n, step):
        b = min(n, a + step)
        out[a:b] = _run(np.ascontiguousarray(values(a, b), np.float64), lam_, rates, kmin, states, t)
    return out


__all__ = ["STRIPE", "tcq_codes", "tcq_codes_blocks"]

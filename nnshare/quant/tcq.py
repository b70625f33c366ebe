"""Trellis-coded (dependent) quantization: a 4-state trellis switching between two quantizers.

Q0 reconstructs at even multiples of the step ``2k``; Q1 at odd multiples and zero,
``2k - sgn(k)``. The parity of each level k drives the state (``TRANS``), so a receiver rebuilds
the reconstruction index ``r`` from the levels alone; the stream carries ``r`` (plain affine codes
with scale = step) and the entropy coder's "tcq" models code the levels. The trellis restarts in
state 0 at every stripe of ``STRIPE`` elements (as the coder expects), so a Viterbi search runs
over all stripes in parallel.
"""

from __future__ import annotations

import numpy as np

from ..format.entropy.contexts import STRIPE, stripes

_CHUNK = 1 << 15  # stripes per Viterbi block (bounds memory to ~40 MB)


def _candidates(v: np.ndarray, q: int, lam: float, rate: np.ndarray | None, kmin: int):
    """Even-level and odd-level candidates (r, cost) of quantizer ``q`` for values ``v`` (steps)."""
    if q == 0:
        ka = np.floor(v / 2)
        kb = ka + 1
        ra, rb = 2 * ka, 2 * kb
    else:
        a = np.abs(v)
        sg = np.where(v < 0, -1.0, 1.0)
        ka = np.floor((a + 1) / 2)
        kb = ka + 1
        ra = np.where(ka > 0, 2 * ka - 1, 0) * sg
        rb = (2 * kb - 1) * sg
        ka, kb = ka * sg, kb * sg
    da = (v - ra) ** 2
    db = (v - rb) ** 2
    if lam and rate is not None:
        last = rate.size - 1
        da = da + lam * rate[np.clip(ka.astype(np.int64) - kmin, 0, last)]
        db = db + lam * rate[np.clip(kb.astype(np.int64) - kmin, 0, last)]
    a_even = (ka.astype(np.int64) & 1) == 0
    re, de = np.where(a_even, ra, rb), np.where(a_even, da, db)
    ro, do = np.where(a_even, rb, ra), np.where(a_even, db, da)
    return re, de, ro, do


def _viterbi(V: np.ndarray, lam: float, rates, kmin: int) -> np.ndarray:
    s, t = V.shape
    VT = np.ascontiguousarray(V.T)
    J = np.full((4, s), np.inf)
    J[0] = 0.0
    br = np.empty((t, 4, s), np.int32)
    bp = np.empty((t, 4, s), np.int8)
    for step in range(t):
        v = VT[step]
        r0e, d0e, r0o, d0o = _candidates(v, 0, lam, rates[0] if rates else None, kmin)
        r1e, d1e, r1o, d1o = _candidates(v, 1, lam, rates[1] if rates else None, kmin)
        nj = np.empty_like(J)
        # (new state, candidate A from state, its r/d, candidate B from state, its r/d)
        for ns, sa, ra, da, sb, rb, db in (
            (0, 0, r0e, d0e, 1, r0o, d0o),
            (2, 0, r0o, d0o, 1, r0e, d0e),
            (1, 2, r1e, d1e, 3, r1o, d1o),
            (3, 2, r1o, d1o, 3, r1e, d1e),
        ):
            ja, jb = J[sa] + da, J[sb] + db
            take_a = ja <= jb
            nj[ns] = np.where(take_a, ja, jb)
            br[step, ns] = np.where(take_a, ra, rb)
            bp[step, ns] = np.where(take_a, sa, sb)
        J = nj
    out = np.empty((t, s), np.int64)
    state = np.argmin(J, axis=0)
    cols = np.arange(s)
    for step in range(t - 1, -1, -1):
        out[step] = br[step, state, cols]
        state = bp[step, state, cols]
    return out.T


def _rate_tables(r: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """-log2 p(k | quantizer) tables (bits) from a trellis path's levels, Laplace-smoothed."""
    from ..format.entropy.contexts import tcq_levels

    k, q = tcq_levels(r)
    kmin = int(k.min()) - 1
    width = int(k.max()) + 2 - kmin
    tables = []
    for qq in (0, 1):
        h = np.bincount(k[q == qq] - kmin, minlength=width).astype(np.float64) + 0.5
        tables.append(-np.log2(h / h.sum()))
    return (tables[0], tables[1]), kmin


def tcq_codes(u: np.ndarray, lam: float = 0.0) -> np.ndarray:
    """Trellis path for values ``u`` given in units of the step: reconstruction indices r (int64).

    ``lam`` > 0 adds ``lam`` * rate (bits, estimated from a first distortion-only pass) to each
    squared error (in step² units): rate-distortion optimised TCQ.
    """
    u = np.asarray(u, np.float64).reshape(-1)
    n = u.size
    if n == 0:
        return np.zeros(0, np.int64)
    s, t = stripes(n)
    V = np.zeros(s * t)
    V[:n] = u
    V = V.reshape(s, t)

    def run(lam_, rates, kmin):
        return np.concatenate(
            [_viterbi(V[a : a + _CHUNK], lam_, rates, kmin) for a in range(0, s, _CHUNK)]
        ).reshape(-1)[:n]

    r = run(0.0, None, 0)
    if lam > 0:
        rates, kmin = _rate_tables(r)
        r = run(lam, rates, kmin)
    return r


__all__ = ["STRIPE", "tcq_codes"]

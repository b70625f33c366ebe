"""Fixed-rate trellis-coded quantization: the sender's Viterbi search (numpy).

For values ``u`` (in units of the source's standard deviation) find the codes whose trellis
reconstruction (:func:`nnshare.format.fixed_tcq.reconstruct`) minimises the squared error.
Every stripe of the layout is searched in parallel; memory is bounded by searching
``_CHUNK`` stripes at a time (back pointers: one byte per state and element).
"""

from __future__ import annotations

import numpy as np

from ..format.fixed_tcq import layout, levels, trellis

_CHUNK = 256  # stripes per Viterbi block


def _incoming(nu: int) -> tuple[np.ndarray, np.ndarray]:
    """For each next state: its two (predecessor state, z1) edges."""
    nxt, _ = trellis(nu)
    ns = nxt.shape[0]
    inc: list[list[tuple[int, int]]] = [[] for _ in range(ns)]
    for s in range(ns):
        for z1 in (0, 1):
            inc[int(nxt[s, z1])].append((s, z1))
    prev = np.array([[e[0] for e in row] for row in inc], np.int64)
    par = np.array([[e[1] for e in row] for row in inc], np.int64)
    return prev, par


def _subset_best(x: np.ndarray, lv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared error (..., 2 quantizers, 2 parities) of the nearest level of each subset, and
    that level's code."""
    nb = lv.shape[1]
    dist = np.empty(x.shape + (2, 2))
    code = np.empty(x.shape + (2, 2), np.int64)
    for q in range(2):
        for p in range(2):
            cand = lv[q, p::2]  # codes p, p + 2, ...
            e = (x[..., None] - cand) ** 2
            k = np.argmin(e, axis=-1)
            dist[..., q, p] = np.take_along_axis(e, k[..., None], -1)[..., 0]
            code[..., q, p] = p + 2 * k
    assert nb >= 2
    return dist, code


def _viterbi_block(u: np.ndarray, lv: np.ndarray, nu: int) -> np.ndarray:
    """Codes (T, S) for values (T, S): row t = step t of each stripe."""
    t_n, s_n = u.shape
    nxt, quant = trellis(nu)
    prev, par = _incoming(nu)
    ns = nxt.shape[0]
    q_prev = quant[prev]  # (ns, 2) quantizer used on each incoming edge
    cost = np.full((s_n, ns), np.inf)
    cost[:, 0] = 0.0
    back = np.empty((t_n, s_n, ns), np.uint8)
    codes_tq = np.empty((t_n, s_n, 2, 2), np.int64)
    for t in range(t_n):
        dist, code = _subset_best(u[t], lv)
        codes_tq[t] = code
        cand = cost[:, prev] + dist[:, q_prev, par]  # (S, ns, 2)
        k = (cand[:, :, 1] < cand[:, :, 0]).astype(np.uint8)
        cost = np.where(k == 1, cand[:, :, 1], cand[:, :, 0])
        back[t] = k
    st = np.argmin(cost, axis=1)
    ar = np.arange(s_n)
    out = np.empty((t_n, s_n), np.int64)
    for t in range(t_n - 1, -1, -1):
        k = back[t, ar, st].astype(np.int64)
        p = prev[st, k]
        z1 = par[st, k]
        out[t] = codes_tq[t, ar, quant[p], z1]
        st = p
    return out


def encode(u: np.ndarray, bits: int, nu: int, lv: np.ndarray | None = None) -> np.ndarray:
    """Codes int64 in [0, 2**bits) for values u in units of the source's standard deviation,
    minimising sum (u - reconstruct(codes))**2 over the trellis paths. ``u``: (d,) or (rows, d)
    (each row coded on its own, as :func:`nnshare.format.fixed_tcq.reconstruct` decodes it).
    ``lv``: levels (2, 2**bits) other than the shipped ones (training only)."""
    u = np.asarray(u, np.float64)
    rows = u.reshape(-1, u.shape[-1]) if u.ndim > 1 else u.reshape(1, -1)
    r_n, d = rows.shape
    lv = levels(bits, nu) if lv is None else np.asarray(lv, np.float64)
    if d == 0 or r_n == 0:
        return np.zeros(u.shape, np.int64)
    s_n, t_n = layout(d)
    pad = np.zeros((r_n, s_n * t_n))
    pad[:, :d] = rows
    grid = pad.reshape(r_n, t_n, s_n).transpose(1, 0, 2).reshape(t_n, r_n * s_n)
    out = np.empty((t_n, r_n * s_n), np.int64)
    for a in range(0, r_n * s_n, _CHUNK):
        out[:, a : a + _CHUNK] = _viterbi_block(grid[:, a : a + _CHUNK], lv, nu)
    codes = out.reshape(t_n, r_n, s_n).transpose(1, 0, 2).reshape(r_n, -1)[:, :d]
    return codes.reshape(u.shape)

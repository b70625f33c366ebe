"""The encoder's quick estimate of a model's payload (model choice without fitting), from
histograms only: each model's (context x symbol) counts are sums of the counts of the finest
model of its family (same trellis variant, neighbour and row/column classes both on), so one
pass over the codes serves every model of the family. A sender decision (issue 19 speed); the
estimates are exactly those of each model's own histogram.
"""

from __future__ import annotations

import math

import numpy as np

from ..format.entropy import rans, tables
from ..format.entropy.dists import CONST
from ..format.entropy.header import NEIGHBOUR, ROWCOL, TCQ


def finest(flags: int, rowcol_ok: bool) -> int:
    """The finest model of ``flags``' family: neighbour and (where it applies) row/column on."""
    return flags | NEIGHBOUR | (ROWCOL if rowcol_ok else 0)


def marginal(fine_hist: np.ndarray, fine_flags: int, flags: int, k_rc: int) -> np.ndarray:
    """Counts (contexts x width) of model ``flags`` from those of its family's finest model:
    contexts compose as ((quantizer id * 3 + neighbour class) * k_rc + row/column class), ``k_rc``
    the row x column classes, so a component the model lacks is summed out."""
    q = 2 if fine_flags & TCQ else 1
    nb = 3 if fine_flags & NEIGHBOUR else 1
    rc = k_rc if fine_flags & ROWCOL else 1
    h = fine_hist.reshape(q, nb, rc, fine_hist.shape[1])
    if nb > 1 and not flags & NEIGHBOUR:
        h = h.sum(axis=1, keepdims=True)
    if rc > 1 and not flags & ROWCOL:
        h = h.sum(axis=2, keepdims=True)
    return np.ascontiguousarray(h.reshape(-1, fine_hist.shape[1]))


def quick_bits(hist: np.ndarray) -> tuple[float, float]:
    """(coded, side) bits of a (contexts x width) histogram: per context the empirical entropy
    with the Miller-Madow small-sample correction, and the approximate side info of a table."""
    width = hist.shape[1]
    cnt = hist.sum(axis=1)
    h = hist.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = np.where(hist > 0, h * np.log2(np.maximum(cnt, 1)[:, None] / h), 0.0).sum()
    nzc = hist > 0
    ent += float(np.maximum(nzc.sum(axis=1) - 1, 0).sum()) / (2 * math.log(2))  # Miller-Madow
    first = nzc.argmax(axis=1)
    last = width - 1 - nzc[:, ::-1].argmax(axis=1)
    w = np.where(cnt > 0, last - first + 1, 1)
    side = np.where(cnt > 1, np.minimum(32 + 6 * w, 128 + 0.02 * cnt), 24).sum()
    return float(ent), float(side)


def rans_loss(dists, hist, hist_lo: int, prec: int) -> float:
    """Extra bits of rANS frequencies at ``prec`` over the ideal code length, minus what
    :data:`rans.MAX_LOSS` allows (<= 0: acceptable)."""
    extra = ideal = 0.0
    for c, d in enumerate(dists):
        if d.kind == CONST or hist is None:
            continue
        h = hist[c, d.lo - hist_lo : d.lo - hist_lo + d.width]
        nz = h > 0
        w = d.weights()
        lp = -np.log2(w[nz] / w.sum())
        f = tables.quantize(w, prec)
        ideal += float((h[nz] * lp).sum())
        extra += float((h[nz] * (-np.log2(f[nz] / float(1 << prec)) - lp)).sum())
    return extra - rans.MAX_LOSS * ideal - 32

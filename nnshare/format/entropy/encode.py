"""Writing an entropy-coded payload once the sender has chosen its model (numpy only).

The choice itself (candidate models, fitted distributions, estimated costs) is the sender's:
:mod:`nnshare.quant.entropy_model`. This module only turns a chosen :class:`.PayloadHeader`,
the symbols and their contexts into bytes, with the same tables the decoder builds
(:func:`.tables.context_freqs`), so writer and reader cannot drift apart.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..wire import Writer
from . import contexts as cx
from . import range_coder as rcd
from . import rans, tables
from .header import NEIGHBOUR, TCQ, PayloadHeader


def write_payload(h: PayloadHeader, sym: np.ndarray, ctx: np.ndarray) -> bytes:
    """Payload bytes: header, coded words, CRC-32. ``sym``: int64 symbols (codes, or trellis
    levels under TCQ), ``ctx``: their int16 context indices; ``h.rans_prec`` selects rANS (> 0)
    or the range coder (0, needs constriction on the sender); ``h.lanes``: interleaved rANS."""
    w = Writer()
    h.write(w)
    n = sym.size
    if n and h.rans_prec:
        freqs = tables.context_freqs(h.dists, h.rans_prec, h.int_tables)
        freq, cum, off, _ = rans.tables(freqs, h.rans_prec)
        lo = np.array([d.lo for d in h.dists], np.int64)
        words = rans.encode(sym, ctx, rans.const_mask(freqs), lo, freq, cum, off, h.rans_prec,
                            t=cx.stripes(n)[1], n_lanes=rans.lanes(n) if h.lanes else 1)
        w.raw(words.astype("<u4").tobytes())
    elif n:
        w.raw(rcd.encode_runs(_range_runs(h, sym, ctx)).astype("<u4").tobytes())
    w.raw(zlib.crc32(w.buf).to_bytes(4, "little"))
    return bytes(w.buf)


def _range_runs(h: PayloadHeader, sym: np.ndarray, ctx: np.ndarray):
    """(symbol indices, frequencies) runs in the range coder's order: by stripe step (sequential
    models) then context, each run in ascending position."""
    n = sym.size
    key = ctx.astype(np.int64)
    if h.flags & (NEIGHBOUR | TCQ):
        key = (np.arange(n) % cx.stripes(n)[1]) * h.n_ctx + key
    order = np.argsort(key, kind="stable")
    s = sym[order]
    counts = np.bincount(key, minlength=1)
    freqs = tables.context_freqs(h.dists, rcd.PRECISION, h.int_tables)
    pos = 0
    for k in np.flatnonzero(counts):
        m = int(counts[k])
        c = int(k) % h.n_ctx
        if freqs[c] is not None:
            yield s[pos : pos + m] - h.dists[c].lo, freqs[c]
        pos += m

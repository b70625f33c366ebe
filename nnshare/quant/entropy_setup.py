"""One entropy model's setup on the sender's side: its header fields, contexts and symbols
(:class:`Setup`), the histogram behind its estimate, and its fitted distributions with their
estimated bits. :mod:`.entropy_model` compares the candidates and writes the cheapest.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..format.entropy import contexts as cx
from ..format.entropy import rans
from ..format.entropy.dists import CONST, Dist
from ..format.entropy.header import K_T, MODELS, NEIGHBOUR, ROWCOL, TCQ, TCQ8, TEMPORAL, PayloadHeader
from ..format.errors import SpecError
from . import entropy_fit as fit
from . import entropy_quick as quick
from ._entropy_fast import contexts, joint_hist, span

K_ROW = K_COL = 4
MAX_HIST_BINS = 1 << 22  # contexts x alphabet of a model's histogram (memory bound)
FLUSH_BITS = 64  # coder flush per rANS lane, worst case
CRC_BITS = 32


@dataclass
class Setup:
    """What the encoder decided for one model: header fields, contexts and symbols."""

    head: PayloadHeader
    ctx: np.ndarray
    sym: np.ndarray
    dists: list[Dist] = field(default_factory=list)
    bits: float = 0.0  # estimated payload bits: side info + coded + CRC + flush
    coded: float = 0.0  # the ideal code length part of ``bits``
    hist: np.ndarray | None = None  # contexts x symbols from hist_lo
    hist_lo: int = 0
    lohi: tuple[int, int] | None = None  # (min, max) of sym, when known
    parts: tuple | None = None  # (quantizer ids, sym, neighbour, row/column): lazy setup

    @property
    def flags(self) -> int:
        return self.head.flags

    @property
    def n_ctx(self) -> int:
        return self.head.n_ctx


def model_names(models: str | Iterable[str]) -> list[str]:
    names = list(MODELS) if models == "auto" else [models] if isinstance(models, str) else list(models)
    for m in names:
        if m not in MODELS:
            raise SpecError(f"unknown entropy model {m!r}; known: auto, {', '.join(MODELS)}")
    return names


def rowcol_ok(n: int, row_len) -> bool:
    """Whether row/column contexts apply to n codes in rows of ``row_len``."""
    return bool(row_len) and row_len >= 2 and not n % row_len and n // row_len >= 2


def setup(codes, flags: int, row_len, tcq, context, memo: dict | None = None,
           lazy: bool = False) -> Setup | None:
    """Header fields and contexts for one model, or None when the model does not apply.
    ``memo`` caches what several models of one array share (median, thresholds, row/column
    classes). With numba, the contexts are built in one compiled pass (temporal models: numpy).
    ``lazy`` (not temporal): the contexts are built when :func:`ctx_of` first asks."""
    n = codes.size
    memo = {} if memo is None else memo
    if flags & TEMPORAL and context is None or flags & TCQ and tcq is None:
        return None
    if flags & ROWCOL and not rowcol_ok(n, row_len):
        return None
    variant = (8 if flags & TCQ8 else 4) if flags & TCQ else 0
    sym = tcq[0] if variant else codes
    kw: dict = {}
    if variant:
        kw["zero"] = tcq[2]
    nb = rc = None
    if flags & NEIGHBOUR:
        key = ("nb", variant)
        if key not in memo:
            center = fit.median(sym, memo) if n else 0
            t1, t2 = fit.mag_quantiles(sym, center, memo) if n else (0, 0)
            memo[key] = {"center": center, "t1": t1, "t2": t2}
        kw.update(memo[key])
        nb = (kw["center"], kw["t1"], kw["t2"])
    if flags & ROWCOL:
        key = ("rc", variant)
        if key not in memo:
            rows, cols = fit.rowcol_classes(sym, fit.median(sym, memo), row_len, K_ROW, K_COL)
            memo[key] = {"row_len": row_len, "k_row": K_ROW, "k_col": K_COL, "rows": rows,
                         "cols": cols}
        kw.update(memo[key])
        rc = (kw["rows"], kw["cols"], row_len, K_ROW, K_COL)
    q = tcq[1] if variant else None
    lohi = memo.get("span", {}).get(variant)
    if lazy and not flags & TEMPORAL:
        return Setup(PayloadHeader(flags, **kw), None, sym, lohi=lohi, parts=(q, sym, nb, rc))
    ctx = contexts(q, sym, nb, rc, compiled=not flags & TEMPORAL)
    if flags & TEMPORAL:
        key = ("t", variant)
        if key not in memo:
            p = context - (tcq[2] if variant else 0)
            nzp = np.abs(p[p != 0])
            t = fit.median(nzp) if nzp.size else 0
            memo[key] = ({"t_thr": t}, cx.temporal_ctx(p, t))
        fields, c = memo[key]
        kw.update(fields)
        ctx = ctx * K_T + c
    return Setup(PayloadHeader(flags, **kw), ctx.astype(np.int16, copy=False), sym, lohi=lohi)


def ctx_of(s: Setup) -> np.ndarray:
    """The setup's contexts, built now if it was made lazily."""
    if s.ctx is None:
        s.ctx = contexts(*s.parts)
    return s.ctx


def head_bits(s: Setup) -> float:
    return 8.0 * s.head.fields_bytes()


def fit_setup(s: Setup, qmin: int) -> Setup:
    """Fit one distribution per context and the estimated total bits."""
    if s.sym.size == 0:
        s.dists = [Dist(CONST, qmin, 1)] * s.n_ctx
        s.bits = head_bits(s) + CRC_BITS + 8 * s.n_ctx
        return s
    if s.hist is None:
        lo, hi = s.lohi or span(s.sym)
        s.hist = joint_hist(ctx_of(s), s.sym, lo, s.n_ctx, hi - lo + 1)
        s.hist_lo = lo
    hist, lo = s.hist, s.hist_lo
    s.dists, s.coded = [], 0.0
    bits = head_bits(s) + CRC_BITS + FLUSH_BITS * rans.lanes(s.sym.size)
    for c in range(s.n_ctx):
        nz = np.flatnonzero(hist[c])
        if nz.size == 0:
            d = Dist(CONST, lo, 1)  # empty context: never used
        else:
            d, coded = fit.fit_cost(hist[c, nz[0] : nz[-1] + 1], lo + int(nz[0]))
            s.coded += coded
        s.dists.append(d)
        bits += fit.side_bits(d.kind, d.lo, d.width)
    s.bits = bits + s.coded
    return s


def marginal(s: Setup, codes, row_len, tcq, memo: dict) -> Setup:
    """A lazy setup given its histogram as the marginal of its family's finest model's (one
    context pass and histogram for the family: :mod:`.entropy_quick`), when that fits."""
    if s.ctx is not None or not s.sym.size:
        return s
    fine = quick.finest(s.flags, rowcol_ok(codes.size, row_len))
    lo, hi = s.lohi or span(s.sym)
    key = ("fine", fine)
    if key not in memo:
        f = None
        if n_ctx_of(fine) * (hi - lo + 1) <= MAX_HIST_BINS:
            f = setup(codes, fine, row_len, tcq, None, memo, lazy=True)
            f.hist = joint_hist(ctx_of(f), f.sym, lo, f.n_ctx, hi - lo + 1)
        memo[key] = f
    f = memo[key]
    if f is not None:
        s.hist_lo = lo
        if fine == s.flags:
            s.hist, s.ctx = f.hist, f.ctx
        else:
            s.hist = quick.marginal(f.hist, fine, s.flags, K_ROW * K_COL)
    return s


@functools.cache
def n_ctx_of(flags: int) -> int:
    """Number of contexts of a model (row/column with the default class counts)."""
    return PayloadHeader(flags, k_row=K_ROW, k_col=K_COL).n_ctx


def estimate(s: Setup) -> Setup:
    """Quick payload estimate for model choice: per context the empirical entropy (with the
    Miller-Madow small-sample correction) plus the side info of a table, no fitting."""
    if s.sym.size == 0:
        return fit_setup(s, 0)
    if s.hist is None:
        lo, hi = s.lohi or span(s.sym)
        s.hist, s.hist_lo = joint_hist(ctx_of(s), s.sym, lo, s.n_ctx, hi - lo + 1), lo
    s.coded, side = quick.quick_bits(s.hist)
    s.bits = head_bits(s) + CRC_BITS + FLUSH_BITS * rans.lanes(s.sym.size) + side + s.coded
    return s

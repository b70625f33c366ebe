"""The sender's choice of entropy model: candidate context models, fitted distributions,
estimated costs, the cheapest wins; then :func:`nnshare.format.entropy.encode.write_payload`
writes it. The receiver (:mod:`nnshare.format.entropy`) only decodes what was chosen.

Speed: arrays of >= 2**14 codes choose their model by a quick estimate (empirical entropy per
context, Miller-Madow corrected, plus table side info; on an evenly spread sample of whole rows
for >= 2**18 codes), preferring non-neighbour models unless the neighbour context saves > 0.01
bit per code (its range-coded decoder was sequential); only the chosen model is fitted. Every
model's histogram for that estimate is summed from its family's finest one (one context pass
per trellis variant: :mod:`.entropy_quick`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from ..format.entropy import contexts as cx
from ..format.entropy import rans
from ..format.entropy.decode import check_context
from ..format.entropy.dists import CONST, Dist
from ..format.entropy.encode import write_payload
from ..format.entropy.header import (
    K_T,
    MODEL_NAMES,
    MODELS,
    NEIGHBOUR,
    ROWCOL,
    TCQ,
    TCQ8,
    TEMPORAL,
    PayloadHeader,
    alphabet_budget,
)
from ..format.errors import SpecError
from . import entropy_bound as bound
from . import entropy_fit as fit
from . import entropy_memo as memo_
from . import entropy_quick as quick
from ._entropy_fast import contexts, joint_hist, span, tcq_levels

K_ROW = K_COL = 4
_MAX_HIST_BINS = 1 << 22  # contexts x alphabet of a model's histogram (memory bound)
_SAMPLE = 1 << 16  # big arrays: models are compared on a sample of about this many elements
_QUICK_MIN = 1 << 14  # arrays this big choose their model by a quick estimate, then fit once
_NB_PENALTY = 0.01  # bits per symbol a neighbour model must save on a big array
_MIN_PER_CTX = 64  # "auto" skips models with fewer symbols than this per context
_FLUSH_BITS = 64  # coder flush per rANS lane, worst case
_CRC_BITS = 32
CODERS = ("auto", "rans", "range")


@dataclass
class _Setup:
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


def _names(models: str | Iterable[str]) -> list[str]:
    names = list(MODELS) if models == "auto" else [models] if isinstance(models, str) else list(models)
    for m in names:
        if m not in MODELS:
            raise SpecError(f"unknown entropy model {m!r}; known: auto, {', '.join(MODELS)}")
    return names


def _rowcol_ok(n: int, row_len) -> bool:
    """Whether row/column contexts apply to n codes in rows of ``row_len``."""
    return bool(row_len) and row_len >= 2 and not n % row_len and n // row_len >= 2


def _setup(codes, flags: int, row_len, tcq, context, memo: dict | None = None,
           lazy: bool = False) -> _Setup | None:
    """Header fields and contexts for one model, or None when the model does not apply.
    ``memo`` caches what several models of one array share (median, thresholds, row/column
    classes). With numba, the contexts are built in one compiled pass (temporal models: numpy).
    ``lazy`` (not temporal): the contexts are built when :func:`_ctx` first asks."""
    n = codes.size
    memo = {} if memo is None else memo
    if flags & TEMPORAL and context is None or flags & TCQ and tcq is None:
        return None
    if flags & ROWCOL and not _rowcol_ok(n, row_len):
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
        return _Setup(PayloadHeader(flags, **kw), None, sym, lohi=lohi, parts=(q, sym, nb, rc))
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
    return _Setup(PayloadHeader(flags, **kw), ctx.astype(np.int16, copy=False), sym, lohi=lohi)


def _ctx(s: _Setup) -> np.ndarray:
    """The setup's contexts, built now if it was made lazily."""
    if s.ctx is None:
        s.ctx = contexts(*s.parts)
    return s.ctx


def _head_bits(s: _Setup) -> float:
    return 8.0 * s.head.fields_bytes()


def _fit(s: _Setup, qmin: int) -> _Setup:
    """Fit one distribution per context and the estimated total bits."""
    if s.sym.size == 0:
        s.dists = [Dist(CONST, qmin, 1)] * s.n_ctx
        s.bits = _head_bits(s) + _CRC_BITS + 8 * s.n_ctx
        return s
    if s.hist is None:
        lo, hi = s.lohi or span(s.sym)
        s.hist = joint_hist(_ctx(s), s.sym, lo, s.n_ctx, hi - lo + 1)
        s.hist_lo = lo
    hist, lo = s.hist, s.hist_lo
    s.dists, s.coded = [], 0.0
    bits = _head_bits(s) + _CRC_BITS + _FLUSH_BITS * rans.lanes(s.sym.size)
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


def _marginal(s: _Setup, codes, row_len, tcq, memo: dict) -> _Setup:
    """A lazy setup given its histogram as the marginal of its family's finest model's (one
    context pass and histogram for the family: :mod:`.entropy_quick`), when that fits."""
    if s.ctx is not None or not s.sym.size:
        return s
    fine = quick.finest(s.flags, _rowcol_ok(codes.size, row_len))
    lo, hi = s.lohi or span(s.sym)
    key = ("fine", fine)
    if key not in memo:
        f = None
        if _n_ctx(fine) * (hi - lo + 1) <= _MAX_HIST_BINS:
            f = _setup(codes, fine, row_len, tcq, None, memo, lazy=True)
            f.hist = joint_hist(_ctx(f), f.sym, lo, f.n_ctx, hi - lo + 1)
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
def _n_ctx(flags: int) -> int:
    """Number of contexts of a model (row/column with the default class counts)."""
    return PayloadHeader(flags, k_row=K_ROW, k_col=K_COL).n_ctx


def _estimate(s: _Setup) -> _Setup:
    """Quick payload estimate for model choice: per context the empirical entropy (with the
    Miller-Madow small-sample correction) plus the side info of a table, no fitting."""
    if s.sym.size == 0:
        return _fit(s, 0)
    if s.hist is None:
        lo, hi = s.lohi or span(s.sym)
        s.hist, s.hist_lo = joint_hist(_ctx(s), s.sym, lo, s.n_ctx, hi - lo + 1), lo
    s.coded, side = quick.quick_bits(s.hist)
    s.bits = _head_bits(s) + _CRC_BITS + _FLUSH_BITS * rans.lanes(s.sym.size) + side + s.coded
    return s


def _acceptable(s: _Setup, n: int, coder: str) -> bool:
    """Whether a fitted model's tables suit the payload budget and the coder."""
    live = [d.width for d in s.dists if d.kind != CONST]
    if sum(live) > alphabet_budget(n, int(s.bits // 8)):
        return False
    return coder == "range" or rans.precision(len(s.dists), max(live, default=1)) is not None


def _candidates(codes, qmin, qmax, models, row_len, context=None, quick=False,
                coder="auto", prune=False) -> list[_Setup]:
    """The models that apply, estimated (``quick``) or fitted; ``prune``: only the cheapest is
    wanted, so models whose bound (:mod:`.entropy_bound`) beats no fit in hand are left out."""
    names = _names(models)
    context = check_context(context, codes.size, SpecError)
    if codes.size == 0:
        return [_fit(_setup(codes, 0, None, None, None), qmin)]
    digest = memo_.digest(codes) if context is None else None
    if digest is not None:  # what the models derive from these codes, kept from an earlier call
        codes, memo = memo_.shared((digest, codes.dtype.str, codes.size, qmin, qmax, row_len), codes)
    else:
        memo = {}
    spans = memo.setdefault("span", {0: span(codes)})
    tcq_by = {}  # trellis states -> (levels, quantizers, zero) of a valid path
    for states in (4, 8):
        if not any(MODELS[m] & TCQ and bool(MODELS[m] & TCQ8) == (states == 8) for m in names):
            continue
        if ("tcq", states) not in memo:
            memo["tcq", states] = _levels_of(codes, qmin, qmax, states)
        if memo["tcq", states] is not None:
            tcq_by[states] = memo["tcq", states]
            if states not in spans:
                spans[states] = span(tcq_by[states][0])
    widths = {k: hi - lo + 1 for k, (lo, hi) in spans.items()}
    out, todo = [], []  # todo: (slot in out, memo key, setup) still to fit
    if quick:
        digest = None  # quick estimates fit nothing: no fitted models to look up
    for m in names:
        flags = MODELS[m]
        states = (8 if flags & TCQ8 else 4) if flags & TCQ else 0
        if states and states not in tcq_by:
            continue
        if _n_ctx(flags) * widths[states] > _MAX_HIST_BINS:
            continue  # histogram too large: a model with fewer contexts covers it
        if flags and _n_ctx(flags) > max(2, codes.size // _MIN_PER_CTX) and "iid" in names:
            continue  # too few symbols per context to pay for the side info
        key = (digest, codes.size, qmin, qmax, flags, row_len, coder)
        known, fit_ = memo_.fitted(key) if digest is not None else (False, None)
        if known:  # fitted before on these very codes
            out.append(fit_)
            continue
        s = _setup(codes, flags, row_len, tcq_by.get(states), context, memo, lazy=quick)
        if s is not None and quick:
            out.append(_estimate(_marginal(s, codes, row_len, tcq_by.get(states), memo)))
        elif s is not None:
            todo.append((len(out), key, s))
            out.append(None)
    best = min((s.bits for s in out if s is not None), default=math.inf)
    prune = prune and len(todo) > 1
    for b, slot, key, s in sorted((_bound(t[2]) if prune else 0.0, *t) for t in todo):
        if prune and bound.beaten(b, best):
            continue  # strictly worse than a fit in hand: never the cheapest
        s = _fit(s, qmin)
        ok = _acceptable(s, codes.size, coder)
        if ok:
            out[slot] = s
            best = min(best, s.bits)
        if digest is not None:
            memo_.keep_fitted(key, s if ok else None)
    out = [s for s in out if s is not None]
    if not out:
        raise SpecError(f"none of the entropy models {names} applies to these codes"
                        + ("" if coder == "range" else " with the rANS coder (coder='range' "
                           "takes wider tables; it needs constriction)"))
    return out


def _levels_of(codes, qmin: int, qmax: int, states: int):
    """(levels, quantizer ids, zero) of the codes along a ``states`` trellis for the first zero
    offset that gives a valid path (signed codes: 0; offset codes: the middle), or None."""
    mid = (qmin + qmax + 1) // 2
    for zero in dict.fromkeys((0, mid, mid - 1)):
        if qmin <= zero <= qmax:
            lv = tcq_levels(codes, zero, states)
            if lv is not None:
                return (*lv, zero)
    return None


def _bound(s: _Setup) -> float:
    """:func:`.entropy_bound.lower_bound` of a setup's fit (its histogram made now)."""
    lo, hi = s.lohi or span(s.sym)
    s.hist, s.hist_lo = joint_hist(_ctx(s), s.sym, lo, s.n_ctx, hi - lo + 1), lo
    return bound.lower_bound(s.hist, lo, _head_bits(s) + _CRC_BITS + _FLUSH_BITS * rans.lanes(s.sym.size))


def _sampled_choice(codes, qmin, qmax, models, row_len, context):
    """For a big array, the name of the model with the lowest quick estimate (:func:`_estimate`),
    on an evenly spread sample of whole stripes (and whole rows) for very big arrays, so only
    that model is fitted on everything. Returns (names, its setup when made on all the data)."""
    names = _names(models)
    n = codes.size
    if len(names) < 2 or n < _QUICK_MIN:
        return names, None
    unit = math.lcm(int(row_len), cx.STRIPE) if row_len else 64 * cx.STRIPE
    sel = None
    if n >= 4 * _SAMPLE and unit * 16 <= n:
        units = n // unit
        take = np.unique(np.linspace(0, units - 1, max(1, min(units, _SAMPLE // unit)))
                         .astype(int))
        sel = (take[:, None] * unit + np.arange(unit)).reshape(-1)
    m = n if sel is None else sel.size
    sub_ctx = context if context is None or sel is None else np.asarray(context)[sel]
    cands = _candidates(codes if sel is None else codes[sel], qmin, qmax, names, row_len,
                        sub_ctx, quick=True)

    def full_bits(c: _Setup) -> float:  # coded bits scale with n, side info does not
        extra = cx.class_bits(K_ROW) * (n - m) // row_len if c.flags & ROWCOL else 0
        slow = _NB_PENALTY * n if c.flags & NEIGHBOUR else 0.0
        return c.coded * n / m + (c.bits - c.coded) + extra + slow

    best = min(cands, key=full_bits)
    return [MODEL_NAMES[best.flags]], (best if sel is None else None)


def model_costs(codes, qmin: int, qmax: int, *, models: str | Iterable[str] = "auto",
                row_len: int | None = None, context=None) -> dict[str, float]:
    """Estimated payload bits (ideal code length + side info + CRC + coder flush) per model that
    applies to ``codes`` (1-D ints in [qmin, qmax])."""
    codes = fit.check_codes(codes, qmin, qmax)
    cands = _candidates(codes, qmin, qmax, models, row_len, context)
    return {MODEL_NAMES[s.flags]: s.bits for s in cands}


def cost_bits(codes, qmin: int, qmax: int, *, models: str | Iterable[str] = "auto",
              row_len: int | None = None, context=None) -> float:
    """Estimated payload bits of the cheapest applicable model (within ~64 bits of the truth).
    Remembers which model that is for these codes, so that :func:`encode_codes` of the same codes
    fits only that one (the choice it would make anyway: the same bytes, less time)."""
    codes = fit.check_codes(codes, qmin, qmax)
    names = _sampled_choice(codes, qmin, qmax, models, row_len, context)[0]
    costs = {MODEL_NAMES[s.flags]: s.bits
             for s in _candidates(codes, qmin, qmax, names, row_len, context, prune=True)}
    best = min(costs, key=costs.__getitem__)
    key = _choice_key(codes, qmin, qmax, models, row_len) if context is None else None
    if key is not None:
        memo_.remember_choice(key, best)
    return costs[best]


def _choice_key(codes: np.ndarray, qmin: int, qmax: int, models, row_len) -> tuple | None:
    d = memo_.digest(codes)
    return None if d is None else (d, codes.size, int(qmin), int(qmax), tuple(_names(models)), row_len)


def estimate_bits(codes, qmin: int, qmax: int, *, models: str | Iterable[str] = "auto",
                  row_len: int | None = None) -> tuple[float, str]:
    """Quick payload estimate (bits) of the cheapest applicable model by :func:`_estimate`
    (empirical entropy per context with the Miller-Madow correction plus approximate table side
    info; no distribution fitting) and that model's name. Rate searches use it to get close."""
    codes = fit.check_codes(codes, qmin, qmax)
    best = min(_candidates(codes, qmin, qmax, models, row_len, None, quick=True), key=lambda c: c.bits)
    return best.bits, MODEL_NAMES[best.flags]


def encode_codes(codes, qmin: int, qmax: int, *, models: str | Iterable[str] = "auto",
                 row_len: int | None = None, context=None, coder: str = "auto",
                 lanes: bool = True) -> bytes:
    """Entropy-code a 1-D integer array with values in ``[qmin, qmax]``.

    ``models``: "auto" (every model, the cheapest wins, side info counted) or one or more names
    of :data:`MODELS`. ``row_len``: the tensor's last-axis length, enabling row/column contexts.
    ``context``: n integers both sides hold (the previous update's codes), enabling temporal
    models. ``coder``: "auto" or "rans" (nnshare's static rANS: the receiver needs numpy only)
    or "range" (constriction's range coder, opt-in: the sender needs constriction, the receiver
    still numpy only). Returns a payload; ``decode_codes`` needs ``n``, ``qmin``, ``qmax`` (and
    the same ``context`` if a temporal model was chosen). Tables are integer (flag 64).
    ``lanes``: interleave the rANS states over :func:`rans.lanes` (n) lanes when that is more
    than one (format v2; False writes the single-state layout of format v1 streams).
    """
    if coder not in CODERS:
        raise SpecError(f"unknown coder {coder!r}; known: {', '.join(CODERS)}")
    codes = fit.check_codes(codes, qmin, qmax)
    n = codes.size
    key = _choice_key(codes, qmin, qmax, models, row_len) if context is None and coder == "auto" else None
    known = memo_.choice(key) if key is not None else None
    chosen, s = ([known], None) if known else _sampled_choice(codes, qmin, qmax, models, row_len, context)
    if s is not None:
        s = _fit(s, qmin)
        if not _acceptable(s, n, coder):
            s = None
    elif len(chosen) == 1:
        try:
            s = _candidates(codes, qmin, qmax, chosen, row_len, context, coder=coder)[0]
        except SpecError:  # the quick choice failed the table budget
            s = None
    if s is None:
        s = min(_candidates(codes, qmin, qmax, models, row_len, context, coder=coder, prune=True),
                key=lambda c: c.bits)
    prec = 0
    if coder != "range":
        live = [d.width for d in s.dists if d.kind != CONST]
        prec = rans.precision(len(s.dists), max(live, default=1),
                              lambda p: quick.rans_loss(s.dists, s.hist, s.hist_lo, p))
        if prec is None:  # explicit models only: "auto" keeps to models the rANS tables fit
            raise SpecError(f"entropy model {MODEL_NAMES[s.flags]!r}: tables too large for the "
                            "rANS coder; use another model or coder='range' (needs constriction)")
    head = replace(s.head, rans_prec=prec, dists=tuple(s.dists),
                   lanes=bool(lanes and prec and rans.lanes(n) > 1))
    return write_payload(head, s.sym, _ctx(s))

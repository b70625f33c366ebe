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

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from ..format.entropy import contexts as cx
from ..format.entropy import rans
from ..format.entropy.decode import check_context
from ..format.entropy.dists import CONST
from ..format.entropy.encode import write_payload
from ..format.entropy.header import (
    MODEL_NAMES,
    MODELS,
    NEIGHBOUR,
    ROWCOL,
    TCQ,
    TCQ8,
    alphabet_budget,
)
from ..format.errors import SpecError
from . import entropy_bound as bound
from . import entropy_fit as fit
from . import entropy_memo as memo_
from . import entropy_quick as quick
from ._entropy_fast import joint_hist, span, tcq_levels
from .entropy_setup import (
    CRC_BITS,
    FLUSH_BITS,
    K_ROW,
    MAX_HIST_BINS,
    Setup,
    ctx_of,
    estimate,
    fit_setup,
    head_bits,
    marginal,
    model_names,
    n_ctx_of,
    setup,
)

_SAMPLE = 1 << 16  # big arrays: models are compared on a sample of about this many elements
_QUICK_MIN = 1 << 14  # arrays this big choose their model by a quick estimate, then fit once
_NB_PENALTY = 0.01  # bits per symbol a neighbour model must save on a big array
_MIN_PER_CTX = 64  # "auto" skips models with fewer symbols than this per context
CODERS = ("auto", "rans", "range")


def _acceptable(s: Setup, n: int, coder: str) -> bool:
    """Whether a fitted model's tables suit the payload budget and the coder."""
    live = [d.width for d in s.dists if d.kind != CONST]
    if sum(live) > alphabet_budget(n, int(s.bits // 8)):
        return False
    return coder == "range" or rans.precision(len(s.dists), max(live, default=1)) is not None


def _candidates(codes, qmin, qmax, models, row_len, context=None, quick=False,
                coder="auto", prune=False) -> list[Setup]:
    """The models that apply, estimated (``quick``) or fitted; ``prune``: only the cheapest is
    wanted, so models whose bound (:mod:`.entropy_bound`) beats no fit in hand are left out."""
    names = model_names(models)
    context = check_context(context, codes.size, SpecError)
    if codes.size == 0:
        return [fit_setup(setup(codes, 0, None, None, None), qmin)]
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
        if n_ctx_of(flags) * widths[states] > MAX_HIST_BINS:
            continue  # histogram too large: a model with fewer contexts covers it
        if flags and n_ctx_of(flags) > max(2, codes.size // _MIN_PER_CTX) and "iid" in names:
            continue  # too few symbols per context to pay for the side info
        key = (digest, codes.size, qmin, qmax, flags, row_len, coder)
        known, fit_ = memo_.fitted(key) if digest is not None else (False, None)
        if known:  # fitted before on these very codes
            out.append(fit_)
            continue
        s = setup(codes, flags, row_len, tcq_by.get(states), context, memo, lazy=quick)
        if s is not None and quick:
            out.append(estimate(marginal(s, codes, row_len, tcq_by.get(states), memo)))
        elif s is not None:
            todo.append((len(out), key, s))
            out.append(None)
    best = min((s.bits for s in out if s is not None), default=math.inf)
    prune = prune and len(todo) > 1
    for b, slot, key, s in sorted((_bound(t[2]) if prune else 0.0, *t) for t in todo):
        if prune and bound.beaten(b, best):
            continue  # strictly worse than a fit in hand: never the cheapest
        s = fit_setup(s, qmin)
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


def _bound(s: Setup) -> float:
    """:func:`.entropy_bound.lower_bound` of a setup's fit (its histogram made now)."""
    lo, hi = s.lohi or span(s.sym)
    s.hist, s.hist_lo = joint_hist(ctx_of(s), s.sym, lo, s.n_ctx, hi - lo + 1), lo
    return bound.lower_bound(s.hist, lo, head_bits(s) + CRC_BITS + FLUSH_BITS * rans.lanes(s.sym.size))


def _sampled_choice(codes, qmin, qmax, models, row_len, context):
    """For a big array, the name of the model with the lowest quick estimate (:func:`estimate`),
    on an evenly spread sample of whole stripes (and whole rows) for very big arrays, so only
    that model is fitted on everything. Returns (names, its setup when made on all the data)."""
    names = model_names(models)
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

    def full_bits(c: Setup) -> float:  # coded bits scale with n, side info does not
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
    return None if d is None else (d, codes.size, int(qmin), int(qmax), tuple(model_names(models)), row_len)


def estimate_bits(codes, qmin: int, qmax: int, *, models: str | Iterable[str] = "auto",
                  row_len: int | None = None) -> tuple[float, str]:
    """Quick payload estimate (bits) of the cheapest applicable model by :func:`estimate`
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
        s = fit_setup(s, qmin)
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
    return write_payload(head, s.sym, ctx_of(s))

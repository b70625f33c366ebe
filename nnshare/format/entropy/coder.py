"""Entropy coding of integer code arrays with context models (numpy + constriction only).

Payload of one record (all integers little-endian; varints LEB128, signed ones zigzag):

- ``model`` (u8): bit flags, 1 = neighbour context, 2 = TCQ trellis state, 4 = row/column classes,
  8 = temporal context, 16 = the trellis has 8 states instead of 4 (only with 2), 32 = the words
  are nnshare's static rANS (:mod:`.rans`) instead of constriction's range coder; 0 = a single
  i.i.d. context with the range coder (the only coder of payloads written before flag 32).
- if rANS: ``prec`` (u8, 10..16): each context's probabilities are quantised to integer
  frequencies summing to 2**prec (:func:`.rans.quantize`); every context's width must be
  <= 2**prec / 2 and contexts x 2**prec <= 2**22, else FormatError.
- if TCQ: ``zero`` (svarint): the code value of reconstruction index r = 0 (codes = r + zero).
- if neighbour: ``center`` (svarint), ``t1``, ``t2`` (varints): context 0/1/2 when
  |previous symbol - center| is <= t1, <= t2, or larger (previous = predecessor in its stripe).
- if row/column: ``row_len`` (varint, divides n), ``k_row``, ``k_col`` (u8, 1..16), then a class
  per row, then a class per column, each packed in ceil(log2 k) bits, each list byte-padded.
- one distribution record per context (see :mod:`.dists`); context index
  ``((q * K_nb) + nb) * (k_row * k_col) + row_class * k_col + col_class``.
- the coder's 32-bit words, then CRC-32 of all that (u32). Range coder (constriction
  ``RangeEncoder``): symbols are coded stripe step by stripe step (sequential models) or context
  by context (others), each run in ascending order of position. rANS: every symbol in natural
  element order, one 64-bit state; words = [state high, state low, renormalisation words...];
  the stream must end with every word read and the state back at 2**31.

With the TCQ flag the codes are reconstruction indices r of the 4- or 8-state trellis (see
:mod:`.contexts`), and the coded symbols are the trellis levels k.

Encoder speed: arrays of >= 2**14 codes choose their model by a quick estimate (empirical entropy
per context, Miller-Madow corrected, plus table side info; on an evenly spread sample of whole
rows for >= 2**18 codes), preferring non-neighbour models unless the neighbour context saves
> 0.01 bit per code (its decoder is sequential); only the chosen model is fitted. rANS (decoder
~5-10 ns per code compiled) is used when numba is available; the range coder otherwise.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError, SpecError
from ..wire import Reader, Writer
from . import contexts as cx
from . import range_coder as rc_
from . import rans
from ._fast import joint_hist, tcq_levels
from .dists import CONST, KIND_NAMES, Dist, _side_bits, fit_cost

NEIGHBOUR, TCQ, ROWCOL, TEMPORAL, TCQ8, RANS = 1, 2, 4, 8, 16, 32
_PARTS = ((TCQ, "tcq"), (ROWCOL, "rowcol"), (NEIGHBOUR, "neighbour"), (TEMPORAL, "temporal"))


def _model_name(f: int) -> str:
    name = "+".join(n for bit, n in _PARTS if f & bit) or "iid"
    return name.replace("tcq", "tcq8", 1) if f & TCQ8 else name


#: Model name -> flags, e.g. "tcq+rowcol" -> 6, "tcq8" -> 18. "temporal" models need ``context``.
MODELS: dict[str, int] = {
    _model_name(f): f for f in range(32) if not (f & TCQ8 and not f & TCQ)
}
K_T = 5
MODEL_NAMES = {v: k for k, v in MODELS.items()}
K_ROW = K_COL = 4
MAX_CODE_RANGE = 1 << 20
_MAX_HIST_BINS = 1 << 22  # contexts x alphabet of a model's histogram (memory bound)
_SAMPLE = 1 << 16  # big arrays: models are compared on a sample of about this many elements
_QUICK_MIN = 1 << 14  # arrays this big choose their model by a quick estimate, then fit once
#: Bits per symbol a neighbour model must save on a big array to be chosen: its decoder is
#: sequential (each context waits for the previous symbol), ~2x slower per symbol.
_NB_PENALTY = 0.01
_MIN_PER_CTX = 64  # "auto" skips models with fewer symbols than this per context
_FLUSH_BITS = 64  # range coder flush, worst case
_CRC_BITS = 32


@dataclass
class _Setup:
    """What the encoder decided for one model: header fields, contexts and symbols."""

    flags: int
    header: bytes
    n_ctx: int
    ctx: np.ndarray
    sym: np.ndarray
    dists: list[Dist] = field(default_factory=list)
    bits: float = 0.0  # estimated payload bits: side info + coded + CRC + flush
    coded: float = 0.0  # the ideal code length part of ``bits``
    hist: np.ndarray | None = None  # contexts x symbols from hist_lo (set by _fit)
    hist_lo: int = 0


def _check_codes(codes: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    a = np.asarray(codes)
    if a.ndim != 1:
        raise SpecError(f"codes must be a 1-D array, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise SpecError(f"codes must be integers, got dtype {a.dtype}")
    if not (isinstance(qmin, int | np.integer) and isinstance(qmax, int | np.integer)):
        raise SpecError("qmin and qmax must be integers")
    if not 0 <= qmax - qmin <= MAX_CODE_RANGE:
        raise SpecError(f"code range [{qmin}, {qmax}] empty or wider than {MAX_CODE_RANGE}")
    a = a.astype(np.int64)
    if a.size and (a.min() < qmin or a.max() > qmax):
        raise SpecError(f"codes outside [{qmin}, {qmax}]: min {a.min()}, max {a.max()}")
    return a


def _names(models: str | Iterable[str]) -> list[str]:
    if models == "auto":
        names = list(MODELS)
    else:
        names = [models] if isinstance(models, str) else list(models)
    for m in names:
        if m not in MODELS:
            raise SpecError(f"unknown entropy model {m!r}; known: auto, {', '.join(MODELS)}")
    return names


def _int_quantile(v: np.ndarray, qs) -> list[int]:
    """Quantiles (lower) of a non-empty array of non-negative integers, via a histogram."""
    v = np.asarray(v)
    if v.size and v.max() < (1 << 22):
        cdf = np.cumsum(np.bincount(v.astype(np.int64)))
        return [int(np.searchsorted(cdf, q * (v.size - 1) + 1)) for q in qs]
    return [int(x) for x in np.quantile(v, qs, method="lower")]


def _median(v: np.ndarray, memo: dict | None = None) -> int:
    if memo is not None and id(v) in memo:
        return memo[id(v)]
    lo = int(v.min())
    m = lo + _int_quantile(v - lo, [0.5])[0]
    if memo is not None:
        memo[id(v)] = m
    return m


def temporal_ctx(prev: np.ndarray, t: int) -> np.ndarray:
    """Temporal context 0..4 of each element from its co-located previous code ``prev``."""
    p = prev.astype(np.int64)
    c = np.where(p < 0, np.where(p < -t, 2, 1), np.where(p > t, 4, 3))
    return np.where(p == 0, 0, c).astype(np.int16)


def _setup(
    codes: np.ndarray,
    flags: int,
    row_len: int | None,
    tcq,
    context: np.ndarray | None,
    memo: dict | None = None,
) -> _Setup | None:
    """Header and contexts for one model, or None when the model does not apply. ``memo``
    caches the context components shared by several models of one array."""
    n = codes.size
    memo = {} if memo is None else memo
    if flags & TEMPORAL and context is None or flags & TCQ and tcq is None:
        return None
    if flags & ROWCOL and (not row_len or row_len < 2 or n % row_len or n // row_len < 2):
        return None
    variant = (8 if flags & TCQ8 else 4) if flags & TCQ else 0
    sym = tcq[0] if variant else codes
    w = Writer()
    w.u8(flags)
    ctx = np.zeros(n, np.int16)
    n_ctx = 1
    if variant:
        w.svarint(tcq[2])
        ctx = tcq[1].astype(np.int16)
        n_ctx = 2
    if flags & NEIGHBOUR:
        key = ("nb", variant)
        if key not in memo:
            center = _median(sym, memo) if n else 0
            t1, t2 = _int_quantile(np.abs(sym - center), [1 / 3, 2 / 3]) if n else (0, 0)
            h = Writer()
            h.svarint(center)
            h.varint(t1)
            h.varint(t2)
            memo[key] = (bytes(h.buf), cx.neighbour_ctx(cx.prev_magnitudes(sym, center), t1, t2))
        head, c = memo[key]
        w.raw(head)
        ctx = ctx * 3 + c
        n_ctx *= 3
    if flags & ROWCOL:
        key = ("rc", variant)
        if key not in memo:
            rows, cols = cx.rowcol_classes(sym, _median(sym, memo), row_len, K_ROW, K_COL)
            h = Writer()
            h.varint(row_len)
            h.u8(K_ROW)
            h.u8(K_COL)
            h.raw(cx.pack_classes(rows, cx.class_bits(K_ROW)))
            h.raw(cx.pack_classes(cols, cx.class_bits(K_COL)))
            memo[key] = (bytes(h.buf), cx.rowcol_ctx(rows, cols, K_COL))
        head, c = memo[key]
        w.raw(head)
        ctx = ctx * (K_ROW * K_COL) + c
        n_ctx *= K_ROW * K_COL
    if flags & TEMPORAL:
        key = ("t", variant)
        if key not in memo:
            p = context - (tcq[2] if variant else 0)
            nzp = np.abs(p[p != 0])
            t = _median(nzp) if nzp.size else 0
            h = Writer()
            h.varint(t)
            memo[key] = (bytes(h.buf), temporal_ctx(p, t))
        head, c = memo[key]
        w.raw(head)
        ctx = ctx * K_T + c
        n_ctx *= K_T
    return _Setup(flags, bytes(w.buf), n_ctx, ctx.astype(np.int16), sym)


def alphabet_budget(n: int, payload_bytes: int) -> int:
    """Most probability-table entries (summed over contexts) a payload may declare: bounds the
    decoder's memory by the code range, the element count and the payload length."""
    return MAX_CODE_RANGE + 1 + 4 * n + 64 * payload_bytes


def _fit(s: _Setup, qmin: int) -> _Setup:
    """Fit one distribution per context and the estimated total bits."""
    if s.sym.size == 0:
        s.dists = [Dist(CONST, qmin, 1)] * s.n_ctx
        s.bits = 8.0 * len(s.header) + _CRC_BITS + 8 * s.n_ctx
        return s
    if s.hist is None:
        lo = int(s.sym.min())
        width = int(s.sym.max()) - lo + 1
        s.hist = joint_hist(s.ctx, s.sym, lo, s.n_ctx, width)
        s.hist_lo = lo
    hist, lo = s.hist, s.hist_lo
    s.dists, s.coded = [], 0.0
    bits = 8.0 * len(s.header) + _CRC_BITS + _FLUSH_BITS
    for c in range(s.n_ctx):
        nz = np.flatnonzero(hist[c])
        if nz.size == 0:
            d = Dist(CONST, lo, 1)  # empty context: never used
        else:
            d, coded = fit_cost(hist[c, nz[0] : nz[-1] + 1], lo + int(nz[0]))
            s.coded += coded
        s.dists.append(d)
        bits += _side_bits(d.kind, d.lo, d.width)
    s.bits = bits + s.coded
    return s


def _n_ctx(flags: int) -> int:
    """Number of contexts of a model (row/column with the default class counts)."""
    return ((2 if flags & TCQ else 1) * (3 if flags & NEIGHBOUR else 1)
            * (K_ROW * K_COL if flags & ROWCOL else 1) * (K_T if flags & TEMPORAL else 1))


def _check_context(context, n: int, error=SpecError) -> np.ndarray | None:
    if context is None:
        return None
    c = np.asarray(context)
    if c.shape != (n,) or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise error(f"temporal context must be {n} integers, got shape {c.shape} {c.dtype}")
    return c.astype(np.int64)


def _estimate(s: _Setup) -> _Setup:
    """Quick payload estimate for model choice: per context the empirical entropy (with the
    Miller-Madow small-sample correction) plus the side info of a table, no fitting."""
    if s.sym.size == 0:
        return _fit(s, 0)
    lo = int(s.sym.min())
    width = int(s.sym.max()) - lo + 1
    hist = joint_hist(s.ctx, s.sym, lo, s.n_ctx, width)
    s.hist, s.hist_lo = hist, lo
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
    s.coded = float(ent)
    s.bits = 8.0 * len(s.header) + _CRC_BITS + _FLUSH_BITS + float(side) + s.coded
    return s


def _candidates(codes, qmin, qmax, models, row_len, context=None, quick=False) -> list[_Setup]:
    names = _names(models)
    context = _check_context(context, codes.size)
    if codes.size == 0:
        return [_fit(_setup(codes, 0, None, None, None), qmin)]
    tcq_by = {}  # trellis states -> (levels, quantizers, zero) of a valid path
    for states in (4, 8):
        if not any(MODELS[m] & TCQ and bool(MODELS[m] & TCQ8) == (states == 8) for m in names):
            continue
        mid = (qmin + qmax + 1) // 2
        for zero in dict.fromkeys((0, mid, mid - 1)):  # signed codes, offsets (code - qmin)
            if qmin <= zero <= qmax:
                lv = tcq_levels(codes, zero, states)
                if lv is not None:
                    tcq_by[states] = (*lv, zero)
                    break
    widths = {0: int(codes.max()) - int(codes.min()) + 1}
    for states, t in tcq_by.items():
        widths[states] = int(t[0].max()) - int(t[0].min()) + 1
    out = []
    memo: dict = {}
    for m in names:
        flags = MODELS[m]
        states = (8 if flags & TCQ8 else 4) if flags & TCQ else 0
        if states and states not in tcq_by:
            continue
        if _n_ctx(flags) * widths[states] > _MAX_HIST_BINS:
            continue  # histogram too large: a model with fewer contexts covers it
        if flags and _n_ctx(flags) > max(2, codes.size // _MIN_PER_CTX) and "iid" in names:
            continue  # too few symbols per context to pay for the side info
        s = _setup(codes, flags, row_len, tcq_by.get(states), context, memo)
        if s is not None and quick:
            out.append(_estimate(s))
        elif s is not None:
            s = _fit(s, qmin)
            table = sum(d.width for d in s.dists if d.kind != CONST)
            if table <= alphabet_budget(codes.size, int(s.bits // 8)):
                out.append(s)
    if not out:
        raise SpecError(f"none of the entropy models {names} applies to these codes")
    return out


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


def model_costs(
    codes: np.ndarray,
    qmin: int,
    qmax: int,
    *,
    models: str | Iterable[str] = "auto",
    row_len: int | None = None,
    context: np.ndarray | None = None,
) -> dict[str, float]:
    """Estimated payload bits (ideal code length + side info + CRC + coder flush) per model that
    applies to ``codes`` (1-D ints in [qmin, qmax])."""
    codes = _check_codes(codes, qmin, qmax)
    cands = _candidates(codes, qmin, qmax, models, row_len, context)
    return {MODEL_NAMES[s.flags]: s.bits for s in cands}


def cost_bits(
    codes: np.ndarray,
    qmin: int,
    qmax: int,
    *,
    models: str | Iterable[str] = "auto",
    row_len: int | None = None,
    context: np.ndarray | None = None,
) -> float:
    """Estimated payload bits of the cheapest applicable model (within ~64 bits of the truth)."""
    codes = _check_codes(codes, qmin, qmax)
    models = _sampled_choice(codes, qmin, qmax, models, row_len, context)[0]
    costs = model_costs(codes, qmin, qmax, models=models, row_len=row_len, context=context)
    return min(costs.values())


def _rans_precision(dists: list[Dist], loss=None) -> int | None:
    """rANS frequency precision for these contexts, or None (range coder); ``loss(prec)``: see
    :func:`.rans.precision`."""
    live = [d.width for d in dists if d.kind != CONST]
    return rans.precision(len(dists), max(live, default=1), loss)


def _rans_loss(s: _Setup, prec: int) -> float:
    """Extra bits of rANS frequencies at ``prec`` over the ideal code length, minus what
    :data:`.rans.MAX_LOSS` allows (<= 0: acceptable)."""
    extra = ideal = 0.0
    for c, d in enumerate(s.dists):
        if d.kind == CONST or s.hist is None:
            continue
        h = s.hist[c, d.lo - s.hist_lo : d.lo - s.hist_lo + d.width]
        nz = h > 0
        p = d.probs()
        f = rans.quantize(p, prec) / float(1 << prec)
        lp = -np.log2(p[nz])
        ideal += float((h[nz] * lp).sum())
        extra += float((h[nz] * (-np.log2(f[nz]) - lp)).sum())
    return extra - rans.MAX_LOSS * ideal - 32


def _models(dists: list[Dist]) -> list:
    """Range-coder cumulative tables of the contexts (None for a constant context)."""
    return [None if d.kind == CONST else rc_.cdf_from_floats(d.probs()) for d in dists]


def _order(s: _Setup, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Coding order of the elements and the run key of each (step * n_ctx + ctx)."""
    key = s.ctx.astype(np.int64)
    if s.flags & (NEIGHBOUR | TCQ):
        key = (np.arange(n) % cx.stripes(n)[1]) * s.n_ctx + key
    dtype = np.uint16 if s.n_ctx * cx.STRIPE < 65536 else np.int64
    order = np.argsort(key.astype(dtype), kind="stable")
    return order, key


def encode_codes(
    codes: np.ndarray,
    qmin: int,
    qmax: int,
    *,
    models: str | Iterable[str] = "auto",
    row_len: int | None = None,
    context: np.ndarray | None = None,
    coder: str = "auto",
) -> bytes:
    """Entropy-code a 1-D integer array with values in ``[qmin, qmax]``.

    ``models``: "auto" (every model, the cheapest wins, side info counted) or one or more names
    of :data:`MODELS`. ``row_len``: the tensor's last-axis length, enabling row/column contexts.
    ``context``: n integers both sides hold (the previous update's codes), enabling temporal
    models. ``coder``: "rans" (nnshare's static rANS, fast with numba), "range" (constriction's
    range coder) or "auto" (rANS when numba is available and the alphabets are small enough).
    Returns a payload; :func:`decode_codes` needs ``n``, ``qmin``, ``qmax`` (and the same
    ``context`` if a temporal model was chosen).
    """
    if coder not in ("auto", "rans", "range"):
        raise SpecError(f"unknown coder {coder!r}; known: auto, rans, range")
    codes = _check_codes(codes, qmin, qmax)
    n = codes.size
    chosen, s = _sampled_choice(codes, qmin, qmax, models, row_len, context)
    if s is not None:
        s = _fit(s, qmin)
        table = sum(d.width for d in s.dists if d.kind != CONST)
        if table > alphabet_budget(n, int(s.bits // 8)):
            s = None
    elif len(chosen) == 1:
        try:
            s = _candidates(codes, qmin, qmax, chosen, row_len, context)[0]
        except SpecError:  # the quick choice failed the table budget
            s = None
    if s is None:
        s = min(_candidates(codes, qmin, qmax, models, row_len, context), key=lambda c: c.bits)
    w = Writer()
    use_rans = coder in ("rans", "auto")
    prec = _rans_precision(s.dists, lambda p: _rans_loss(s, p)) if use_rans else None
    if prec is not None:
        w.u8(s.flags | RANS)
        w.u8(prec)
        w.raw(s.header[1:])
    else:
        w.raw(s.header)
    for d in s.dists:
        d.write(w)
    if prec is not None:
        if n:
            probs = [None if d.kind == CONST else d.probs() for d in s.dists]
            freq, cum, _ = rans.tables(probs, prec)
            lo = np.array([d.lo for d in s.dists], np.int64)
            const = np.array([d.kind == CONST for d in s.dists])
            w.raw(rans.encode(s.sym, s.ctx, const, lo, freq, cum, prec).astype("<u4").tobytes())
        w.raw(zlib.crc32(w.buf).to_bytes(4, "little"))
        return bytes(w.buf)
    enc, categorical = rc_.constriction_encoder()
    if n:
        order, key = _order(s, n)
        sym = s.sym[order]
        counts = np.bincount(key, minlength=1)
        cats = [None if d.kind == CONST else categorical(d.probs(), perfect=False)
                for d in s.dists]
        pos = 0
        for k in np.flatnonzero(counts):
            m = int(counts[k])
            c = int(k) % s.n_ctx
            if cats[c] is not None:
                enc.encode((sym[pos : pos + m] - s.dists[c].lo).astype(np.int32), cats[c])
            pos += m
        w.raw(enc.get_compressed().astype("<u4").tobytes())
    w.raw(zlib.crc32(w.buf).to_bytes(4, "little"))
    return bytes(w.buf)


@dataclass(frozen=True)
class _Header:
    flags: int
    zero: int
    center: int
    t1: int
    t2: int
    row_len: int
    rows: np.ndarray | None
    cols: np.ndarray | None
    k_col: int
    t_thr: int
    dists: list[Dist]
    words: np.ndarray
    prec: int = 0  # rANS frequency precision (bits); 0 = constriction's range coder


def _parse(payload: bytes | memoryview, n: int, qmin: int, qmax: int) -> _Header:
    data = memoryview(payload).cast("B")
    if len(data) < 5:
        raise FormatError(f"entropy payload of {len(data)} bytes is too short")
    crc = int.from_bytes(data[-4:], "little")
    if zlib.crc32(data[:-4]) != crc:
        raise FormatError("entropy payload CRC mismatch (corrupted or truncated)")
    r = Reader(data[:-4], "entropy payload")
    flags = r.u8()
    prec = 0
    if flags & RANS:
        flags &= ~RANS
        prec = r.u8()
        if not rans.MIN_PREC <= prec <= rans.MAX_PREC:
            raise FormatError(f"rANS precision {prec} outside [{rans.MIN_PREC}, {rans.MAX_PREC}]")
    if flags not in MODEL_NAMES:
        raise FormatError(f"unknown entropy model id {flags}")
    n_ctx, zero, center, t1, t2, row_len, rows, cols, k_col = 1, 0, 0, 0, 0, 0, None, None, 1
    if flags & TCQ:
        zero = r.svarint(limit=MAX_CODE_RANGE + abs(qmin) + abs(qmax))
        n_ctx = 2
    if flags & NEIGHBOUR:
        center = r.svarint(limit=MAX_CODE_RANGE + abs(qmin) + abs(qmax))
        t1, t2 = r.varint(), r.varint()
        n_ctx *= 3
    if flags & ROWCOL:
        row_len = r.varint(limit=max(n, 1))
        if row_len < 2 or n % row_len or n // row_len < 2:
            raise FormatError(f"row length {row_len} does not divide {n} elements into rows")
        k_row, k_col = r.u8(), r.u8()
        if not (1 <= k_row <= 16 and 1 <= k_col <= 16):
            raise FormatError(f"bad row/column class counts {k_row}, {k_col}")
        n_rows = n // row_len
        for count, k in ((n_rows, k_row), (row_len, k_col)):
            b = cx.class_bits(k)
            cls = cx.unpack_classes(r.take((count * b + 7) // 8), count, b, k)
            rows, cols = (cls, None) if rows is None else (rows, cls)
        n_ctx *= k_row * k_col
    t_thr = 0
    if flags & TEMPORAL:
        t_thr = r.varint(limit=MAX_CODE_RANGE)
        n_ctx *= K_T
    smin, smax = qmin, qmax  # symbol range: codes, or trellis levels k under TCQ
    if flags & TCQ:
        smin, smax = (qmin - zero) // 2 - 1, (qmax - zero) // 2 + 1
    dists = [Dist.read(r, smin, smax) for _ in range(n_ctx)]
    table = sum(d.width for d in dists if d.kind != CONST)
    if table > alphabet_budget(n, len(data)):
        raise FormatError(f"probability tables of {table} entries exceed what {n} codes need")
    live = [d.width for d in dists if d.kind != CONST]
    if prec and not rans.fits(len(dists), max(live, default=1), prec):
        raise FormatError(f"rANS precision {prec} does not fit these probability tables")
    rest = r.take(r.remaining)
    if len(rest) % 4:
        raise FormatError("entropy payload: coded words not a whole number of 32-bit words")
    words = np.frombuffer(rest, dtype="<u4").astype(np.uint32)
    return _Header(flags, zero, center, t1, t2, row_len, rows, cols, k_col, t_thr, dists, words,
                   prec)


def _decode_runs(dec, h: _Header, ctx: np.ndarray, cats: list) -> np.ndarray:
    """Decode one batch: symbols whose contexts are ``ctx``, coded context by context."""
    counts = np.bincount(ctx, minlength=len(h.dists))
    present = np.flatnonzero(counts)
    out = np.empty(ctx.size, np.int32)
    if present.size == 1:
        c = int(present[0])
        d = h.dists[c]
        out[:] = d.lo if cats[c] is None else dec.decode(cats[c], ctx.size) + d.lo
        return out
    if present.size <= 4:  # a few contexts: boolean masks beat a sort
        for c in present:
            d = h.dists[c]
            m = ctx == c
            out[m] = d.lo if cats[c] is None else dec.decode(cats[c], int(counts[c])) + d.lo
        return out
    order = np.argsort(ctx.astype(np.uint16), kind="stable")
    vals = np.empty(ctx.size, np.int32)
    pos = 0
    for c in present:
        m = int(counts[c])
        d = h.dists[c]
        vals[pos : pos + m] = d.lo if cats[c] is None else dec.decode(cats[c], m) + d.lo
        pos += m
    out[order] = vals
    return out


def decode_codes(
    payload: bytes | memoryview,
    n: int,
    qmin: int,
    qmax: int,
    *,
    context: np.ndarray | None = None,
) -> np.ndarray:
    """Decode ``n`` codes (int32, values in ``[qmin, qmax]``) from an :func:`encode_codes` payload.

    ``context``: the encoder's temporal context array, needed by temporal models. Raises
    FormatError on any corrupted, truncated or inconsistent payload, or a missing context.
    """
    if not (isinstance(n, int | np.integer) and n >= 0):
        raise FormatError(f"bad element count {n!r}")
    if not 0 <= qmax - qmin <= MAX_CODE_RANGE:
        raise FormatError(f"bad code range [{qmin}, {qmax}]")
    n = int(n)
    h = _parse(payload, n, qmin, qmax)
    context = _check_context(context, n, FormatError)
    if h.flags & TEMPORAL and context is None:
        raise FormatError("payload uses a temporal context (previous update) the receiver lacks")
    if n == 0:
        return np.zeros(0, np.int32)
    try:
        return _decode(h, n, qmin, qmax, context)
    except FormatError:
        raise
    except Exception as e:  # constriction / numpy on inconsistent fields
        raise FormatError(f"entropy payload inconsistent: {e}") from None


def _decode(h: _Header, n: int, qmin: int, qmax: int, context) -> np.ndarray:
    rc = cx.rowcol_ctx(h.rows, h.cols, h.k_col) if h.flags & ROWCOL else None
    if h.flags & TEMPORAL:
        tc = temporal_ctx(context - (h.zero if h.flags & TCQ else 0), h.t_thr)
        rc = tc if rc is None else rc * K_T + tc
    if h.prec:
        probs = [None if d.kind == CONST else d.probs() for d in h.dists]
        _, _, slot = rans.tables(probs, h.prec)
        n_rc = len(h.dists) // (2 if h.flags & TCQ else 1) // (3 if h.flags & NEIGHBOUR else 1)
        sym = rans.decode(
            h.words, n, t_len=cx.stripes(n)[1], tcq=bool(h.flags & TCQ),
            nb=bool(h.flags & NEIGHBOUR), center=h.center, t1=h.t1, t2=h.t2, rc=rc, n_rc=n_rc,
            trellis=cx.TRELLISES[8 if h.flags & TCQ8 else 4],
            const=[d.kind == CONST for d in h.dists], lo=[d.lo for d in h.dists], slot=slot,
            prec=h.prec)
        if h.flags & TCQ and h.zero:
            sym += np.int32(h.zero)
        if sym.min() < qmin or sym.max() > qmax:
            raise FormatError(f"decoded codes outside [{qmin}, {qmax}]")
        return sym
    dec = rc_.RangeDecoder(h.words)
    cats = _models(h.dists)
    if not h.flags & (NEIGHBOUR | TCQ):
        sym = _decode_runs(dec, h, rc if rc is not None else np.zeros(n, np.int16), cats)
    else:
        n_s, t = cx.stripes(n)
        sym2 = np.zeros((t, n_s), np.int32)  # step-major; r (not k) under TCQ
        rc2 = None
        if rc is not None:
            rc2 = np.zeros(n_s * t, np.int16)
            rc2[:n] = rc
            rc2 = np.ascontiguousarray(rc2.reshape(n_s, t).T)
        n_rc = len(h.dists) // (2 if h.flags & TCQ else 1) // (3 if h.flags & NEIGHBOUR else 1)
        state = np.zeros(n_s, np.int8)
        trans, quant = cx.TRELLISES[8 if h.flags & TCQ8 else 4]
        prev = np.zeros(n_s, np.int64)
        for step in range(t):
            a = cx.active(n, n_s, t, step)
            ctx = np.zeros(a, np.int16)
            if h.flags & TCQ:
                q = quant[state[:a]]
                ctx = q.astype(np.int16)
            if h.flags & NEIGHBOUR:
                ctx = ctx * 3 + cx.neighbour_ctx(prev[:a], h.t1, h.t2)
            if rc2 is not None:
                ctx = ctx * n_rc + rc2[step, :a]
            s = _decode_runs(dec, h, ctx.astype(np.int16), cats)
            if h.flags & TCQ:
                sym2[step, :a] = 2 * s - q * np.sign(s)  # r from k (contexts.k_to_r)
                state[:a] = trans[state[:a], s & 1]
            else:
                sym2[step, :a] = s
            if h.flags & NEIGHBOUR:
                prev[:a] = np.abs(s - h.center)
        sym = sym2.T.reshape(-1)[:n]
        if h.flags & TCQ:
            sym = sym + np.int32(h.zero)
    if sym.min() < qmin or sym.max() > qmax:
        raise FormatError(f"decoded codes outside [{qmin}, {qmax}]")
    return np.ascontiguousarray(sym, dtype=np.int32)


def describe(payload: bytes | memoryview, n: int, qmin: int, qmax: int) -> dict:
    """Model name, per-context distribution kinds and byte split of a payload (for ``inspect``)."""
    h = _parse(payload, n, qmin, qmax)
    coded = 4 * h.words.size
    return {
        "model": MODEL_NAMES[h.flags],
        "coder": f"rans{h.prec}" if h.prec else "range",
        "contexts": len(h.dists),
        "dists": [KIND_NAMES[d.kind] for d in h.dists],
        "side_info_bytes": len(memoryview(payload)) - coded - 4,
        "coded_bytes": coded,
        "crc_bytes": 4,
    }

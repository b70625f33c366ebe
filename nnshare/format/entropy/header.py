"""The header of an entropy-coded payload: model flags, coder, context fields, distributions.

Payload of one record (integers little-endian; varints LEB128, signed ones zigzag):

- ``model`` (u8): bit flags, 1 = neighbour context, 2 = TCQ trellis state, 4 = row/column classes,
  8 = temporal context, 16 = the trellis has 8 states instead of 4 (only with 2), 32 = the words
  are nnshare's static rANS (:mod:`.rans`) instead of the range coder (:mod:`.range_coder`),
  64 = integer probability tables (:mod:`.tables`; every payload written since; without it
  the float64 tables of the first payloads, :meth:`.dists.Dist.probs`), 128 = the rANS states
  are interleaved over :func:`.rans.lanes` (n) lanes (only with 32 and 64; format v2 writes it
  for every rANS payload of n >= 2**19 codes and its reader requires it there). 0 = a single
  i.i.d. context, range coder, float tables (the first payloads).
- if rANS: ``prec`` (u8): each context's frequencies sum to 2**prec, prec in 10..22 (10..16
  without flag 64); every context's width must be <= 2**prec / 2 and contexts x 2**prec <= 2**22,
  else FormatError.
- if TCQ: ``zero`` (svarint): the code value of reconstruction index r = 0 (codes = r + zero).
- if neighbour: ``center`` (svarint), ``t1``, ``t2`` (varints): context 0/1/2 when
  |previous symbol - center| is <= t1, <= t2, or larger (previous = predecessor in its stripe).
- if row/column: ``row_len`` (varint, divides n), ``k_row``, ``k_col`` (u8, 1..16), then a class
  per row, then a class per column, each packed in ceil(log2 k) bits, each list byte-padded.
- if temporal: ``t`` (varint): temporal classes of the previous codes (:func:`.contexts.temporal_ctx`).
- one distribution record per context (:mod:`.dists`); context index
  ``((q * K_nb + nb) * (k_row * k_col) + row_class * k_col + col_class) * K_t + temporal``.
- the coder's 32-bit words, then CRC-32 of all that (u32).

The receiver charges the tables against the decoding budget (:mod:`..budget`) before building
them: the alphabet widths of the non-constant contexts may sum to at most
:func:`..budget.table_allowance` of the payload's length (and of the stream's, summed over
its payloads).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from ..budget import table_allowance
from ..errors import FormatError
from ..wire import Reader, Writer
from . import contexts as cx
from . import rans
from .dists import CONST, Dist

NEIGHBOUR, TCQ, ROWCOL, TEMPORAL, TCQ8, RANS, INT, LANES = 1, 2, 4, 8, 16, 32, 64, 128
_PARTS = ((TCQ, "tcq"), (ROWCOL, "rowcol"), (NEIGHBOUR, "neighbour"), (TEMPORAL, "temporal"))
K_T = 5  # temporal classes
MAX_CODE_RANGE = 1 << 20


def _model_name(f: int) -> str:
    name = "+".join(n for bit, n in _PARTS if f & bit) or "iid"
    return name.replace("tcq", "tcq8", 1) if f & TCQ8 else name


#: Model name -> flags, e.g. "tcq+rowcol" -> 6, "tcq8" -> 18. "temporal" models need ``context``.
MODELS: dict[str, int] = {
    _model_name(f): f for f in range(32) if not (f & TCQ8 and not f & TCQ)
}
MODEL_NAMES = {v: k for k, v in MODELS.items()}


def alphabet_budget(n: int, payload_bytes: int) -> int:
    """Most probability-table entries (summed over non-constant contexts) a payload of
    ``payload_bytes`` may declare (:func:`..budget.table_allowance`; ``n`` is not used)."""
    return table_allowance(payload_bytes)


@dataclass(frozen=True)
class PayloadHeader:
    """Everything before the coded words. ``flags``: model flags only (no coder bits)."""

    flags: int
    rans_prec: int = 0  # rANS frequency precision (bits); 0 = range coder
    int_tables: bool = True
    lanes: bool = False  # rANS states interleaved over rans.lanes(n) lanes
    zero: int = 0
    center: int = 0
    t1: int = 0
    t2: int = 0
    row_len: int = 0
    k_row: int = 1
    k_col: int = 1
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    t_thr: int = 0
    dists: tuple[Dist, ...] = ()

    @property
    def model(self) -> str:
        return MODEL_NAMES[self.flags]

    @property
    def table_entries(self) -> int:
        """Probability-table entries the receiver builds (widths of non-constant contexts)."""
        return sum(d.width for d in self.dists if d.kind != CONST)

    @property
    def n_rc(self) -> int:
        """Row/column x temporal contexts (the per-element part of the context index)."""
        return ((self.k_row * self.k_col if self.flags & ROWCOL else 1)
                * (K_T if self.flags & TEMPORAL else 1))

    @property
    def n_ctx(self) -> int:
        return (2 if self.flags & TCQ else 1) * (3 if self.flags & NEIGHBOUR else 1) * self.n_rc

    def with_coder(self, rans_prec: int, dists) -> PayloadHeader:
        return replace(self, rans_prec=rans_prec, dists=tuple(dists))

    def write_fields(self, w: Writer) -> None:
        """The model's context fields (after ``model`` and ``prec``, before the dists)."""
        f = self.flags
        if f & TCQ:
            w.svarint(self.zero)
        if f & NEIGHBOUR:
            w.svarint(self.center)
            w.varint(self.t1)
            w.varint(self.t2)
        if f & ROWCOL:
            w.varint(self.row_len)
            w.u8(self.k_row)
            w.u8(self.k_col)
            w.raw(cx.pack_classes(self.rows, cx.class_bits(self.k_row)))
            w.raw(cx.pack_classes(self.cols, cx.class_bits(self.k_col)))
        if f & TEMPORAL:
            w.varint(self.t_thr)

    def fields_bytes(self) -> int:
        """Bytes of ``model``, ``prec`` and the context fields (not the dists)."""
        w = Writer()
        self.write_fields(w)
        return 1 + (1 if self.rans_prec else 0) + len(w.buf)

    def write(self, w: Writer) -> None:
        w.u8(self.flags | (RANS if self.rans_prec else 0) | (INT if self.int_tables else 0)
             | (LANES if self.lanes else 0))
        if self.rans_prec:
            w.u8(self.rans_prec)
        self.write_fields(w)
        for d in self.dists:
            d.write(w)

    @staticmethod
    def parse(payload, n: int, qmin: int, qmax: int) -> tuple[PayloadHeader, np.ndarray]:
        """(header, uint32 coded words) of a payload whose CRC is checked first; FormatError on
        anything inconsistent with ``n`` codes in ``[qmin, qmax]``."""
        data = memoryview(payload).cast("B")
        if len(data) < 5:
            raise FormatError(f"entropy payload of {len(data)} bytes is too short")
        if zlib.crc32(data[:-4]) != int.from_bytes(data[-4:], "little"):
            raise FormatError("entropy payload CRC mismatch (corrupted or truncated)")
        r = Reader(data[:-4], "entropy payload")
        flags = r.u8()
        int_tables = bool(flags & INT)
        lanes = bool(flags & LANES)
        if lanes and not (flags & RANS and int_tables):
            raise FormatError("entropy payload: lanes flag without rANS and integer tables")
        prec = 0
        if flags & RANS:
            prec = r.u8()
            top = rans.MAX_PREC if int_tables else rans.LEGACY_MAX_PREC
            if not rans.MIN_PREC <= prec <= top:
                raise FormatError(f"rANS precision {prec} outside [{rans.MIN_PREC}, {top}]")
        flags &= ~(RANS | INT | LANES)
        if flags not in MODEL_NAMES:
            raise FormatError(f"unknown entropy model id {flags}")
        lim = MAX_CODE_RANGE + abs(qmin) + abs(qmax)
        kw: dict = {}
        if flags & TCQ:
            kw["zero"] = r.svarint(limit=lim)
        if flags & NEIGHBOUR:
            kw["center"] = r.svarint(limit=lim)
            kw["t1"], kw["t2"] = r.varint(), r.varint()
        if flags & ROWCOL:
            row_len = r.varint(limit=max(n, 1))
            if row_len < 2 or n % row_len or n // row_len < 2:
                raise FormatError(f"row length {row_len} does not divide {n} elements into rows")
            k_row, k_col = r.u8(), r.u8()
            if not (1 <= k_row <= 16 and 1 <= k_col <= 16):
                raise FormatError(f"bad row/column class counts {k_row}, {k_col}")
            lists = []
            for count, k in ((n // row_len, k_row), (row_len, k_col)):
                b = cx.class_bits(k)
                lists.append(cx.unpack_classes(r.take((count * b + 7) // 8), count, b, k))
            kw.update(row_len=row_len, k_row=k_row, k_col=k_col, rows=lists[0], cols=lists[1])
        if flags & TEMPORAL:
            kw["t_thr"] = r.varint(limit=MAX_CODE_RANGE)
        smin, smax = qmin, qmax  # symbol range: codes, or trellis levels k under TCQ
        if flags & TCQ:
            smin, smax = (qmin - kw["zero"]) // 2 - 1, (qmax - kw["zero"]) // 2 + 1
        n_ctx = ((2 if flags & TCQ else 1) * (3 if flags & NEIGHBOUR else 1)
                 * (kw["k_row"] * kw["k_col"] if flags & ROWCOL else 1) * (K_T if flags & TEMPORAL else 1))
        dists = tuple(Dist.read(r, smin, smax) for _ in range(n_ctx))  # PayloadHeader.n_ctx
        live = [d.width for d in dists if d.kind != CONST]
        if sum(live) > alphabet_budget(n, len(data)):
            raise FormatError(f"probability tables of {sum(live)} entries exceed the "
                              f"{alphabet_budget(n, len(data))} a {len(data)}-byte payload may "
                              "declare")
        if prec and not rans.fits(len(dists), max(live, default=1), prec):
            raise FormatError(f"rANS precision {prec} does not fit these probability tables")
        rest = r.take(r.remaining)
        if len(rest) % 4:
            raise FormatError("entropy payload: coded words not a whole number of 32-bit words")
        h = PayloadHeader(flags, prec, int_tables, lanes, **kw, dists=dists)
        return h, np.frombuffer(rest, dtype="<u4").astype(np.uint32)

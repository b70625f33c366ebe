"""Per-context probability distributions over a contiguous integer range, and their side info.

Each context of an entropy-coded record carries one distribution record:

=====  ========  ==================================================================
kind   name      fields after ``kind`` (u8)
=====  ========  ==================================================================
0      const     ``lo`` (zigzag varint): every symbol equals ``lo``; no coded bits
1      table     ``lo``, ``width - 1`` (varint), then ``width`` 6-bit levels, packed
                 MSB first and padded to a byte; level 0 = symbol absent, level
                 v >= 1 = probability proportional to 2**(-(v - 1) / 4)
2      geometric ``lo``, ``width - 1``, ``center`` (f32), ``decay`` (f32): the
                 two-sided geometric (discretised Laplace) p(k) ~ exp(-|k - center| / decay)
3      gauss     ``lo``, ``width - 1``, ``mean`` (f32), ``std`` (f32): the discretised
                 Gaussian p(k) ~ exp(-(k - mean)**2 / (2 std**2))
4      uniform   ``lo``, ``width - 1``: every symbol of the range equally likely
=====  ========  ==================================================================

Every probability is floored at 2**-20 of the most probable one, so every symbol of the range
can be coded. Payloads with integer tables (the ``INT`` flag) turn a record into integer weights
(:meth:`Dist.weights`, :mod:`.tables`); older payloads into float64 probabilities
(:meth:`Dist.probs`, kept bit for bit for them).

The sender's fitting of these records to histograms lives in :mod:`nnshare.quant.entropy_fit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormatError
from ..wire import Reader, Writer
from . import tables

CONST, TABLE, GEOMETRIC, GAUSS, UNIFORM = 0, 1, 2, 3, 4
KIND_NAMES = {CONST: "const", TABLE: "table", GEOMETRIC: "geometric", GAUSS: "gauss",
              UNIFORM: "uniform"}
LEVEL_BITS = 6
_MAX_LEVEL = (1 << LEVEL_BITS) - 1
# 2**(-j/4) for j = 0..62, from Python floats (identical on every IEEE-754 platform).
_LEVELS = np.array([2.0 ** (-j / 4.0) for j in range(_MAX_LEVEL)], dtype=np.float64)
_FLOOR = 2.0**-20


@dataclass(frozen=True)
class Dist:
    """One context's distribution over the symbols ``lo .. lo + width - 1``."""

    kind: int
    lo: int
    width: int
    levels: np.ndarray | None = None  # TABLE: uint8 levels, one per symbol
    a: float = 0.0  # GEOMETRIC center / GAUSS mean
    b: float = 1.0  # GEOMETRIC decay / GAUSS std

    def probs(self) -> np.ndarray:
        """Normalised float64 probabilities of the ``width`` symbols (each >= ~2**-20)."""
        k = np.arange(self.width, dtype=np.float64) + self.lo
        if self.kind == CONST:
            return np.ones(1)
        if self.kind == TABLE:
            lv = self.levels.astype(np.int64)
            p = np.where(lv > 0, _LEVELS[np.maximum(lv - 1, 0)], 0.0)
        elif self.kind == UNIFORM:
            return np.full(self.width, 1.0 / self.width)
        elif self.kind == GEOMETRIC:
            p = np.exp(-np.abs(k - self.a) / self.b)
        else:
            p = np.exp(-0.5 * ((k - self.a) / self.b) ** 2)
        p = np.maximum(p / max(p.max(), 1e-300), _FLOOR)
        return p / p.sum()

    def weights(self) -> np.ndarray:
        """int64 integer weights of the ``width`` symbols (top 2**36, floor 2**16): the table
        of payloads with integer tables, the same on every machine (see :mod:`.tables`)."""
        if self.kind == CONST:
            return np.ones(1, np.int64)
        if self.kind == UNIFORM:
            return np.full(self.width, np.int64(1) << tables.TOP_BITS)
        if self.kind == TABLE:
            lv = self.levels.astype(np.int64)
            present = lv > 0
            y = (np.maximum(lv, 1) - 1) << (tables.FRAC - 2)
            y = y - y[present].min()
            w = tables.weights_of_exponents(y)
            return np.where(present, w, np.int64(1) << tables.FLOOR_BITS)
        fn = tables.geometric_exponents if self.kind == GEOMETRIC else tables.gauss_exponents
        y = fn(self.lo, self.width, self.a, self.b)
        return tables.weights_of_exponents(y - y.min())

    def side_bits(self) -> int:
        """Bits this record takes in the payload."""
        w = Writer()
        self.write(w)
        return 8 * len(w.buf)

    def write(self, w: Writer) -> None:
        w.u8(self.kind)
        w.svarint(self.lo)
        if self.kind == CONST:
            return
        w.varint(self.width - 1)
        if self.kind == UNIFORM:
            return
        if self.kind == TABLE:
            bits = np.unpackbits(self.levels.astype(np.uint8)[:, None], axis=1)[:, 8 - LEVEL_BITS :]
            w.raw(np.packbits(bits.ravel()).tobytes())
        else:
            w.f32le(self.a)
            w.f32le(self.b)

    @staticmethod
    def read(r: Reader, qmin: int, qmax: int) -> Dist:
        """Parse one record; the range must lie inside ``[qmin, qmax]``."""
        kind = r.u8()
        if kind not in KIND_NAMES:
            raise FormatError(f"unknown distribution kind {kind}")
        lo = r.svarint()
        if not qmin <= lo <= qmax:
            raise FormatError(f"distribution start {lo} outside code range [{qmin}, {qmax}]")
        if kind == CONST:
            return Dist(CONST, lo, 1)
        width = r.varint(limit=qmax - lo) + 1
        if kind == UNIFORM:
            return Dist(UNIFORM, lo, width)
        if kind == TABLE:
            nbytes = (width * LEVEL_BITS + 7) // 8
            raw = np.frombuffer(r.take(nbytes), dtype=np.uint8)
            bits = np.unpackbits(raw)[: width * LEVEL_BITS].reshape(width, LEVEL_BITS)
            levels = bits.astype(np.uint8) << np.arange(LEVEL_BITS - 1, -1, -1, dtype=np.uint8)
            levels = levels.sum(axis=1, dtype=np.uint8)
            if not levels.any():
                raise FormatError("probability table with no symbol")
            return Dist(TABLE, lo, width, levels=levels)
        a, b = r.f32le(), r.f32le()
        if not (np.isfinite(a) and np.isfinite(b) and b > 0):
            raise FormatError(f"bad distribution parameters ({a}, {b})")
        return Dist(kind, lo, width, a=a, b=b)

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

Every probability is floored at 2**-20 before normalisation, so every symbol of the range can
be coded. Encoder and decoder build the same float64 table from the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormatError
from ..wire import Reader, Writer

CONST, TABLE, GEOMETRIC, GAUSS, UNIFORM = 0, 1, 2, 3, 4
KIND_NAMES = {CONST: "const", TABLE: "table", GEOMETRIC: "geometric", GAUSS: "gauss",
              UNIFORM: "uniform"}
LEVEL_BITS = 6
_MAX_LEVEL = (1 << LEVEL_BITS) - 1
# 2**(-j/4) for j = 0..62, from Python floats (identical on every IEEE-754 platform).
_LEVELS = np.array([2.0 ** (-j / 4.0) for j in range(_MAX_LEVEL)], dtype=np.float64)
_FLOOR = 2.0**-20
_SCALE_STEPS = (0.85, 0.93, 1.0, 1.07, 1.15)


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


def cost_of(hist: np.ndarray, dist: Dist) -> float:
    """Ideal coded bits of symbols with histogram ``hist`` (over dist's range) under ``dist``."""
    if dist.kind == CONST:
        return 0.0
    p = dist.probs()
    nz = hist > 0
    return float(-(hist[nz] * np.log2(p[nz])).sum())


def _table(hist: np.ndarray, lo: int) -> Dist:
    c = hist.astype(np.float64)
    v = 1 + np.rint(-4.0 * np.log2(np.maximum(c, 1e-300) / c.max()))
    levels = np.where(c > 0, np.clip(v, 1, _MAX_LEVEL), 0).astype(np.uint8)
    return Dist(TABLE, lo, hist.size, levels=levels)


def _varint_len(v: int) -> int:
    return max(1, (int(v).bit_length() + 6) // 7)


def _side_bits(kind: int, lo: int, width: int) -> int:
    """Bits of a distribution record (same as ``Dist.side_bits`` without writing it)."""
    b = 1 + _varint_len(2 * lo if lo >= 0 else -2 * lo - 1)
    if kind == CONST:
        return 8 * b
    b += _varint_len(width - 1)
    if kind == TABLE:
        b += (width * LEVEL_BITS + 7) // 8
    elif kind in (GEOMETRIC, GAUSS):
        b += 8
    return 8 * b


def _refine(hist: np.ndarray, lo: int, kind: int, a: float, b: float) -> tuple[Dist, float]:
    """The best of a few scales around ``b`` (same probabilities as ``Dist.probs``), with its
    coded bits; all scales evaluated at once."""
    k = np.arange(hist.size, dtype=np.float64) + lo
    a32 = float(np.float32(a))
    bs = [float(np.float32(max(b * f, 0.05))) for f in _SCALE_STEPS]
    bv = np.array(bs)[:, None]
    p = np.exp(-np.abs(k - a32) / bv) if kind == GEOMETRIC else np.exp(-0.5 * ((k - a32) / bv) ** 2)
    p = np.maximum(p / np.maximum(p.max(axis=1, keepdims=True), 1e-300), _FLOOR)
    nz = hist > 0
    lp = np.log2(p[:, nz]) - np.log2(p.sum(axis=1, keepdims=True))
    costs = -(lp * hist[nz]).sum(axis=1)
    j = int(np.argmin(costs))
    return Dist(kind, lo, hist.size, a=a32, b=bs[j]), float(costs[j])


def fit_cost(
    hist: np.ndarray, lo: int, kinds: tuple[int, ...] = (TABLE, GEOMETRIC, GAUSS, UNIFORM)
) -> tuple[Dist, float]:
    """:func:`fit` and the ideal coded bits of ``hist`` under the chosen distribution."""
    if hist.size == 1:
        return Dist(CONST, lo, 1), 0.0
    k = np.arange(hist.size, dtype=np.float64) + lo
    n = hist.sum()
    mean = float((hist * k).sum() / n)
    cands: list[tuple[Dist, float]] = []
    if UNIFORM in kinds:
        cands.append((Dist(UNIFORM, lo, hist.size), float(n) * np.log2(hist.size)))
    if TABLE in kinds:
        d = _table(hist, lo)
        cands.append((d, cost_of(hist, d)))
    if GEOMETRIC in kinds:
        cdf = np.cumsum(hist)
        med = float(k[np.searchsorted(cdf, (n + 1) // 2)])
        mad = float((hist * np.abs(k - med)).sum() / n)
        cands.append(_refine(hist, lo, GEOMETRIC, med, max(mad, 0.1)))
    if GAUSS in kinds:
        std = float(np.sqrt((hist * (k - mean) ** 2).sum() / n))
        cands.append(_refine(hist, lo, GAUSS, mean, max(std, 0.1)))
    return min(cands, key=lambda dc: dc[1] + _side_bits(dc[0].kind, lo, hist.size))


def fit(
    hist: np.ndarray, lo: int, kinds: tuple[int, ...] = (TABLE, GEOMETRIC, GAUSS, UNIFORM)
) -> Dist:
    """The cheapest distribution (coded bits + side-info bits) for a histogram starting at ``lo``.

    ``hist``: int64 counts of the symbols ``lo .. lo + len(hist) - 1``; first and last non-zero.
    """
    return fit_cost(hist, lo, kinds)[0]

"""Integer probability tables of the entropy coder (payloads with the ``INT`` flag).

Every table the decoder needs is built here with integer arithmetic only, so encoder and
decoder agree on every machine (no libm ``exp``/``pow``, no float rounding mode):

1. Each symbol of a context gets an exponent ``y >= 0`` in units of 2**-16 bit
   (``-log2`` of its weight relative to the most probable symbol):
   table levels ``y = (v - 1) * 2**14``; geometric ``y = |k - a| log2(e) / b``; Gaussian
   ``y = ((k - a) / b)**2 log2(e) / 2``; uniform ``y = 0``. The f32 parameters are read as exact
   rationals; ``a`` (in units of 2**-16) and ``1 / b`` (24 significant bits) become fixed-point
   integers; ``log2(e)`` is the integer constant :data:`LOG2E_Q64` (= floor(log2(e) * 2**64)).
   ``y`` is shifted so its minimum is 0.
2. Weight ``w = max(floor(2**36 * 2**(-y / 2**16)), 2**16)`` from two 256-entry tables of
   ``2**31 * 2**(-j/256)`` and ``2**31 * 2**(-j/65536)``, themselves built by integer square
   roots (:func:`exp2_tables`). Level-0 (absent) table symbols get the floor weight 2**16.
3. Frequencies summing to ``2**prec`` (:func:`quantize`): ``max(1, round(w 2**prec / W))``,
   the remainder on the first heaviest symbol (if that leaves it < 1:
   ``floor(w (2**prec - width) / W) + 1``, remainder again on it).

Payloads written before the flag keep their float64 tables (:meth:`.dists.Dist.probs` and
:func:`quantize_float` for rANS, constriction's quantisation for the range coder).
"""

from __future__ import annotations

import math

import numpy as np

FRAC = 16  # fractional bits of exponents y
TOP_BITS = 36  # weight of the most probable symbol: 2**36
FLOOR_BITS = 16  # smallest weight: 2**16 (2**-20 of the top, as the float tables)
LOG2E_Q64 = 0x171547652B82FE177  # floor(log2(e) * 2**64)
_C_GAUSS = math.isqrt(LOG2E_Q64 << 63)  # floor(sqrt(log2(e) / 2) * 2**64)
_K = 96  # fixed-point bits of the square-root chain


def exp2_tables() -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo): int64 ``floor(2**31 * 2**(-j/256))`` and ``floor(2**31 * 2**(-j/65536))``,
    j = 0..255, from a chain of integer square roots (s_m = 2**(-1/2**m) with 96 bits)."""
    s = [0, math.isqrt(1 << (2 * _K - 1))]  # s[m] ~ 2**K * 2**(-1 / 2**m)
    for _ in range(2, 17):
        s.append(math.isqrt(s[-1] << _K))

    def table(first_m: int) -> np.ndarray:  # bit i of j weighs 2**(-1 / 2**(first_m - i))
        out = []
        for j in range(256):
            acc = 1 << _K
            for i in range(8):
                if j >> i & 1:
                    acc = acc * s[first_m - i] >> _K
            out.append(acc >> (_K - 31))
        return np.array(out, np.int64)

    return table(8), table(16)


_HI, _LO = exp2_tables()


def weights_of_exponents(y: np.ndarray) -> np.ndarray:
    """int64 weights ``max(floor(2**36 * 2**(-y / 2**16)), 2**16)`` of int64 exponents y >= 0."""
    y = np.asarray(y, np.int64)
    ip = np.minimum(y >> FRAC, 37)
    prod = _HI[(y >> 8) & 255] * _LO[y & 255]  # < 2**62
    w = prod >> (62 - TOP_BITS + ip)
    return np.maximum(w, np.int64(1) << FLOOR_BITS)


def _fixed(num: int, den: int, bits: int) -> tuple[int, int]:
    """(m, sh) with m = floor(x * 2**sh) holding ``bits`` significant bits, x = num / den > 0
    (reduced to lowest terms first, as a Fraction would be)."""
    g = math.gcd(num, den)
    num, den = num // g, den // g
    sh = bits - (num.bit_length() - den.bit_length())
    m = (num << sh) // den if sh >= 0 else num // (den << -sh)
    return m, sh


def _a16(lo: int, width: int, a: float) -> int:
    """a * 2**16 rounded half to even, a first clamped to [lo - 2**21, lo + width + 2**21]."""
    an, ad = float(a).as_integer_ratio()
    low, high = lo - (1 << 21), lo + width + (1 << 21)
    if an < low * ad:
        an, ad = low, 1
    elif an > high * ad:
        an, ad = high, 1
    q, rem = divmod(an << 16, ad)
    if 2 * rem > ad or (2 * rem == ad and q & 1):
        q += 1
    return q


def _distance(lo: int, width: int, a: float) -> np.ndarray:
    """|k - a| * 2**16 (int64, rounded half to even) for k = lo .. lo + width - 1; a clamped
    near the range. Exact integer arithmetic on the float's ratio."""
    q = _a16(lo, width, a)
    k = np.arange(width, dtype=np.int64) + lo
    return np.abs((k << 16) - q)  # < 2**38


def _scale(b: float) -> tuple[int, int]:
    """b clamped to [2**-8, 2**24] as an exact ratio (numerator, denominator)."""
    n, d = float(b).as_integer_ratio()
    if n * 256 < d:
        return 1, 256
    if n > d << 24:
        return 1 << 24, 1
    return n, d


def geometric_exponents(lo: int, width: int, a: float, b: float) -> np.ndarray:
    """y = |k - a| log2(e) / b in units of 2**-16 (before the shift to minimum 0)."""
    bn, bd = _scale(b)
    g, sh = _fixed(LOG2E_Q64 * bd, bn << 64, 24)  # g < 2**24
    d = _distance(lo, width, a)
    return (d * g) >> sh


def gauss_exponents(lo: int, width: int, a: float, b: float) -> np.ndarray:
    """y = ((k - a) / b)**2 log2(e) / 2 in units of 2**-16 (before the shift to minimum 0)."""
    c = _C_GAUSS  # floor(sqrt(log2(e) / 2) * 2**64)
    bn, bd = _scale(b)
    h, sh = _fixed(c * bd, bn << 64, 24)
    u16 = np.minimum((_distance(lo, width, a) * h) >> sh, 1 << 27)  # |k - a| sqrt(.) / b * 2**16
    return (u16 * u16) >> 16


def quantize(w: np.ndarray, prec: int) -> np.ndarray:
    """Integer frequencies (int64, each >= 1, summing to ``2**prec``) of int64 weights ``w``."""
    m = 1 << prec
    w = np.asarray(w, np.int64)
    total = int(w.sum())
    f = np.maximum((w * m + total // 2) // total, 1)
    top = int(np.argmax(w))
    f[top] += m - int(f.sum())
    if f[top] < 1:  # only for flat tables with many floored symbols
        f = (w * (m - w.size)) // total + 1
        f[top] += m - int(f.sum())
    return f


def quantize_float(p: np.ndarray, prec: int) -> np.ndarray:
    """Frequencies of float64 probabilities as rANS payloads without integer tables have them:
    rounded, floored at 1, the remainder on the first most probable symbol (if that leaves it
    < 1: floor(p * (2**prec - width)) + 1 instead)."""
    m = 1 << prec
    top = int(np.argmax(p))
    f = np.maximum(np.rint(p * float(m)), 1.0).astype(np.int64)
    f[top] += m - int(f.sum())
    if f[top] < 1:
        f = np.floor(p * float(m - p.size)).astype(np.int64) + 1
        f[top] += m - int(f.sum())
    return f


def context_freqs(dists, prec: int, int_tables: bool) -> list[np.ndarray | None]:
    """Per context: frequencies summing to 2**prec (None for a constant context), from the
    integer weights (payloads with integer tables) or the float64 probabilities (older ones).
    Integer tables of geometric and Gauss contexts are built for all contexts at once
    (:func:`_batch_freqs`; the same integers as :func:`quantize` of each ``Dist.weights``)."""
    from .dists import CONST, GAUSS, GEOMETRIC

    if not int_tables:
        return [None if d.kind == CONST else quantize_float(d.probs(), prec) for d in dists]
    out: list[np.ndarray | None] = [None] * len(dists)
    batch = []
    for i, d in enumerate(dists):
        if d.kind in (GAUSS, GEOMETRIC):
            batch.append(i)
        elif d.kind != CONST:
            out[i] = quantize(d.weights(), prec)
    if batch:
        for i, f in zip(batch, _batch_freqs([dists[i] for i in batch], prec), strict=True):
            out[i] = f
    return out


def _batch_freqs(dists, prec: int) -> list[np.ndarray]:
    """:func:`quantize` of the weights of geometric / Gauss contexts, vectorised over contexts:
    the exponents of :func:`geometric_exponents` / :func:`gauss_exponents` with each context's
    fixed-point constants, shifted to minimum 0 per context, then rounded per context."""
    from .dists import GAUSS

    widths = np.array([d.width for d in dists], np.int64)
    starts = np.zeros(widths.size, np.int64)
    starts[1:] = np.cumsum(widths)[:-1]
    lo_k, a16, mul, sh, gauss = [], [], [], [], []
    for d in dists:
        bn, bd = _scale(d.b)
        c = _C_GAUSS if d.kind == GAUSS else LOG2E_Q64
        m, s_ = _fixed(c * bd, bn << 64, 24)
        q = _a16(d.lo, d.width, d.a)
        lo_k.append(d.lo)
        a16.append(q)
        mul.append(m)
        sh.append(s_)
        gauss.append(d.kind == GAUSS)
    rep = np.repeat(np.arange(widths.size), widths)
    k = np.arange(int(widths.sum()), dtype=np.int64) - starts[rep] + np.asarray(lo_k, np.int64)[rep]
    dist = np.abs((k << 16) - np.asarray(a16, np.int64)[rep])
    y = (dist * np.asarray(mul, np.int64)[rep]) >> np.asarray(sh, np.int64)[rep]
    g = np.asarray(gauss, np.bool_)[rep]
    u16 = np.minimum(y, 1 << 27)
    y = np.where(g, (u16 * u16) >> 16, y)
    y -= np.minimum.reduceat(y, starts)[rep]
    w = weights_of_exponents(y)
    mm = 1 << prec
    total = np.add.reduceat(w, starts)
    f = np.maximum((w * mm + (total // 2)[rep]) // total[rep], 1)
    top_w = np.maximum.reduceat(w, starts)
    cand = np.flatnonzero(w == top_w[rep])
    top = cand[np.searchsorted(cand, starts)]  # first most probable symbol of each context
    f[top] += mm - np.add.reduceat(f, starts)
    parts = np.split(f, starts[1:])
    for c in np.flatnonzero(f[top] < 1):  # flat tables with many floored symbols: the scalar rule
        parts[c] = quantize(w[starts[c]:starts[c] + widths[c]], prec)
    return parts


def checksum_dists():
    """Fixed distribution records whose tables :func:`checksum` covers."""
    from .dists import GAUSS, GEOMETRIC, TABLE, UNIFORM, Dist

    levels = (np.arange(40) * 7 % 64).astype(np.uint8)
    return [Dist(GEOMETRIC, -40, 81, a=0.37, b=3.1), Dist(GAUSS, -300, 601, a=-2.5, b=71.0),
            Dist(GAUSS, -5000, 10001, a=13.25, b=2000.0), Dist(TABLE, 0, 40, levels=levels),
            Dist(UNIFORM, 5, 9), Dist(GEOMETRIC, 0, 4096, a=4000.5, b=1e5),
            Dist(GAUSS, 0, 64, a=31.0, b=0.06), Dist(GEOMETRIC, -(2**19), 2**20, a=-3.0, b=7e4)]


def checksum() -> int:
    """CRC-32 of the exp2 tables and of frequency tables for fixed parameters (a test pins it)."""
    import zlib

    parts = [_HI, _LO]
    for d in checksum_dists():
        for prec in (12, 16, 22, 24):
            if d.width * 2 <= 1 << prec:
                parts.append(quantize(d.weights(), prec))
    return zlib.crc32(b"".join(np.asarray(p, "<i8").tobytes() for p in parts))

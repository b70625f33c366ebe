"""Range-coder back end: a numpy/pure-Python decoder of constriction's queue range coder, and
the optional constriction encoder (the ``coder="range"`` opt-in of the sender).

The decoder follows the algorithm constriction (0.4, 0.5) documents for its default range coder
(``RangeEncoder<u32, u64>`` with 24-bit categorical models); it is written from that
description, not from its code, and needs no package beyond numpy:

- state ``lower = 0``, ``range = 2**64 - 1``; ``point`` = the first two 32-bit words, big word
  first (fewer words: zero-padded on the right).
- per symbol: ``scale = range >> 24``; ``q = ((point - lower) mod 2**64) // scale`` (>= 2**24:
  invalid data); the symbol is the last ``s`` with ``cdf[s] <= q``; ``lower += scale * cdf[s]``
  (mod 2**64), ``range = scale * (cdf[s+1] - cdf[s])``; while ``range < 2**32`` (once at most):
  ``lower <<= 32``, ``range <<= 32`` (mod 2**64), ``point = point << 32 | next word`` (0 past
  the end).

A context's cumulative table (:func:`cdf_from_floats`) is constriction's "fast" quantisation of
float64 probabilities (``Categorical(p, perfect=False)``): ``free = 2**24 - width``,
``scale = free / sum(p)`` (sequential float64 sum), ``cdf[i] = trunc(c_i * scale) + i`` with
``c_i`` the sequential float64 sum of ``p[:i]``, and ``cdf[width] = 2**24``. Payloads written
with integer tables (:mod:`.tables`) give constriction ``f - 1`` for integer frequencies ``f``
summing to 2**24: every step above is then exact, so ``cdf`` is the integer cumulative table.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

import numpy as np

from ..errors import FormatError, SpecError

PRECISION = 24
_ONE = 1 << PRECISION
_M64 = (1 << 64) - 1
_LOW = 1 << 32


def cdf_from_floats(p: np.ndarray) -> array:
    """Cumulative table (width + 1 ints, 0 .. 2**24) of float64 probabilities ``p``, exactly as
    constriction quantises them (see the module docstring); FormatError if it cannot."""
    p = np.asarray(p, np.float64)
    if p.size < 2 or p.size >= _ONE - 1:
        raise FormatError(f"range coder: a categorical model needs 2 .. 2**24 - 2 symbols, "
                          f"got {p.size}")
    c = np.concatenate([[0.0], np.cumsum(p)])  # sequential float64 sums, as constriction
    total = float(c[-1])
    if not (np.isfinite(total) and total > 0 and total >= np.finfo(np.float64).tiny):
        raise FormatError("range coder: probabilities do not sum to a positive number")
    scale = float(_ONE - p.size) / total
    left = np.trunc(c[:-1] * scale)
    left = np.minimum(left, float(2**32 - 1)).astype(np.int64) + np.arange(p.size)
    return array("q", np.append(left, _ONE).astype(np.int64).tobytes())


def cdf_from_freqs(freq: np.ndarray) -> array:
    """Cumulative table (int64 array, width + 1 entries) of integer frequencies summing to
    2**24 (each >= 1)."""
    f = np.asarray(freq, np.int64)
    return array("q", np.concatenate([[0], np.cumsum(f)]).astype(np.int64).tobytes())


class RangeDecoder:
    """Sequential decoder over a uint32 word array (see the module docstring).

    ``max_symbols``: most symbols it may decode (the decoding budget; FormatError past it).
    :meth:`finish` checks the clean end constriction's encoder leaves: every word consumed; at
    most one word of the point implied (zero: read past the end, or the second initial word of
    a one-word stream); the point's last word zero, and when no word was implied its first
    word that of ``lower + range - 1`` (how constriction seals a stream). A stream with symbols
    and no words, or with words left over or appended, is refused."""

    def __init__(self, words: np.ndarray, max_symbols: int | None = None):
        self.words = array("I", np.asarray(words, np.uint32).astype("=u4").tobytes())
        self.pos = min(2, len(self.words))
        self.implied = 2 - self.pos  # zero words the point was padded with
        self.symbols, self.max_symbols = 0, max_symbols
        point = 0
        for w in self.words[: self.pos]:
            point = point << 32 | w
        if self.pos:
            point <<= 32 * (2 - self.pos)
        self.point, self.lower, self.range = point, 0, _M64

    def charge(self, m: int) -> None:
        """Book ``m`` symbols about to be decoded against ``max_symbols``."""
        self.symbols += m
        if self.max_symbols is not None and self.symbols > self.max_symbols:
            raise FormatError(f"entropy payload: {self.symbols} range-coded symbols exceed the "
                              f"{self.max_symbols} its length allows")

    def finish(self) -> None:
        """FormatError unless the words ended cleanly (see the class docstring)."""
        if not self.symbols:
            if len(self.words):
                raise FormatError("entropy payload: range-coded words but no coded symbol")
            return
        top = ((self.lower + self.range - 1) & _M64) >> 32
        sealed = self.point & 0xFFFFFFFF == 0 and (self.implied == 1 or self.point >> 32 == top)
        if self.pos != len(self.words) or self.implied > 1 or not sealed:
            raise FormatError("entropy payload: range-coded data does not end cleanly "
                              f"({len(self.words) - self.pos} words left, {self.implied} missing)")

    def decode(self, cdf: list[int], m: int) -> np.ndarray:
        """``m`` symbol indices (int32) under one cumulative table."""
        out = np.empty(m, np.int32)
        words, pos, nw = self.words, self.pos, len(self.words)
        point, lower, rng = self.point, self.lower, self.range
        last = len(cdf) - 1
        for i in range(m):
            scale = rng >> PRECISION
            q = ((point - lower) & _M64) // scale
            if q >= _ONE:
                raise FormatError("entropy payload: range-coded data invalid")
            s = bisect_right(cdf, q, 0, last) - 1
            lo = cdf[s]
            lower = (lower + scale * lo) & _M64
            rng = scale * (cdf[s + 1] - lo)
            if rng < _LOW:
                lower = (lower << 32) & _M64
                rng <<= 32
                point = (point << 32) & _M64
                if pos < nw:
                    point |= words[pos]
                    pos += 1
                else:
                    self.implied += 1
            out[i] = s
        self.pos, self.point, self.lower, self.range = pos, point, lower, rng
        return out


def constriction_encoder():
    """A constriction ``RangeEncoder`` and its ``Categorical`` class (the sender's opt-in range
    coder); SpecError naming the package when it is not installed."""
    try:
        import constriction
    except ImportError:
        raise SpecError("coder='range' needs the constriction package "
                        "(pip install 'nnshare[range]')") from None
    return constriction.stream.queue.RangeEncoder(), constriction.stream.model.Categorical


def encode_runs(runs) -> np.ndarray:
    """uint32 words of ``runs``: (symbol indices, integer frequencies summing to 2**24) pairs,
    coded in order with constriction's range coder."""
    enc, categorical = constriction_encoder()
    for sym, freq in runs:
        model = categorical(np.asarray(freq, np.float64) - 1.0, perfect=False)
        enc.encode(np.asarray(sym, np.int32), model)
    return np.asarray(enc.get_compressed(), np.uint32)

"""Multipoint scheme (id 6): each row is a sum of low-bit vectors, ``x_hat_c = sum_i a_ci q_ci``.

Multipoint quantization (Liu, Ye, Zhou, Liu, AAAI 2021, arXiv 2002.09049): a row (the whole
tensor, or one slice along the channel axis) is approximated by n_c >= 1 "points", each a scale
a_ci >= 0 times a vector q_ci of b-bit integers; rows with a large error get more points, so it
works like mixed precision with one code width. Body (see docs/format.md):

- byte 1: ``(bits - 1) << 4 | (points - 1)`` (b = 1..8; at most 16 points per row);
- byte 2: ``scale dtype << 6 | coding << 4 | granularity`` (0 tensor, 1 channel; bits 3-1 zero);
- axis (u8) per channel;
- side info: per-row point counts ``n_c - 1`` at 4 bits each (byte-padded; only if points > 1),
  then the P = sum n_c scales row after row, point after point, in the scale dtype (finite, >= 0);
- codes: P x (n / rows) offsets ``u`` at b bits (point after point, each point's vector in
  stream order, byte-padded), or an entropy field over [0, umax].

Grid: b = 1: ``q = 2u - 1`` (u in {0, 1}, q in {-1, +1}); b >= 2: ``q = u - L`` with
L = 2^(b-1) - 1 (u in [0, 2L], q in [-L, L]). ``QuantizedTensor.codes`` holds the grid values q
as an int32 (P, n / rows) array; params ``scale`` (P,) float32 and ``counts`` (rows,) int32.
The receiver rebuilds each row in float32, adding the points in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import bitpack, grain
from ..errors import FormatError, SpecError
from ..grain import Granularity, PerAxis, PerTensor
from ..wire import Reader
from .base import (
    CODING_ENTROPY,
    FLOAT_BITS,
    FLOAT_CODES,
    FLOAT_NAMES,
    Coding,
    EntropyField,
    Pending,
    Scheme,
    ceil8,
    choose_codes,
    read_code_field,
    read_floats,
    unpack_code_field,
    write_floats,
)

MAX_POINTS = 16
COUNT_BITS = 4


def grid_half(bits: int) -> int:
    """L: the largest grid value (1 for b = 1 and b = 2)."""
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def umax(bits: int) -> int:
    """Largest offset code: 1 for b = 1, 2L for b >= 2."""
    return 1 if bits == 1 else 2 * grid_half(bits)


def to_offsets(q: np.ndarray, bits: int) -> np.ndarray:
    """Grid values -> offset codes u (int64)."""
    q = np.asarray(q, np.int64)
    return (q + 1) // 2 if bits == 1 else q + grid_half(bits)


def from_offsets(u: np.ndarray, bits: int) -> np.ndarray:
    """Offset codes u -> grid values q (int32)."""
    u = np.asarray(u, np.int32)
    return 2 * u - 1 if bits == 1 else u - np.int32(grid_half(bits))


@dataclass(frozen=True)
class MultipointWire:
    """What a multipoint record tells the receiver: code width ``bits``, the most points a row
    may have (``points``), how many points the tensor has beyond one per row (``extra``; the
    reader sums the sent counts), the granularity and the scale dtype."""

    bits: int = 4
    points: int = 2
    extra: int = 0
    grain: Granularity = PerAxis(0)
    scale_dtype: str = "fp16"
    scheme: ClassVar[str] = "multipoint"

    def __post_init__(self) -> None:
        for name in ("bits", "points", "extra"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{name} must be an integer, got {v!r}")
        if not 1 <= int(self.bits) <= 8:
            raise SpecError(f"multipoint codes have 1..8 bits, got {self.bits}")
        if not 1 <= int(self.points) <= MAX_POINTS:
            raise SpecError(f"a row has 1..{MAX_POINTS} points, got {self.points}")
        if self.extra < 0 or (self.points == 1 and self.extra):
            raise SpecError(f"extra points must be >= 0 (and 0 with one point per row), got {self.extra}")
        if not isinstance(self.grain, PerTensor | PerAxis):
            raise SpecError("multipoint granularity is 'tensor' or 'channel'")
        if self.scale_dtype not in FLOAT_CODES:
            raise SpecError(f"scale_dtype must be one of {', '.join(FLOAT_CODES)}, got {self.scale_dtype!r}")

    @property
    def granularity(self) -> str:
        return self.grain.kind

    @property
    def axis(self) -> int:
        return self.grain.axis

    @property
    def qmin(self) -> int:
        return -grid_half(self.bits)

    @property
    def qmax(self) -> int:
        return grid_half(self.bits)

    def for_shape(self, shape: tuple[int, ...]) -> MultipointWire:
        """This spec with its axis made non-negative; SpecError if ``extra`` does not fit."""
        g = self.grain.on(tuple(shape))
        rows = grain.n_rows(shape, g)
        if self.extra > rows * (self.points - 1):
            raise SpecError(
                f"{self.extra} extra points do not fit {rows} rows of at most {self.points} points"
            )
        return (
            self
            if g == self.grain
            else MultipointWire(self.bits, self.points, self.extra, g, self.scale_dtype)
        )

    def wire(self, shape: tuple[int, ...] | None = None) -> MultipointWire:
        return self if shape is None else self.for_shape(shape)


def _layout(shape, w: MultipointWire) -> tuple[int, int, int]:
    """(rows, elements per row, total points P)."""
    n = int(np.prod(shape, dtype=np.int64))
    rows = grain.n_rows(shape, w)
    return rows, (n // rows if rows else 0), rows + w.extra


class MultipointScheme(Scheme):
    name = "multipoint"
    scheme_id = 6
    wire_type = MultipointWire

    def at_bits(self, w: MultipointWire, bits: int) -> MultipointWire:
        return MultipointWire(int(bits), w.points, w.extra, w.grain, w.scale_dtype)

    def describe(self, w: MultipointWire) -> str:
        g = f" ch{w.axis}" if w.granularity == "channel" else ""
        return f"multipoint b{w.bits} <={w.points}pt +{w.extra}{g}"

    def body_bits(self, shape, w: MultipointWire) -> int:
        rows, per_row, p = _layout(shape, w)
        head = 16 + (8 if w.granularity == "channel" else 0)
        counts = ceil8(COUNT_BITS * rows) if w.points > 1 else 0
        return head + counts + p * FLOAT_BITS[w.scale_dtype] + ceil8(p * per_row * w.bits)

    def write(self, out, tally, q, w: MultipointWire, coding: Coding) -> None:
        name = tally.name
        if coding.context is not None:
            raise SpecError(f"tensor {name!r}: a multipoint record takes no temporal context")
        shape = tuple(q.shape)
        rows, per_row, p = _layout(shape, w)
        counts = np.asarray(q.params["counts"]).reshape(-1).astype(np.int64)
        if counts.size != rows or np.any(counts < 1) or np.any(counts > w.points) or counts.sum() != p:
            raise SpecError(
                f"tensor {name!r}: point counts must be {rows} values in 1..{w.points} summing to {p}"
            )
        scale = np.asarray(q.params["scale"], np.float32).reshape(-1)
        if scale.size != p or not np.all(np.isfinite(scale) & (scale >= 0)):
            raise SpecError(f"tensor {name!r}: scales must be {p} finite numbers >= 0")
        codes = np.asarray(q.codes).reshape(-1).astype(np.int64)
        if codes.size != p * per_row or (codes.size and (codes.min() < w.qmin or codes.max() > w.qmax)):
            raise SpecError(
                f"tensor {name!r}: codes must be {p} x {per_row} grid values in [{w.qmin}, {w.qmax}]"
            )
        u = to_offsets(codes, w.bits)
        if w.bits == 1 and np.any(codes == 0):
            raise SpecError(f"tensor {name!r}: 1-bit multipoint codes are -1 or +1")
        field = choose_codes(
            lambda: u,
            umax(w.bits),
            u.size * w.bits,
            lambda: bitpack.pack(u, w.bits),
            coding,
            per_row or None,
            int(u.size),
        )
        out.u8((w.bits - 1) << 4 | (w.points - 1))
        out.u8(FLOAT_CODES[w.scale_dtype] << 6 | field.coding << 4 | (1 if w.granularity == "channel" else 0))
        if w.granularity == "channel":
            out.u8(w.axis)
        tally.close("record")
        pad = 0
        if w.points > 1:
            cb = bitpack.pack(counts - 1, COUNT_BITS)
            out.raw(cb)
            pad = 8 * len(cb) - COUNT_BITS * rows
        write_floats(out, scale, w.scale_dtype)
        tally.close("side", pad)
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    def read(self, r: Reader, tally, shape) -> Pending:
        name = tally.name
        b1 = r.u8(f"spec of {name!r}")
        b2 = r.u8(f"spec of {name!r}")
        bits, points = (b1 >> 4) + 1, (b1 & 15) + 1
        sdt, coding, g = b2 >> 6, b2 >> 4 & 3, b2 & 15
        if bits > 8 or sdt not in FLOAT_NAMES or coding > 1 or g > 1:
            raise FormatError(f"record {name!r}: invalid multipoint spec bytes {b1:#04x} {b2:#04x}")
        gr: Granularity = PerTensor()
        if g == 1:
            axis = r.u8(f"axis of {name!r}")
            if axis >= len(shape):
                raise FormatError(f"record {name!r}: axis {axis} out of range for shape {shape}")
            gr = PerAxis(axis)
        tally.close("record")
        rows = grain.n_rows(shape, gr)
        pad = 0
        if points > 1:
            nb = bitpack.packed_nbytes(rows, COUNT_BITS)
            counts = (
                bitpack.unpack(r.take(nb, f"point counts of {name!r}"), rows, COUNT_BITS).astype(np.int32) + 1
            )
            if counts.size and counts.max() > points:
                raise FormatError(f"record {name!r}: a row has more than {points} points")
            pad = 8 * nb - COUNT_BITS * rows
        else:
            counts = np.ones(rows, np.int32)
        w = MultipointWire(bits, points, int(counts.sum()) - rows, gr, FLOAT_NAMES[sdt])
        _, per_row, p = _layout(shape, w)
        scale = read_floats(r, p, w.scale_dtype, f"scales of {name!r}")
        if not np.all(np.isfinite(scale) & (scale >= 0)):
            raise FormatError(f"record {name!r}: a scale is not a finite number >= 0")
        tally.close("side", pad)
        m = p * per_row
        buf, head = read_code_field(r, tally, coding, m, m * bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            if context is not None:
                raise FormatError(f"record {name!r}: a multipoint record takes no temporal context")
            u = unpack_code_field(buf, coding, m, bits, umax(bits), None, name)
            codes = from_offsets(u, bits).reshape(p, per_row)
            params = {"scale": scale, "counts": counts}
            return QuantizedTensor(codes=codes, params=params, spec=w, shape=tuple(shape))

        return Pending(finish, EntropyField(buf, m, umax(bits), head) if coding == CODING_ENTROPY else None,
                       wire=w)

    def dequantize(self, q) -> np.ndarray:
        """float32 rows ``sum_i a_ci * q_ci``, points added in order (point 0 first)."""
        w = q.spec.wire(tuple(q.shape)) if not isinstance(q.spec, MultipointWire) else q.spec
        rows, per_row, p = _layout(q.shape, w)
        counts = np.asarray(q.params["counts"], np.int64).reshape(-1)
        scale = np.asarray(q.params["scale"], np.float32).reshape(-1, 1)
        terms = np.multiply(
            np.asarray(q.codes).reshape(p, per_row), scale, dtype=np.float32, casting="unsafe"
        )
        out = np.zeros((rows, per_row), np.float32)
        first = (
            np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if rows else np.zeros(0, np.int64)
        )
        for j in range(int(counts.max()) if rows else 0):
            sel = np.nonzero(counts > j)[0]
            out[sel] += terms[first[sel] + j]
        return np.asarray(grain.from_blocks(out, tuple(q.shape), w), dtype=np.float32, order="C")

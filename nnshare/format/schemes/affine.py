"""Uniform affine scheme (id 1): ``x_hat = s * (x_int - z)`` per tensor, channel or group.

Body (format v1 and v2 alike, see docs/format.md):

- byte 1: ``(bits - 1) << 4 | symmetric << 3 | restricted << 2 | granularity`` (0 tensor,
  1 channel, 2 group);
- byte 2: ``scale dtype << 6 | coding << 4 | per-channel widths << 3`` (low 3 bits zero);
- axis (u8) unless per tensor; group size (varint) per group;
- side info: per-channel widths ``bits - 1`` at 4 bits each (byte-padded), one scale per row in
  the scale dtype, zero points at each row's width (asymmetric only, byte-padded);
- codes ``x_int - qmin`` in stream order at each row's width (byte-padded), or an entropy field
  coding, in format v1, ``x_int - qmin`` at the widest row's alphabet ``[0, 2**bits - 1]``; in
  format v2 the codes ``x_int`` themselves over the union of the rows' code ranges (so a temporal
  context of previous codes is centred on the same zero as the codes it predicts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import bitpack, grain
from ..errors import FormatError, SpecError
from ..grain import Granularity, PerGroup, PerTensor
from ..wire import Reader, varint
from . import affine_codes
from .base import (
    CODING_ENTROPY,
    FLOAT_BITS,
    FLOAT_CODES,
    FLOAT_NAMES,
    CodeField,
    Coding,
    Pending,
    Scheme,
    body_varint_bits,
    ceil8,
    choose_codes,
    decode_entropy,
    read_code_field,
    read_floats,
    write_floats,
)

CHANNEL_WIDTH_BITS = 4  # a per-channel width is sent as (bits - 1) in 4 bits


def _scales_readable(sc: np.ndarray, w) -> bool:
    """Whether the scales, as the receiver reads them back in the scale dtype, pass its check:
    finite, positive, and scale x 2**bits finite in float32."""
    from ..spec import round_float

    with np.errstate(all="ignore"):
        back = round_float(sc, w.scale_dtype)
        return bool(np.all(np.isfinite(back) & (back > 0)
                           & np.isfinite(back * np.float32(2**w.bits))))


def _check_bool(name: str, v) -> None:
    if not isinstance(v, bool | np.bool_):
        raise SpecError(f"{name} must be true or false, got {v!r}")


@dataclass(frozen=True)
class AffineWire:
    """What an affine record tells the receiver: code width, signedness, restricted range,
    granularity, the precision scales are sent in, and the optional per-channel widths."""

    bits: int = 8
    symmetric: bool = True
    restricted: bool = False
    grain: Granularity = PerTensor()
    scale_dtype: str = "fp32"
    channel_bits: tuple[int, ...] = ()
    scheme: ClassVar[str] = "affine"

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int | np.integer):
            raise SpecError(f"bits must be an integer, got {self.bits!r}")
        _check_bool("symmetric", self.symmetric)
        _check_bool("restricted", self.restricted)
        if not 1 <= int(self.bits) <= 16:
            raise SpecError(f"bits must be in 1..16, got {self.bits}")
        if self.symmetric and self.bits == 1:
            raise SpecError(
                "symmetric 1-bit codes are {-1, 0} and lose every positive value; "
                "use symmetric=False for 1 bit"
            )
        if self.restricted and not self.symmetric:
            raise SpecError("restricted range applies to symmetric quantization only")
        if self.restricted and self.bits < 2:
            raise SpecError("restricted symmetric range needs bits >= 2")
        if self.scale_dtype not in FLOAT_CODES:
            raise SpecError(
                f"scale_dtype must be one of {', '.join(FLOAT_CODES)}, got {self.scale_dtype!r}"
            )
        if self.channel_bits:
            cb = self.channel_bits
            if not (isinstance(cb, tuple) and set(map(type, cb)) == {int}):  # the reader's case
                ints = (isinstance(b, int | np.integer) and not isinstance(b, bool) for b in cb)
                if not all(ints):
                    raise SpecError("channel_bits must be a sequence of integers")
                object.__setattr__(self, "channel_bits", tuple(int(b) for b in cb))
            if self.grain.kind != "channel":
                raise SpecError("channel_bits (a bit width per channel) needs granularity 'channel'")
            arr = np.asarray(self.channel_bits, np.int64)  # one vector pass, kept for row_bits
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 1 or hi > 16:
                raise SpecError("every entry of channel_bits must be in 1..16")
            if self.bits != hi:
                raise SpecError("bits must equal max(channel_bits) when channel_bits is given")
            if self.symmetric and lo < 2:
                raise SpecError("symmetric per-channel widths must be >= 2 (1 bit: symmetric=False)")
            arr.flags.writeable = False
            object.__setattr__(self, "_widths", arr)

    # flat views of the granularity (what most code reads)
    @property
    def granularity(self) -> str:
        return self.grain.kind

    @property
    def axis(self) -> int:
        return self.grain.axis

    @property
    def group_size(self) -> int:
        return self.grain.size

    def for_shape(self, shape: tuple[int, ...]) -> AffineWire:
        """This spec with its axis made non-negative for ``shape`` (SpecError if it does not fit)."""
        g = self.grain.on(shape)
        return self if g == self.grain else AffineWire(
            self.bits, self.symmetric, self.restricted, g, self.scale_dtype, self.channel_bits
        )

    def wire(self, shape: tuple[int, ...] | None = None) -> AffineWire:
        return self if shape is None else self.for_shape(shape)

    @property
    def qmin(self) -> int:
        """Smallest code."""
        if not self.symmetric:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.restricted else 0)

    @property
    def qmax(self) -> int:
        """Largest code."""
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    def row_bits(self, rows: int) -> np.ndarray:
        """Bit width of each of ``rows`` scale rows (int64 array)."""
        if self.channel_bits:
            if len(self.channel_bits) != rows:
                raise SpecError(
                    f"channel_bits has {len(self.channel_bits)} entries, the tensor has {rows} channels"
                )
            return self._widths
        return np.full(rows, self.bits, np.int64)

    def row_qrange(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest code of each scale row (int64 arrays)."""
        b = self.row_bits(rows)
        if not self.symmetric:
            return np.zeros(rows, np.int64), (1 << b) - 1
        qmin = -(1 << (b - 1)) + (1 if self.restricted else 0)
        return qmin, (1 << (b - 1)) - 1


def entropy_domain(w: AffineWire, rows: int, version: int) -> tuple[int, int, int]:
    """(lo, hi, shift) of an entropy-coded affine record: symbols ``x_int - shift`` in
    ``[lo, hi]`` (v1: offsets from qmin; v2: the codes, over every row's code range)."""
    if version == 1:
        return 0, 2**w.bits - 1, w.qmin
    if not w.channel_bits or rows == 0:
        return w.qmin, w.qmax, 0
    qmin, qmax = w.row_qrange(rows)
    return int(qmin.min()), int(qmax.max()), 0


def _code_bits(shape, w: AffineWire, rows: int) -> int:
    n = math.prod(int(d) for d in shape)
    if not w.channel_bits:
        return n * w.bits
    return int(w.row_bits(rows).sum()) * (n // rows if rows else 0)


class AffineScheme(Scheme):
    name = "affine"
    scheme_id = 1
    wire_type = AffineWire

    def at_bits(self, wire: AffineWire, bits: int) -> AffineWire:
        return AffineWire(int(bits), wire.symmetric, wire.restricted, wire.grain, wire.scale_dtype)

    def describe(self, w: AffineWire) -> str:
        kind = f"affine {'s' if w.symmetric else 'u'}{w.bits}"
        if w.granularity == "channel":
            kind += f" ch{w.axis}"
        elif w.granularity == "group":
            kind += f" g{w.group_size}@{w.axis}"
        return kind + (" mixed" if w.channel_bits else "")

    # ------------------------------------------------------------------ sizes
    def side_bits(self, shape, w: AffineWire) -> int:
        """Bits of the side info: widths, scales, zero points (each field byte-padded)."""
        rows = grain.n_rows(shape, w)
        side = rows * FLOAT_BITS[w.scale_dtype]
        if w.channel_bits:
            side += ceil8(CHANNEL_WIDTH_BITS * rows)
        if not w.symmetric:
            side += ceil8(int(w.row_bits(rows).sum()))
        return side

    def head_bits(self, w: AffineWire) -> int:
        """Bits of the spec bytes (2, + axis, + group size)."""
        head = 16 + (8 if w.granularity != "tensor" else 0)
        return head + (body_varint_bits(w.group_size) if w.granularity == "group" else 0)

    def width_terms(self, shape, w: AffineWire) -> tuple[int, int, int]:
        """Linear model of a body with per-channel widths b_c (granularity "channel"):
        ``body_bits = fixed + slope * sum(b_c) + padding``, padding < 8 bits in each of
        ``padded_fields``. Returns (fixed, slope, padded_fields)."""
        if w.granularity != "channel":
            raise SpecError("per-channel bit widths need a spec with per-channel scales")
        rows = grain.n_rows(shape, w)
        per_row = math.prod(int(d) for d in shape) // rows if rows else 0
        fixed = self.head_bits(w) + rows * FLOAT_BITS[w.scale_dtype] + ceil8(CHANNEL_WIDTH_BITS * rows)
        asym = 0 if w.symmetric else 1
        return fixed, per_row + asym, 1 + asym

    def body_bits(self, shape, w: AffineWire) -> int:
        rows = grain.n_rows(shape, w)
        return self.head_bits(w) + self.side_bits(shape, w) + ceil8(_code_bits(shape, w, rows))

    # ------------------------------------------------------------------ writing
    def write(self, out, tally, q, w: AffineWire, coding: Coding) -> None:
        shape = tuple(q.shape)
        n = math.prod(int(d) for d in shape)
        rows = grain.n_rows(shape, w)
        widths = w.row_bits(rows)
        sc = np.asarray(q.params["scale"], np.float32)
        if sc.size != rows or not np.all(np.isfinite(sc) & (sc > 0)):
            raise SpecError(f"tensor {tally.name!r}: scales must be {rows} finite positive numbers")
        if not _scales_readable(sc, w):
            raise SpecError(f"tensor {tally.name!r}: a scale is 0 in {w.scale_dtype} or scale x "
                            f"2**{w.bits} overflows float32 (the receiver refuses it)")
        flat = grain.stream_order(np.asarray(q.codes).reshape(shape), w)
        per_row = n // rows if rows else 0
        code_bits = _code_bits(shape, w, rows)
        qmin, _ = w.row_qrange(rows)

        def pack() -> bytes:
            if w.channel_bits:
                return affine_codes.pack_rows(flat.reshape(rows, per_row), qmin, widths, per_row)
            return bitpack.pack_codes(flat, w.qmin, w.bits)

        lo, hi, shift = entropy_domain(w, rows, coding.version)
        field: CodeField = choose_codes(
            lambda: flat if not shift else np.subtract(flat, shift, dtype=np.int64), hi, code_bits,
            pack, coding, grain.row_len(shape, w), n, lo,
        )
        g = grain.KINDS.index(w.granularity)
        out.u8(((w.bits - 1) << 4) | (int(w.symmetric) << 3) | (int(w.restricted) << 2) | g)
        out.u8(FLOAT_CODES[w.scale_dtype] << 6 | field.coding << 4 | (1 << 3 if w.channel_bits else 0))
        if w.granularity != "tensor":
            out.u8(w.axis)
        if w.granularity == "group":
            out.raw(varint(w.group_size))
        tally.close("record")
        pad = 0
        if w.channel_bits:
            cb = bitpack.pack(widths - 1, CHANNEL_WIDTH_BITS)
            out.raw(cb)
            pad += 8 * len(cb) - CHANNEL_WIDTH_BITS * rows
        write_floats(out, sc, w.scale_dtype)
        if not w.symmetric:
            zb = affine_codes.pack_rows(np.asarray(q.params["zero_point"]).reshape(-1, 1),
                                        np.zeros(rows, np.int64), widths, 1)
            out.raw(zb)
            pad += 8 * len(zb) - int(widths.sum())
        tally.close("side", pad)
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    # ------------------------------------------------------------------ reading
    def read(self, r: Reader, tally, shape, version: int = 1) -> Pending:
        name = tally.name
        n = math.prod(int(d) for d in shape)
        b1 = r.u8(f"spec of {name!r}")
        b2 = r.u8(f"spec of {name!r}")
        bits = (b1 >> 4) + 1
        sym, restricted, g = bool(b1 >> 3 & 1), bool(b1 >> 2 & 1), b1 & 3
        sdt, coding, has_cb = b2 >> 6, b2 >> 4 & 3, bool(b2 >> 3 & 1)
        if g >= len(grain.KINDS) or sdt not in FLOAT_NAMES or coding > 1 or b2 & 0x07:
            raise FormatError(f"record {name!r}: invalid spec byte(s) {b1:#04x} {b2:#04x}")
        kind = grain.KINDS[g]
        axis, group = 0, 0
        if kind != "tensor":
            axis = r.u8(f"axis of {name!r}")
            if axis >= len(shape):
                raise FormatError(f"record {name!r}: axis {axis} out of range for shape {shape}")
        if kind == "group":
            group = r.varint(f"group size of {name!r}", limit=2**31)
            if group < 1:
                raise FormatError(f"record {name!r}: group size 0")
        if has_cb and kind != "channel":
            raise FormatError(f"record {name!r}: per-channel widths on a non-channel record")
        if not sym and restricted:
            raise FormatError(f"record {name!r}: restricted range flag on an asymmetric record")
        if sym and bits == 1:
            raise FormatError(f"record {name!r}: symmetric 1-bit records do not exist")
        gr = grain.make(kind, axis, group)
        rows = grain.n_rows(shape, gr)
        sshape = grain.scale_shape(shape, gr)
        tally.close("record")
        channel_bits: tuple[int, ...] = ()
        pad = 0
        if has_cb:
            nb = bitpack.packed_nbytes(rows, CHANNEL_WIDTH_BITS)
            cb = bitpack.unpack(r.take(nb, f"widths of {name!r}"), rows, CHANNEL_WIDTH_BITS)
            channel_bits = tuple((cb.astype(np.int64) + 1).tolist())
            if max(channel_bits, default=0) != bits:
                raise FormatError(f"record {name!r}: widths disagree with the bit width {bits}")
            pad += 8 * nb - CHANNEL_WIDTH_BITS * rows
        try:
            w = AffineWire(bits, sym, restricted, gr, FLOAT_NAMES[sdt], channel_bits)
        except SpecError as e:
            raise FormatError(f"record {name!r}: {e}") from None
        widths = w.row_bits(rows)
        scale = read_floats(r, rows, w.scale_dtype, f"scales of {name!r}")
        with np.errstate(all="ignore"):  # |x_int - z| < 2**bits: s * 2**bits must stay finite
            ok = np.isfinite(scale) & (scale > 0) & np.isfinite(scale * np.float32(2**bits))
        if not np.all(ok):
            raise FormatError(f"record {name!r}: a scale is not a finite positive number (or too large)")
        params = {"scale": scale.reshape(sshape)}
        if not sym:
            zbits = int(widths.sum())
            zb = r.take((zbits + 7) // 8, f"zero points of {name!r}")
            zp = affine_codes.unpack_rows(zb, widths, 1, np.zeros(rows, np.int64))
            params["zero_point"] = zp.reshape(sshape)
            pad += ceil8(zbits) - zbits
        tally.close("side", pad)
        per_row = n // rows if rows else 0
        buf, head = read_code_field(r, tally, coding, n, _code_bits(shape, w, rows), name)
        lo, hi, shift = entropy_domain(w, rows, version)

        def finish(context=None):
            from ..spec import QuantizedTensor

            qmin, qmax = w.row_qrange(rows)
            if coding == CODING_ENTROPY:
                flat = decode_entropy(buf, n, hi, context, name, lo)
                if shift:
                    flat += np.int32(shift)
                if has_cb and n:
                    m = flat.reshape(rows, per_row)
                    if np.any(m < qmin[:, None]) or np.any(m > qmax[:, None]):
                        raise FormatError(f"record {name!r}: a code lies outside its channel's range")
            elif has_cb:
                flat = affine_codes.unpack_rows(buf, widths, per_row, qmin).reshape(-1)
            else:
                flat = bitpack.unpack_codes(buf, n, w.qmin, bits)
            if w.restricted and flat.size and flat.max() > w.qmax:
                raise FormatError(f"record {name!r}: a code lies outside the restricted range")
            codes = grain.from_stream_order(flat, tuple(shape), w)
            return QuantizedTensor(codes=codes, params=params, spec=w, shape=tuple(shape))

        ent = None
        if coding == CODING_ENTROPY:
            from .base import EntropyField

            ent = EntropyField(buf, n, hi, head, lo)
        packed = (w, params, buf) if coding != CODING_ENTROPY and not has_cb else None

        def values(context=None) -> np.ndarray:
            fused = None
            if coding == CODING_ENTROPY and sym and kind == "tensor" and not shift and n:
                # one scale, codes = symbols: dequantized in the rANS pass (as dequantize())
                flat = decode_entropy(buf, n, hi, context, name, lo, scale=scale.reshape(-1)[0])
                return flat.reshape(tuple(shape))
            if coding != CODING_ENTROPY:
                fused = (affine_codes.rows_values if has_cb else affine_codes.packed_values)(
                    w, params, buf, tuple(shape))
            return finish(context).dequantize() if fused is None else fused

        return Pending(finish, ent, packed, values, w)

    # ------------------------------------------------------------------ meaning
    def dequantize(self, q) -> np.ndarray:
        """float32 ``s * (x_int - z)``: x_int - z is an exact integer in float32 (|x_int - z| <
        2**17), then one float32 multiply by its block's scale."""
        spec = q.spec
        codes = np.asarray(q.codes).reshape(q.shape)
        blocks = grain.to_blocks(codes, spec)
        scale = np.asarray(q.params["scale"], dtype=np.float32).reshape(-1, 1)
        if spec.symmetric:  # one pass: float32(code) * scale
            out = np.multiply(blocks, scale, dtype=np.float32, casting="unsafe")
        else:
            z = np.asarray(q.params["zero_point"], dtype=np.float32).reshape(-1, 1)
            out = np.subtract(blocks, z, dtype=np.float32, casting="unsafe")
            out *= scale
        return np.asarray(grain.from_blocks(out, q.shape, spec), dtype=np.float32, order="C")


__all__ = ["AffineScheme", "AffineWire", "PerGroup"]

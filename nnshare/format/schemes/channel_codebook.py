"""Per-channel codebook scheme (id 5): each slice along ``axis`` has its own k sorted levels.

What Lloyd-Max / k-means per output channel sends (``nnshare.quant.lloyd``). Body:

- byte 1: ``level dtype << 6 | coding << 4`` (low 4 bits zero);
- byte 2: ``k - 1`` (k = 2..256 levels per channel);
- byte 3: the channel axis;
- side info: C x k levels, channel after channel, each row non-decreasing, in the level dtype;
- codes: indices at ``ceil(log2 k)`` bits in channel-major stream order (the channel axis moved
  first, then C order), byte-padded, or an entropy field over [0, k - 1].

The receiver rebuilds ``levels[channel, code]`` (float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import bitpack, grain
from ..errors import FormatError, SpecError
from ..grain import PerAxis
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

MAX_LEVELS = 256


@dataclass(frozen=True)
class ChannelCodebookWire:
    """What a per-channel codebook record tells the receiver: levels per channel, their
    precision and the channel axis."""

    levels: int = 16
    level_dtype: str = "fp16"
    grain: PerAxis = PerAxis(0)
    scheme: ClassVar[str] = "channel_codebook"

    def __post_init__(self) -> None:
        if isinstance(self.levels, bool) or not isinstance(self.levels, int | np.integer):
            raise SpecError(f"levels must be an integer, got {self.levels!r}")
        if not 2 <= int(self.levels) <= MAX_LEVELS:
            raise SpecError(f"a codebook has 2..{MAX_LEVELS} levels, got {self.levels}")
        if self.level_dtype not in FLOAT_CODES:
            raise SpecError(f"level_dtype must be one of {', '.join(FLOAT_CODES)}, got {self.level_dtype!r}")
        if not isinstance(self.grain, PerAxis):
            raise SpecError("a per-channel codebook needs granularity 'channel'")

    @property
    def bits(self) -> int:
        """Width of a packed index: ceil(log2 levels)."""
        return int(self.levels - 1).bit_length()

    @property
    def qmin(self) -> int:
        return 0

    @property
    def qmax(self) -> int:
        return int(self.levels) - 1

    @property
    def granularity(self) -> str:
        return "channel"

    @property
    def axis(self) -> int:
        return self.grain.axis

    def for_shape(self, shape: tuple[int, ...]) -> ChannelCodebookWire:
        g = self.grain.on(shape)
        return self if g == self.grain else ChannelCodebookWire(self.levels, self.level_dtype, g)

    def wire(self, shape: tuple[int, ...] | None = None) -> ChannelCodebookWire:
        return self if shape is None else self.for_shape(shape)


class ChannelCodebookScheme(Scheme):
    name = "channel_codebook"
    scheme_id = 5
    wire_type = ChannelCodebookWire

    def at_bits(self, w: ChannelCodebookWire, bits: int) -> ChannelCodebookWire:
        if not 1 <= int(bits) <= 8:
            raise SpecError(f"a codebook index has 1..8 bits, got {bits}")
        return ChannelCodebookWire(2 ** int(bits), w.level_dtype, w.grain)

    def describe(self, w: ChannelCodebookWire) -> str:
        return f"codebook k{w.levels} {w.level_dtype} ch{w.axis}"

    def body_bits(self, shape, w: ChannelCodebookWire) -> int:
        n = int(np.prod(shape, dtype=np.int64))
        rows = grain.n_rows(shape, w)
        return 24 + rows * w.levels * FLOAT_BITS[w.level_dtype] + ceil8(n * w.bits)

    def write(self, out, tally, q, w: ChannelCodebookWire, coding: Coding) -> None:
        shape = tuple(q.shape)
        n = int(np.prod(shape, dtype=np.int64))
        rows = grain.n_rows(shape, w)
        levels = np.asarray(q.params["levels"], np.float32)
        if levels.shape != (rows, w.levels) or not np.all(np.isfinite(levels)):
            raise SpecError(
                f"tensor {tally.name!r}: the codebooks must be {rows} x {w.levels} finite numbers"
            )
        if np.any(np.diff(levels, axis=1) < 0):
            raise SpecError(f"tensor {tally.name!r}: codebook levels must be non-decreasing")
        flat = grain.stream_order(np.asarray(q.codes).reshape(shape), w).astype(np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= w.levels):
            raise SpecError(f"tensor {tally.name!r}: a code is not an index into {w.levels} levels")
        field = choose_codes(
            lambda: flat,
            w.qmax,
            n * w.bits,
            lambda: bitpack.pack(flat, w.bits),
            coding,
            grain.row_len(shape, w),
            n,
        )
        out.u8(FLOAT_CODES[w.level_dtype] << 6 | field.coding << 4)
        out.u8(w.levels - 1)
        out.u8(w.axis)
        tally.close("record")
        write_floats(out, levels, w.level_dtype)
        tally.close("side")
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    def read(self, r: Reader, tally, shape) -> Pending:
        name = tally.name
        n = int(np.prod(shape, dtype=np.int64))
        b1 = r.u8(f"spec of {name!r}")
        k = r.u8(f"codebook size of {name!r}") + 1
        axis = r.u8(f"axis of {name!r}")
        dt, coding = b1 >> 6, b1 >> 4 & 3
        if dt not in FLOAT_NAMES or coding > 1 or b1 & 0x0F or k < 2:
            raise FormatError(f"record {name!r}: invalid codebook spec bytes {b1:#04x} {k - 1:#04x}")
        if axis >= len(shape):
            raise FormatError(f"record {name!r}: axis {axis} out of range for shape {shape}")
        w = ChannelCodebookWire(k, FLOAT_NAMES[dt], PerAxis(axis))
        tally.close("record")
        rows = grain.n_rows(shape, w)
        levels = read_floats(r, rows * k, w.level_dtype, f"codebooks of {name!r}").reshape(rows, k)
        if not np.all(np.isfinite(levels)) or np.any(np.diff(levels, axis=1) < 0):
            raise FormatError(f"record {name!r}: codebook levels not finite and non-decreasing")
        tally.close("side")
        buf, head = read_code_field(r, tally, coding, n, n * w.bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            flat = unpack_code_field(buf, coding, n, w.bits, w.qmax, context, name)
            codes = grain.from_stream_order(flat, tuple(shape), w)
            return QuantizedTensor(codes=codes, params={"levels": levels}, spec=w, shape=tuple(shape))

        return Pending(finish, EntropyField(buf, n, w.qmax, head) if coding == CODING_ENTROPY else None,
                       wire=w)

    def dequantize(self, q) -> np.ndarray:
        w = q.spec
        rows = grain.to_blocks(np.asarray(q.codes).reshape(q.shape), w).astype(np.int64)
        levels = np.asarray(q.params["levels"], np.float32)
        out = np.take_along_axis(levels, rows, axis=1) if rows.size else rows.astype(np.float32)
        return np.asarray(grain.from_blocks(out, q.shape, w), dtype=np.float32, order="C")

"""Per-tensor codebook scheme (id 2): k float levels sent in the stream, codes index them.

Body (see docs/format.md):

- byte 1: ``level dtype << 6 | coding << 4`` (low 4 bits zero);
- byte 2: ``k - 1`` (k = 2..256 levels);
- side info: the k levels, non-decreasing, in the level dtype (little-endian);
- codes: indices in C order at ``ceil(log2 k)`` bits each (byte-padded), or an entropy field
  coding the indices over the alphabet [0, k - 1].

The receiver rebuilds ``levels[code]`` (float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import bitpack, grain
from ..errors import FormatError, SpecError
from ..grain import PerTensor
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
class CodebookWire:
    """What a codebook record tells the receiver: the number of levels and their precision."""

    levels: int = 16
    level_dtype: str = "fp32"
    scheme: ClassVar[str] = "codebook"
    grain: ClassVar = PerTensor()

    def __post_init__(self) -> None:
        if isinstance(self.levels, bool) or not isinstance(self.levels, int | np.integer):
            raise SpecError(f"levels must be an integer, got {self.levels!r}")
        if not 2 <= int(self.levels) <= MAX_LEVELS:
            raise SpecError(f"a codebook has 2..{MAX_LEVELS} levels, got {self.levels}")
        if self.level_dtype not in FLOAT_CODES:
            raise SpecError(
                f"level_dtype must be one of {', '.join(FLOAT_CODES)}, got {self.level_dtype!r}"
            )

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

    def for_shape(self, shape: tuple[int, ...]) -> CodebookWire:
        return self

    def wire(self, shape: tuple[int, ...] | None = None) -> CodebookWire:
        return self


class CodebookScheme(Scheme):
    name = "codebook"
    scheme_id = 2
    wire_type = CodebookWire

    def at_bits(self, wire: CodebookWire, bits: int) -> CodebookWire:
        if not 1 <= int(bits) <= 8:
            raise SpecError(f"a codebook index has 1..8 bits, got {bits}")
        return CodebookWire(2 ** int(bits), wire.level_dtype)

    def describe(self, w: CodebookWire) -> str:
        return f"codebook k{w.levels} {w.level_dtype}"

    def body_bits(self, shape, w: CodebookWire) -> int:
        n = int(np.prod(shape, dtype=np.int64))
        return 16 + w.levels * FLOAT_BITS[w.level_dtype] + ceil8(n * w.bits)

    def write(self, out, tally, q, w: CodebookWire, coding: Coding) -> None:
        shape = tuple(q.shape)
        n = int(np.prod(shape, dtype=np.int64))
        levels = np.asarray(q.params["levels"], np.float32).reshape(-1)
        if levels.size != w.levels or not np.all(np.isfinite(levels)):
            raise SpecError(f"tensor {tally.name!r}: the codebook must be {w.levels} finite numbers")
        if np.any(np.diff(levels) < 0):
            raise SpecError(f"tensor {tally.name!r}: codebook levels must be non-decreasing")
        codes = np.asarray(q.codes).reshape(-1)
        if codes.size and (codes.min() < 0 or codes.max() >= w.levels):
            raise SpecError(f"tensor {tally.name!r}: a code is not an index into {w.levels} levels")
        field = choose_codes(
            lambda: codes, w.qmax, n * w.bits, lambda: bitpack.pack(codes, w.bits), coding,
            grain.row_len(shape, w), n,
        )
        out.u8(FLOAT_CODES[w.level_dtype] << 6 | field.coding << 4)
        out.u8(w.levels - 1)
        tally.close("record")
        write_floats(out, levels, w.level_dtype)
        tally.close("side")
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    def read(self, r: Reader, tally, shape, version: int = 1) -> Pending:
        name = tally.name
        n = int(np.prod(shape, dtype=np.int64))
        b1 = r.u8(f"spec of {name!r}")
        k = r.u8(f"codebook size of {name!r}") + 1
        dt, coding = b1 >> 6, b1 >> 4 & 3
        if dt not in FLOAT_NAMES or coding > 1 or b1 & 0x0F or k < 2:
            raise FormatError(f"record {name!r}: invalid codebook spec bytes {b1:#04x} {k - 1:#04x}")
        w = CodebookWire(k, FLOAT_NAMES[dt])
        tally.close("record")
        levels = read_floats(r, k, w.level_dtype, f"codebook of {name!r}")
        if not np.all(np.isfinite(levels)) or np.any(np.diff(levels) < 0):
            raise FormatError(f"record {name!r}: codebook levels not finite and non-decreasing")
        tally.close("side")
        buf, head = read_code_field(r, tally, coding, n, n * w.bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            codes = unpack_code_field(buf, coding, n, w.bits, w.qmax, context, name)
            return QuantizedTensor(
                codes=codes.reshape(shape), params={"levels": levels}, spec=w, shape=tuple(shape)
            )

        return Pending(finish, EntropyField(buf, n, w.qmax, head) if coding == CODING_ENTROPY else None,
                       wire=w)

    def dequantize(self, q) -> np.ndarray:
        levels = np.asarray(q.params["levels"], np.float32).reshape(-1)
        codes = np.asarray(q.codes).reshape(q.shape)
        return np.asarray(levels[codes], dtype=np.float32, order="C").reshape(q.shape)

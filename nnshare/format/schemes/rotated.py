"""Rotated quantization scheme: a vector rotated by a seeded rotation, quantized to b bits per
element (scalar Lloyd-Max levels or fixed-rate TCQ), one multiplier (:mod:`..rotated`).

Body (see docs/format.md):

- byte 1: ``(bits - 1) << 6 | unbiased << 5 | coding << 4 | nu`` (nu = 0 scalar levels,
  2..8 TCQ with 2**nu states);
- side info: the rotation seed (u32 little-endian) and the multiplier M (f32 little-endian);
- codes: one per element in C order, ``bits`` bits each (byte-padded), or an entropy field
  over the alphabet [0, 2**bits - 1] where that is smaller (rarely: the codes are near uniform).

The receiver rebuilds ``R(seed)^T (M * levels(codes))`` reshaped to the tensor's shape.
"""

from __future__ import annotations

import numpy as np

from .. import bitpack, grain
from ..errors import FormatError, SpecError
from ..rotated import QUANTIZERS, RotatedWire, dequantize
from ..wire import Reader
from .base import (
    CODING_ENTROPY,
    Coding,
    EntropyField,
    Pending,
    Scheme,
    ceil8,
    choose_codes,
    read_code_field,
    unpack_code_field,
)


class RotatedScheme(Scheme):
    name = "rotated"
    scheme_id = 3
    wire_type = RotatedWire

    def at_bits(self, wire: RotatedWire, bits: int) -> RotatedWire:
        return RotatedWire(int(bits), wire.nu, wire.unbiased)

    def describe(self, w: RotatedWire) -> str:
        q = "lloyd" if w.nu == 0 else f"tcq{1 << w.nu}"
        return f"rotated b{w.bits} {q} {'unbiased' if w.unbiased else 'biased'}"

    def body_bits(self, shape, w: RotatedWire) -> int:
        n = int(np.prod(shape, dtype=np.int64))
        return 8 + 64 + ceil8(n * w.bits)

    def write(self, out, tally, q, w: RotatedWire, coding: Coding) -> None:
        shape = tuple(q.shape)
        n = int(np.prod(shape, dtype=np.int64))
        seed = int(np.asarray(q.params["seed"]).reshape(-1)[0])
        mult = np.float32(np.asarray(q.params["multiplier"]).reshape(-1)[0])
        if not 0 <= seed < 1 << 32:
            raise SpecError(f"tensor {tally.name!r}: the rotation seed must be a 32-bit unsigned integer")
        if not np.isfinite(mult):
            raise SpecError(f"tensor {tally.name!r}: the multiplier is not finite")
        codes = np.asarray(q.codes).reshape(-1)
        if codes.size and (codes.min() < 0 or codes.max() > w.qmax):
            raise SpecError(f"tensor {tally.name!r}: a code is outside [0, {w.qmax}]")
        field = choose_codes(
            lambda: codes, w.qmax, n * w.bits, lambda: bitpack.pack(codes, w.bits), coding,
            grain.row_len(shape, w), n,
        )
        out.u8((w.bits - 1) << 6 | int(w.unbiased) << 5 | field.coding << 4 | w.nu)
        tally.close("record")
        out.u32le(seed)
        out.f32le(float(mult))
        tally.close("side")
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    def read(self, r: Reader, tally, shape, version: int = 1) -> Pending:
        name = tally.name
        n = int(np.prod(shape, dtype=np.int64))
        b1 = r.u8(f"spec of {name!r}")
        bits, unbiased, coding, nu = (b1 >> 6) + 1, bool(b1 >> 5 & 1), b1 >> 4 & 1, b1 & 0x0F
        if nu not in QUANTIZERS:
            raise FormatError(f"record {name!r}: invalid rotated spec byte {b1:#04x}")
        w = RotatedWire(bits, nu, unbiased)
        tally.close("record")
        seed = r.u32le(f"rotation seed of {name!r}")
        mult = np.float32(r.f32le(f"multiplier of {name!r}"))
        if not np.isfinite(mult):
            raise FormatError(f"record {name!r}: the multiplier is not finite")
        tally.close("side")
        buf, head = read_code_field(r, tally, coding, n, n * bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            codes = unpack_code_field(buf, coding, n, bits, w.qmax, context, name)
            params = {"seed": np.array([seed], np.uint32), "multiplier": np.array([mult], np.float32)}
            return QuantizedTensor(codes=codes.reshape(shape), params=params, spec=w, shape=tuple(shape))

        return Pending(finish, EntropyField(buf, n, w.qmax, head) if coding == CODING_ENTROPY else None,
                       wire=w)

    def dequantize(self, q) -> np.ndarray:
        seed = int(np.asarray(q.params["seed"]).reshape(-1)[0])
        mult = float(np.asarray(q.params["multiplier"], np.float32).reshape(-1)[0])
        return dequantize(np.asarray(q.codes), seed, mult, q.spec, tuple(q.shape))

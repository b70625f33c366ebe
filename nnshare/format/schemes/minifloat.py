"""Minifloat scheme (id 4): OCP FP8 / FP6 / FP4 element codes with one of three scalings.

``scaling``:

- ``"float"``: one float scale per tensor or per channel, ``x_hat = s * fp(code)``;
- ``"mx"``: OCP MX v1.0, one E8M0 code ``e`` per group (32 elements), ``x_hat = fp(code) 2^(e-127)``;
- ``"nv"``: NVFP4, E2M1 codes, one E4M3 block scale per group (16) and one fp32 tensor scale,
  ``x_hat = (e2m1(code) * e4m3(block)) * tensor_scale``.

Body (see docs/format.md):

- byte 1: ``format << 4 | scaling << 2 | granularity`` (format 0 E4M3, 1 E5M2, 2 E3M2, 3 E2M3,
  4 E2M1; scaling 0 float, 1 mx, 2 nv; granularity 0 tensor, 1 channel, 2 group);
- byte 2: ``scale dtype << 6 | coding << 4`` (low 4 bits zero; scale dtype 0 unless "float");
- axis (u8) unless per tensor; group size (varint) per group;
- side info: "float": one scale per row in the scale dtype; "mx": one E8M0 byte per group
  (0..254); "nv": the fp32 tensor scale, then one E4M3 byte per group (finite, sign 0);
- codes: element codes in stream order at the format's width (byte-padded), or an entropy field
  over [0, 2^bits - 1]. Codes of NaN / infinity are invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import bitpack, floats, grain
from ..errors import FormatError, SpecError
from ..grain import Granularity, PerTensor
from ..wire import Reader, varint
from .base import (
    CODING_ENTROPY,
    FLOAT_BITS,
    FLOAT_CODES,
    FLOAT_NAMES,
    Coding,
    EntropyField,
    Pending,
    Scheme,
    body_varint_bits,
    ceil8,
    choose_codes,
    read_code_field,
    read_floats,
    unpack_code_field,
    write_floats,
)

FORMAT_IDS = ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1")
SCALINGS = ("float", "mx", "nv")
#: element format per bit width when an allocator varies the bits
AT_BITS = {4: "e2m1", 6: "e2m3", 8: "e4m3"}


@dataclass(frozen=True)
class MinifloatWire:
    """What a minifloat record tells the receiver: element format, scaling, granularity and the
    precision of float scales."""

    fmt: str = "e4m3"
    scaling: str = "float"
    grain: Granularity = PerTensor()
    scale_dtype: str = "fp32"
    scheme: ClassVar[str] = "minifloat"

    def __post_init__(self) -> None:
        if self.fmt not in FORMAT_IDS:
            raise SpecError(f"unknown float format {self.fmt!r}; known: {', '.join(FORMAT_IDS)}")
        if self.scaling not in SCALINGS:
            raise SpecError(f"scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}")
        if self.scale_dtype not in FLOAT_CODES:
            raise SpecError(f"scale_dtype must be one of {', '.join(FLOAT_CODES)}, got {self.scale_dtype!r}")
        if self.scaling == "float" and self.grain.kind == "group":
            raise SpecError("float-scaled minifloat is per tensor or per channel (blocks: scaling mx / nv)")
        if self.scaling != "float":
            if self.grain.kind != "group":
                raise SpecError(f"scaling {self.scaling!r} needs blocks (granularity 'group')")
            if self.scale_dtype != "fp32":
                raise SpecError(
                    f"scaling {self.scaling!r} has fixed scale formats; scale_dtype must stay fp32"
                )
        if self.scaling == "nv" and self.fmt != "e2m1":
            raise SpecError("NVFP4 scaling needs element format e2m1")

    @property
    def format(self) -> floats.FloatFormat:
        return floats.FORMATS[self.fmt]

    @property
    def bits(self) -> int:
        """Bits per element code."""
        return self.format.bits

    @property
    def qmin(self) -> int:
        return 0

    @property
    def qmax(self) -> int:
        return 2**self.bits - 1

    @property
    def granularity(self) -> str:
        return self.grain.kind

    @property
    def axis(self) -> int:
        return self.grain.axis

    @property
    def group_size(self) -> int:
        return self.grain.size

    def for_shape(self, shape: tuple[int, ...]) -> MinifloatWire:
        g = self.grain.on(shape)
        return self if g == self.grain else MinifloatWire(self.fmt, self.scaling, g, self.scale_dtype)

    def wire(self, shape: tuple[int, ...] | None = None) -> MinifloatWire:
        return self if shape is None else self.for_shape(shape)


def _finite_codes(fmt: floats.FloatFormat) -> np.ndarray:
    return np.isfinite(floats.value_table(fmt))


class MinifloatScheme(Scheme):
    name = "minifloat"
    scheme_id = 4
    wire_type = MinifloatWire

    def at_bits(self, w: MinifloatWire, bits: int) -> MinifloatWire:
        if int(bits) not in AT_BITS or (w.scaling == "nv" and int(bits) != 4):
            raise SpecError(f"minifloat has no {bits}-bit element format for scaling {w.scaling!r}")
        return MinifloatWire(AT_BITS[int(bits)], w.scaling, w.grain, w.scale_dtype)

    def describe(self, w: MinifloatWire) -> str:
        kind = {"float": f"fp{w.bits} {w.fmt}", "mx": f"mxfp{w.bits} {w.fmt}", "nv": "nvfp4"}[w.scaling]
        if w.granularity == "channel":
            kind += f" ch{w.axis}"
        elif w.granularity == "group":
            kind += f" g{w.group_size}@{w.axis}"
        return kind

    # ------------------------------------------------------------------ sizes
    def head_bits(self, w: MinifloatWire) -> int:
        head = 16 + (8 if w.granularity != "tensor" else 0)
        return head + (body_varint_bits(w.group_size) if w.granularity == "group" else 0)

    def side_bits(self, shape, w: MinifloatWire) -> int:
        rows = grain.n_rows(shape, w)
        if w.scaling == "float":
            return rows * FLOAT_BITS[w.scale_dtype]
        return 8 * rows + (32 if w.scaling == "nv" else 0)

    def body_bits(self, shape, w: MinifloatWire) -> int:
        n = int(np.prod(shape, dtype=np.int64))
        return self.head_bits(w) + self.side_bits(shape, w) + ceil8(n * w.bits)

    # ------------------------------------------------------------------ writing
    def write(self, out, tally, q, w: MinifloatWire, coding: Coding) -> None:
        shape = tuple(q.shape)
        n = int(np.prod(shape, dtype=np.int64))
        rows = grain.n_rows(shape, w)
        codes = np.asarray(q.codes).reshape(shape)
        if codes.size and (
            codes.min() < 0 or codes.max() > w.qmax or not np.all(_finite_codes(w.format)[codes])
        ):
            raise SpecError(f"tensor {tally.name!r}: a code is not a finite {w.fmt} value")
        sc = np.asarray(q.params["scale"])
        if sc.size != rows:
            raise SpecError(f"tensor {tally.name!r}: {rows} scales expected, got {sc.size}")
        _check_scales(w, sc, q.params.get("tensor_scale"), SpecError, tally.name)
        flat = grain.stream_order(codes, w).astype(np.int64)
        field = choose_codes(
            lambda: flat,
            w.qmax,
            n * w.bits,
            lambda: bitpack.pack(flat, w.bits),
            coding,
            grain.row_len(shape, w),
            n,
        )
        out.u8(
            FORMAT_IDS.index(w.fmt) << 4 | SCALINGS.index(w.scaling) << 2 | grain.KINDS.index(w.granularity)
        )
        out.u8(FLOAT_CODES[w.scale_dtype] << 6 | field.coding << 4)
        if w.granularity != "tensor":
            out.u8(w.axis)
        if w.granularity == "group":
            out.raw(varint(w.group_size))
        tally.close("record")
        if w.scaling == "float":
            write_floats(out, sc.astype(np.float32), w.scale_dtype)
        else:
            if w.scaling == "nv":
                write_floats(out, np.asarray(q.params["tensor_scale"], np.float32), "fp32")
            out.raw(sc.astype(np.uint8).reshape(-1).tobytes())
        tally.close("side")
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    # ------------------------------------------------------------------ reading
    def read(self, r: Reader, tally, shape) -> Pending:
        name = tally.name
        n = int(np.prod(shape, dtype=np.int64))
        b1 = r.u8(f"spec of {name!r}")
        b2 = r.u8(f"spec of {name!r}")
        f, s, g = b1 >> 4, b1 >> 2 & 3, b1 & 3
        sdt, coding = b2 >> 6, b2 >> 4 & 3
        if (
            f >= len(FORMAT_IDS)
            or s >= len(SCALINGS)
            or g >= len(grain.KINDS)
            or sdt not in FLOAT_NAMES
            or coding > 1
            or b2 & 0x0F
        ):
            raise FormatError(f"record {name!r}: invalid minifloat spec byte(s) {b1:#04x} {b2:#04x}")
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
        try:
            w = MinifloatWire(FORMAT_IDS[f], SCALINGS[s], grain.make(kind, axis, group), FLOAT_NAMES[sdt])
        except SpecError as e:
            raise FormatError(f"record {name!r}: {e}") from None
        tally.close("record")
        rows = grain.n_rows(shape, w)
        sshape = grain.scale_shape(shape, w)
        params: dict[str, np.ndarray] = {}
        if w.scaling == "float":
            sc = read_floats(r, rows, w.scale_dtype, f"scales of {name!r}")
        else:
            if w.scaling == "nv":
                params["tensor_scale"] = read_floats(r, 1, "fp32", f"tensor scale of {name!r}").reshape(())
            sc = np.frombuffer(r.take(rows, f"block scales of {name!r}"), np.uint8).copy()
        _check_scales(w, sc, params.get("tensor_scale"), FormatError, name)
        params["scale"] = sc.reshape(sshape)
        tally.close("side")
        buf, head = read_code_field(r, tally, coding, n, n * w.bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            flat = unpack_code_field(buf, coding, n, w.bits, w.qmax, context, name)
            if flat.size and not np.all(_finite_codes(w.format)[flat]):
                raise FormatError(f"record {name!r}: a code is NaN or infinite in {w.fmt}")
            codes = grain.from_stream_order(flat, tuple(shape), w)
            return QuantizedTensor(codes=codes, params=params, spec=w, shape=tuple(shape))

        return Pending(finish, EntropyField(buf, n, w.qmax, head) if coding == CODING_ENTROPY else None,
                       wire=w)

    # ------------------------------------------------------------------ meaning
    def dequantize(self, q) -> np.ndarray:
        w = q.spec
        blocks = grain.to_blocks(np.asarray(q.codes).reshape(q.shape), w)
        sc = np.asarray(q.params["scale"]).reshape(-1)
        if w.scaling == "float":
            out = floats.dequantize_scaled(blocks, sc, w.format)
        elif w.scaling == "mx":
            out = floats.dequantize_mx(blocks, sc, w.format)
        else:
            out = floats.dequantize_nvfp4(blocks, sc, float(q.params["tensor_scale"]))
        return np.asarray(grain.from_blocks(out, q.shape, w), dtype=np.float32, order="C")


def _check_scales(w: MinifloatWire, sc: np.ndarray, ts, error, name: str) -> None:
    """Scales the receiver accepts: float scales finite, > 0 and with s * max finite; E8M0 codes
    0..254; E4M3 block codes finite with sign 0, the tensor scale finite and > 0."""
    with np.errstate(all="ignore"):
        if w.scaling == "float":
            s = np.asarray(sc, np.float32)
            ok = np.all(np.isfinite(s) & (s > 0) & np.isfinite(s * np.float32(w.format.max)))
        elif w.scaling == "mx":
            c = np.asarray(sc, np.int64)
            big = np.ldexp(w.format.max, np.minimum(c, 254) - 127) > np.finfo(np.float32).max
            ok = sc.dtype.kind in "ui" and np.all(c <= 254) and not np.any(big)
        else:
            c = np.asarray(sc)
            t = np.float32(ts) if ts is not None else np.float32(np.nan)
            ok = (
                c.dtype.kind in "ui"
                and np.all(c < 0x7F)
                and np.isfinite(t)
                and t > 0
                and np.isfinite(t * np.float32(448 * 6))
            )
    if not ok:
        raise error(f"record {name!r}: a {w.scaling} scale is invalid (not finite, negative or too large)")

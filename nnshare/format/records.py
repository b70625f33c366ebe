"""Tensor records: how one tensor is laid out in the stream, and the exact bit accounting.

See docs/format.md for the byte-level layout. Every record ends with a CRC-32 of its bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from . import bitpack
from .errors import FormatError, SpecError
from .schemes import get_scheme, scheme_by_id
from .spec import (
    GRANULARITIES,
    RAW_DTYPES,
    FloatTensor,
    QuantizedTensor,
    QuantSpec,
    RawTensor,
    scale_shape,
)
from .wire import Reader, varint

KIND_FLOAT = 0
KIND_RAW = 200
FLOAT_CODES = {"fp32": 0, "fp16": 1, "bf16": 2}
FLOAT_NAMES = {v: k for k, v in FLOAT_CODES.items()}
FLOAT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
RAW_CODES = {name: i for i, name in enumerate(RAW_DTYPES)}
CODING_RAW, CODING_ENTROPY = 0, 1

Tensor = QuantizedTensor | FloatTensor | RawTensor


@dataclass(frozen=True)
class Section:
    """``bits`` of the stream spent on ``kind`` for tensor ``name`` ("" for the stream header).

    kind: "header" (stream header and its CRC), "record" (a record's framing: kind, spec bytes,
    CRC), "side" (scales, zero points, per-channel widths, entropy model), "payload" (codes or
    float values), "pad" (zero bits up to a byte boundary). ``note`` names the entropy model of
    an entropy-coded payload ("ec:<model>").
    """

    name: str
    kind: str
    bits: int
    note: str = ""


# ----------------------------------------------------------------------------- float values


def float_bytes(values: np.ndarray, dtype: str) -> bytes:
    """Little-endian bytes of float values in fp32 / fp16 / bf16 (bf16 = top half of fp32, RNE)."""
    x = np.asarray(values, np.float32).reshape(-1)
    if dtype == "fp32":
        return x.astype("<f4").tobytes()
    if dtype == "fp16":
        return x.astype("<f2").tobytes()
    from .spec import round_float

    return (round_float(x, "bf16").view(np.uint32) >> 16).astype("<u2").tobytes()


def float_values(buf: memoryview, n: int, dtype: str) -> np.ndarray:
    """Inverse of :func:`float_bytes`: float32 array of n values."""
    if dtype == "fp32":
        return np.frombuffer(buf, "<f4", count=n).astype(np.float32)
    if dtype == "fp16":
        return np.frombuffer(buf, "<f2", count=n).astype(np.float32)
    hi = np.frombuffer(buf, "<u2", count=n).astype(np.uint32) << 16
    return hi.view(np.float32)


# ----------------------------------------------------------------------------- writing


#: An entropy-coded payload is padded with zero bytes to at least n / 4096 bytes, so no record
#: carries more than 4,096 elements per byte (what the reader's allocation bound relies on).
ENTROPY_ELEMENTS_PER_BYTE = 4096


def entropy_pad(payload_len: int, n: int) -> int:
    """Zero bytes that follow an entropy payload of ``payload_len`` bytes for n elements."""
    return max(0, -(-n // ENTROPY_ELEMENTS_PER_BYTE) - payload_len)


def _spec_bytes(q: QuantizedTensor, ndim: int) -> bytes:
    s = q.spec
    g = GRANULARITIES.index(s.granularity)
    b1 = ((s.bits - 1) << 4) | (int(s.symmetric) << 3) | (int(s.restricted) << 2) | g
    out = bytearray([b1])
    out.append(FLOAT_CODES[s.scale_dtype] << 6 | (1 << 3 if s.channel_bits else 0))
    if s.granularity != "tensor":
        out.append(s.axis % ndim)
    if s.granularity == "group":
        out += varint(s.group_size)
    return bytes(out)


def encode_record(name: str, t: Tensor, entropy: str = "none") -> tuple[bytes, list[Section]]:
    """Bytes of one record (ending in its CRC-32) and its bit accounting.

    ``entropy``: "none" packs codes at their exact width; "auto" also tries the entropy coder and
    keeps whichever is smaller.
    """
    secs: list[Section] = []
    out = bytearray()

    def add(kind: str, data: bytes, pad_bits: int = 0) -> None:
        out.extend(data)
        secs.append(Section(name, kind, 8 * len(data) - pad_bits))
        if pad_bits:
            secs.append(Section(name, "pad", pad_bits))

    if isinstance(t, FloatTensor):
        add("record", bytes([KIND_FLOAT, FLOAT_CODES[t.dtype]]))
        add("payload", float_bytes(t.values, t.dtype))
    elif isinstance(t, RawTensor):
        add("record", bytes([KIND_RAW, RAW_CODES[str(t.values.dtype)]]))
        add(
            "payload",
            np.ascontiguousarray(t.values).astype(t.values.dtype.newbyteorder("<")).tobytes(),
        )
    else:
        spec = t.spec
        scheme = get_scheme(spec.scheme)
        spec_b = _spec_bytes(t, len(t.shape))
        head = bytes([scheme.scheme_id]) + spec_b
        sshape = scale_shape(t.shape, spec)
        rows = int(np.prod(sshape, dtype=np.int64))
        widths = spec.row_bits(rows)
        side = bytearray()
        side_pad = 0
        if spec.channel_bits:
            cb = bitpack.pack(widths - 1, 4)
            side += cb
            side_pad += 8 * len(cb) - 4 * rows
        sc = np.asarray(t.params["scale"], np.float32)
        if sc.size != rows or not np.all(np.isfinite(sc) & (sc > 0)):
            raise SpecError(f"tensor {name!r}: scales must be {rows} finite positive numbers")
        scales = float_bytes(sc, spec.scale_dtype)
        side += scales
        if not spec.symmetric:
            zp = np.asarray(t.params["zero_point"]).reshape(-1)
            zb = _pack_rows(zp, widths, 1)
            side += zb
            side_pad += 8 * len(zb) - int(widths.sum())
        qmin, _ = spec.row_qrange(rows)
        per_row = t.numel // rows if rows else 0
        flat = stream_order(np.asarray(t.codes).reshape(t.shape), spec)
        code_bits = int(widths.sum()) * per_row if spec.channel_bits else t.numel * spec.bits
        coded = None
        if entropy == "auto" and not spec.channel_bits and t.numel > 0:
            from . import entropy as ent

            offsets = flat.astype(np.int64) - spec.qmin
            coded = ent.encode_codes(offsets, 0, int(2**spec.bits - 1), row_len=_row_len(t))
            coded = varint(len(coded)) + coded + bytes(entropy_pad(len(coded), t.numel))
        if coded is not None and len(coded) < (code_bits + 7) // 8:
            coding, payload, payload_pad = CODING_ENTROPY, coded, 0
        else:  # packed at the exact width (sized analytically, packed only when it wins)
            if spec.channel_bits:
                offsets = flat.reshape(rows, per_row).astype(np.int64) - qmin[:, None]
                packed = _pack_rows(offsets.reshape(-1), widths, per_row)
            else:
                packed = bitpack.pack_codes(flat, spec.qmin, spec.bits)
            coding, payload, payload_pad = CODING_RAW, packed, 8 * len(packed) - code_bits
        head = head[:2] + bytes([head[2] | coding << 4]) + head[3:]
        add("record", head)
        add("side", bytes(side), side_pad)
        add("payload", payload, payload_pad)
    crc = zlib.crc32(out)
    out += struct.pack(">I", crc)
    secs.append(Section(name, "record", 32))
    return bytes(out), secs


def _row_len(t: QuantizedTensor) -> int | None:
    """Length of a row in stream order (for the entropy coder's row/column contexts)."""
    shape, spec = t.shape, t.spec
    if len(shape) < 2 or t.numel == 0:
        return None
    if spec.granularity == "tensor":
        return int(shape[-1])
    if spec.granularity == "channel":
        return t.numel // int(shape[spec.axis % len(shape)])
    return int(shape[spec.axis % len(shape)])


def stream_order(codes: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Codes flattened in stream order: C order, with the channel axis moved first (channel) or
    the group axis moved last (group)."""
    if spec.granularity == "tensor":
        return codes.reshape(-1)
    ax = spec.axis % codes.ndim
    return np.moveaxis(codes, ax, 0 if spec.granularity == "channel" else -1).reshape(-1)


def from_stream_order(flat: np.ndarray, shape: tuple[int, ...], spec: QuantSpec) -> np.ndarray:
    """Inverse of :func:`stream_order`."""
    if spec.granularity == "tensor":
        return flat.reshape(shape)
    ax = spec.axis % len(shape)
    rest = tuple(d for i, d in enumerate(shape) if i != ax)
    if spec.granularity == "channel":
        return np.ascontiguousarray(np.moveaxis(flat.reshape((shape[ax],) + rest), 0, ax))
    return np.ascontiguousarray(np.moveaxis(flat.reshape(rest + (shape[ax],)), -1, ax))


def _pack_rows(values: np.ndarray, widths: np.ndarray, per_row: int) -> bytes:
    if widths.size and np.all(widths == widths[0]):
        return bitpack.pack(values, int(widths[0]))
    return bitpack.pack_varwidth(values, np.repeat(widths, per_row))


# ----------------------------------------------------------------------------- reading


def decode_record(r: Reader, name: str, shape: tuple[int, ...]) -> tuple[Tensor, list[Section]]:
    """Read one record at the reader's position; verify its CRC; return the tensor and accounting."""
    start = r.pos
    secs: list[Section] = []
    n = int(np.prod(shape, dtype=np.int64))
    mark = r.pos

    def close(kind: str, pad_bits: int = 0) -> None:
        nonlocal mark
        secs.append(Section(name, kind, 8 * (r.pos - mark) - pad_bits))
        if pad_bits:
            secs.append(Section(name, "pad", pad_bits))
        mark = r.pos

    kind = r.u8(f"record kind of {name!r}")
    t: Tensor
    if kind == KIND_FLOAT:
        code = r.u8(f"float dtype of {name!r}")
        if code not in FLOAT_NAMES:
            raise FormatError(f"record {name!r}: unknown float dtype code {code}")
        dtype = FLOAT_NAMES[code]
        close("record")
        buf = r.take(n * FLOAT_BYTES[dtype], f"float values of {name!r}")
        t = FloatTensor(float_values(buf, n, dtype).reshape(shape), dtype)
        close("payload")
    elif kind == KIND_RAW:
        code = r.u8(f"raw dtype of {name!r}")
        if code >= len(RAW_DTYPES):
            raise FormatError(f"record {name!r}: unknown raw dtype code {code}")
        dt = np.dtype(RAW_DTYPES[code]).newbyteorder("<")
        close("record")
        buf = r.take(n * dt.itemsize, f"values of {name!r}")
        if RAW_DTYPES[code] == "bool" and n and np.frombuffer(buf, np.uint8, count=n).max() > 1:
            raise FormatError(f"record {name!r}: a bool value is not 0 or 1")
        vals = np.frombuffer(buf, dt, count=n).astype(RAW_DTYPES[code]).reshape(shape)
        t = RawTensor(vals)
        close("payload")
    else:
        scheme = scheme_by_id(kind)
        finish = _decode_quantized(r, name, shape, n, scheme.name, close)
    body_end = r.pos
    crc = r.u32be(f"CRC of record {name!r}")
    if zlib.crc32(r.buf[start:body_end]) != crc:
        raise FormatError(f"CRC mismatch in record {name!r}")
    if kind not in (KIND_FLOAT, KIND_RAW):
        t = finish()  # codes are unpacked / entropy-decoded only after the CRC passed
        if finish.entropy is not None:
            secs = _split_entropy(secs, name, *finish.entropy)
    secs.append(Section(name, "record", 32))
    return t, secs


def _split_entropy(secs: list[Section], name: str, buf, n: int, bits: int, head_bytes: int):
    """Replace an entropy-coded payload section by model side info, coded words and its CRC."""
    from . import entropy as ent

    d = ent.describe(buf, n, 0, 2**bits - 1)
    out = [s for s in secs if s.kind != "payload"]
    total = next(s.bits for s in secs if s.kind == "payload")
    side = 8 * (head_bytes + d["side_info_bytes"])
    coded, crc = 8 * d["coded_bytes"], 8 * d["crc_bytes"]
    out.append(Section(name, "side", side))
    out.append(Section(name, "payload", coded, note=f"ec:{d['model']}"))
    out.append(Section(name, "record", crc))
    if total - side - coded - crc:  # zero padding after a very short payload
        out.append(Section(name, "pad", total - side - coded - crc))
    return out


def _decode_quantized(r: Reader, name, shape, n, scheme_name, close):
    """Parse a quantized record's fields; returns a function that builds the tensor."""
    b1 = r.u8(f"spec of {name!r}")
    b2 = r.u8(f"spec of {name!r}")
    bits = (b1 >> 4) + 1
    sym, restricted, g = bool(b1 >> 3 & 1), bool(b1 >> 2 & 1), b1 & 3
    sdt, coding, has_cb = b2 >> 6, b2 >> 4 & 3, bool(b2 >> 3 & 1)
    if g >= len(GRANULARITIES) or sdt not in FLOAT_NAMES or coding > 1 or b2 & 0x07:
        raise FormatError(f"record {name!r}: invalid spec byte(s) {b1:#04x} {b2:#04x}")
    gran = GRANULARITIES[g]
    axis, group = 0, 0
    if gran != "tensor":
        axis = r.u8(f"axis of {name!r}")
        if axis >= len(shape):
            raise FormatError(f"record {name!r}: axis {axis} out of range for shape {shape}")
    if gran == "group":
        group = r.varint(f"group size of {name!r}", limit=2**31)
        if group < 1:
            raise FormatError(f"record {name!r}: group size 0")
    if has_cb and gran != "channel":
        raise FormatError(f"record {name!r}: per-channel widths on a non-channel record")
    if not sym and restricted:
        raise FormatError(f"record {name!r}: restricted range flag on an asymmetric record")
    if sym and bits == 1:
        raise FormatError(f"record {name!r}: symmetric 1-bit records do not exist")
    proto = QuantSpec(
        scheme=scheme_name,
        bits=bits,
        symmetric=sym,
        restricted=restricted,
        granularity=gran,
        axis=axis,
        group_size=group,
        scale_dtype=FLOAT_NAMES[sdt],
    )
    sshape = scale_shape(shape, proto)
    rows = int(np.prod(sshape, dtype=np.int64))
    close("record")
    channel_bits: tuple[int, ...] = ()
    pad = 0
    if has_cb:
        cb = bitpack.unpack(r.take(bitpack.packed_nbytes(rows, 4), f"widths of {name!r}"), rows, 4)
        channel_bits = tuple(int(x) + 1 for x in cb)
        if max(channel_bits, default=0) != bits:
            raise FormatError(f"record {name!r}: widths disagree with the bit width {bits}")
        pad += 8 * bitpack.packed_nbytes(rows, 4) - 4 * rows
    try:
        spec = QuantSpec(**{**proto.to_dict(), "channel_bits": channel_bits})
    except ValueError as e:
        raise FormatError(f"record {name!r}: {e}") from None
    widths = spec.row_bits(rows)
    sb = FLOAT_BYTES[spec.scale_dtype]
    scale = float_values(r.take(rows * sb, f"scales of {name!r}"), rows, spec.scale_dtype)
    with np.errstate(all="ignore"):  # |x_int - z| < 2**bits: s * 2**bits must stay finite
        ok = np.isfinite(scale) & (scale > 0) & np.isfinite(scale * np.float32(2**bits))
    if not np.all(ok):
        raise FormatError(f"record {name!r}: a scale is not a finite positive number (or too large)")
    params = {"scale": scale.reshape(sshape)}
    if not sym:
        zbits = int(widths.sum())
        zb = r.take((zbits + 7) // 8, f"zero points of {name!r}")
        zp = _unpack_rows(zb, widths, 1, rows)
        params["zero_point"] = zp.astype(np.int32).reshape(sshape)
        pad += 8 * ((zbits + 7) // 8) - zbits
    close("side", pad)
    per_row = n // rows if rows else 0
    qmin, _ = spec.row_qrange(rows)
    if coding == CODING_ENTROPY:
        if has_cb:
            raise FormatError(f"record {name!r}: entropy coding with per-channel widths")
        at = r.pos
        length = r.varint(f"entropy payload length of {name!r}", limit=r.remaining)
        head_bytes = r.pos - at
        buf = r.take(length, f"entropy payload of {name!r}")
        pad_bytes = r.take(entropy_pad(length, n), f"entropy padding of {name!r}")
        if any(pad_bytes):
            raise FormatError(f"record {name!r}: nonzero entropy padding")
        close("payload")
    else:
        code_bits = int(widths.sum()) * per_row if gran != "group" else n * bits
        nbytes = (code_bits + 7) // 8
        buf = r.take(nbytes, f"codes of {name!r}")
        close("payload", 8 * nbytes - code_bits)

    def finish() -> QuantizedTensor:
        if coding == CODING_ENTROPY:
            try:
                from . import entropy as ent

                decode_codes = ent.decode_codes
            except (ImportError, AttributeError):
                raise FormatError(
                    f"record {name!r} is entropy-coded; this reader has no entropy coder"
                ) from None
            flat = np.asarray(decode_codes(buf, n, 0, 2**bits - 1)).astype(np.int32)
            flat += np.int32(spec.qmin)
        elif has_cb:
            offsets = _unpack_rows(buf, widths, per_row, rows).astype(np.int32)
            flat = (offsets.reshape(rows, per_row) + qmin[:, None].astype(np.int32)).reshape(-1)
        else:
            flat = bitpack.unpack_codes(buf, n, spec.qmin, bits)
        if spec.restricted and flat.size and flat.max() > spec.qmax:
            raise FormatError(f"record {name!r}: a code lies outside the restricted range")
        codes = from_stream_order(flat, tuple(shape), spec)
        return QuantizedTensor(codes=codes, params=params, spec=spec, shape=tuple(shape))

    finish.entropy = (buf, n, bits, head_bytes) if coding == CODING_ENTROPY else None
    return finish


def _unpack_rows(buf, widths: np.ndarray, per_row: int, rows: int) -> np.ndarray:
    if rows == 0:
        return np.zeros(0, np.uint32)
    if np.all(widths == widths[0]):
        return bitpack.unpack(buf, rows * per_row, int(widths[0]))
    return bitpack.unpack_varwidth(buf, np.repeat(widths, per_row))

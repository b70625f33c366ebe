"""The stream container: header (magic, version, mode, layout or fingerprint), records, CRCs.

Self-describing mode sends every tensor's name and shape; agreed-architecture mode sends only a
32-bit fingerprint of the (name, shape) list sorted by name, which the receiver recomputes from its
own copy of the architecture; records then follow in sorted-name order.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import FormatError
from .records import Section, Tensor, decode_record, encode_record
from .wire import Reader, varint

MAGIC = b"NNSH"
VERSION = 1
FLAG_AGREED = 0x01
FLAG_BASE = 0x02
MAX_NDIM = 16
#: A stream may describe at most this many elements per byte of its own length (0.002 bits per
#: element): bounds what a forged header can make the receiver allocate. Packed records need
#: at most 8 elements per byte; entropy-coded sparse updates can go far below 1 bit per element.
MAX_ELEMENTS_PER_BYTE = 4096

Layout = Sequence[tuple[str, tuple[int, ...]]]


def fingerprint(layout: Layout) -> int:
    """CRC-32 of the names and shapes, as UTF-8 text ``name:d0,d1;`` per tensor, in the given
    order (agreed mode sorts tensors by name first, so the receiver's dict order does not matter)."""
    text = "".join(f"{n}:{','.join(str(int(d)) for d in s)};" for n, s in layout)
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class Stream:
    """A parsed stream: the layout, the tensors by name, and the bit accounting."""

    mode: str
    layout: tuple[tuple[str, tuple[int, ...]], ...]
    tensors: dict[str, Tensor]
    sections: tuple[Section, ...]
    base_fingerprint: int | None = None
    version: int = VERSION
    total_bits: int = field(default=0)


def write_stream(
    tensors: dict[str, Tensor],
    mode: str = "self",
    *,
    entropy: str = "none",
    base_fingerprint: int | None = None,
) -> tuple[bytes, list[Section]]:
    """Serialise named tensors (in dict order). Returns the bytes and their exact accounting."""
    if mode not in ("self", "agreed"):
        raise FormatError(f"mode must be 'self' or 'agreed', got {mode!r}")
    if mode == "agreed":  # canonical order: the receiver's dict order need not match ours
        tensors = {k: tensors[k] for k in sorted(tensors)}
    layout = [(name, tuple(int(d) for d in t.shape)) for name, t in tensors.items()]
    flags = (FLAG_AGREED if mode == "agreed" else 0) | (
        FLAG_BASE if base_fingerprint is not None else 0
    )
    head = bytearray(MAGIC + bytes([VERSION, flags]) + varint(len(layout)))
    if mode == "agreed":
        head += struct.pack(">I", fingerprint(layout))
    else:
        for name, shape in layout:
            nb = name.encode("utf-8")
            if len(shape) > MAX_NDIM:
                raise FormatError(f"tensor {name!r} has {len(shape)} dimensions (max {MAX_NDIM})")
            head += varint(len(nb)) + nb + bytes([len(shape)])
            for d in shape:
                head += varint(d)
    if base_fingerprint is not None:
        head += struct.pack(">I", base_fingerprint & 0xFFFFFFFF)
    head += struct.pack(">I", zlib.crc32(head))
    out = [bytes(head)]
    sections = [Section("", "header", 8 * len(head))]
    for name, t in tensors.items():
        rec, secs = encode_record(name, t, entropy=entropy)
        out.append(rec)
        sections.extend(secs)
    return b"".join(out), sections


def read_stream(data: bytes | bytearray | memoryview, layout: Layout | None = None) -> Stream:
    """Parse and verify a stream. ``layout`` (ordered names and shapes) is required for a stream
    in agreed-architecture mode and must match the fingerprint it carries.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    r = Reader(data)
    total = len(r.buf)
    magic = bytes(r.take(4, "magic"))
    if magic != MAGIC:
        raise FormatError(f"wrong magic {magic!r}: not an nnshare stream")
    version = r.u8("version")
    if version != VERSION:
        raise FormatError(f"unsupported version {version} (this reader knows {VERSION})")
    flags = r.u8("flags")
    if flags & ~(FLAG_AGREED | FLAG_BASE):
        raise FormatError(f"reserved flag bits set: {flags:#04x}")
    count = r.varint("tensor count", limit=total)
    names_shapes: list[tuple[str, tuple[int, ...]]] = []
    if flags & FLAG_AGREED:
        fp = r.u32be("fingerprint")
    else:
        for i in range(count):
            ln = r.varint(f"name length of tensor {i}", limit=r.remaining)
            try:
                name = bytes(r.take(ln, f"name of tensor {i}")).decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError(f"name of tensor {i} is not UTF-8") from None
            nd = r.u8(f"rank of {name!r}")
            if nd > MAX_NDIM:
                raise FormatError(f"tensor {name!r} claims {nd} dimensions (max {MAX_NDIM})")
            shape = tuple(
                r.varint(f"dimension of {name!r}", limit=8 * total * MAX_ELEMENTS_PER_BYTE)
                for _ in range(nd)
            )
            names_shapes.append((name, shape))
    base = r.u32be("base fingerprint") if flags & FLAG_BASE else None
    head_end = r.pos
    crc = r.u32be("header CRC")
    if zlib.crc32(r.buf[:head_end]) != crc:
        raise FormatError("CRC mismatch in the stream header")
    if flags & FLAG_AGREED:
        if layout is None:
            raise FormatError(
                "stream is in agreed-architecture mode: the receiver must supply the model "
                "(decode(data, into=model) or layout=...)"
            )
        names_shapes = sorted((str(n), tuple(int(d) for d in s)) for n, s in layout)
        if len(names_shapes) != count or fingerprint(names_shapes) != fp:
            raise FormatError(
                f"architecture fingerprint mismatch: stream {fp:#010x} for {count} tensors, "
                f"receiver {fingerprint(names_shapes):#010x} for {len(names_shapes)} tensors"
            )
    if len({n for n, _ in names_shapes}) != len(names_shapes):
        raise FormatError("duplicate tensor names in the stream header")
    elements = sum(int(np.prod(s, dtype=object)) for _, s in names_shapes)
    if elements > MAX_ELEMENTS_PER_BYTE * total + 1024:
        raise FormatError(
            f"header describes {elements} elements, more than a {total}-byte stream can carry"
        )
    sections = [Section("", "header", 8 * r.pos)]
    tensors: dict[str, Tensor] = {}
    for name, shape in names_shapes:
        try:
            t, secs = decode_record(r, name, shape)
        except FormatError:
            raise
        except (ValueError, IndexError, OverflowError, TypeError) as e:  # safety net
            raise FormatError(f"malformed record {name!r}: {e}") from None
        tensors[name] = t
        sections.extend(secs)
    if r.remaining:
        raise FormatError(f"{r.remaining} unexpected bytes after the last record")
    mode = "agreed" if flags & FLAG_AGREED else "self"
    return Stream(mode, tuple(names_shapes), tensors, tuple(sections), base, version, 8 * total)

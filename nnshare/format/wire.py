"""The one byte layer of every stream: a bounds-checked Reader, a Writer, varints and CRC-32.

Every read checks the bytes that remain before it slices or allocates, and raises
:class:`FormatError` naming the field. Varints are unsigned LEB128 (at most 10 bytes); signed
varints are zigzag-mapped first. Fixed-width fields name their byte order (``u32le``/``u32be``):
format v1 wrote CRCs and fingerprints big-endian, format v2 writes every field little-endian.
"""

from __future__ import annotations

import struct
import zlib

from .errors import FormatError

MAX_VARINT_BYTES = 10
VARINT_LIMIT = 1 << 62


def varint(value: int) -> bytes:
    """Unsigned LEB128 encoding of a non-negative integer."""
    if value < 0:
        raise ValueError("varint of a negative number")
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(value: int) -> int:
    """Signed -> unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return 2 * value if value >= 0 else -2 * value - 1


def svarint(value: int) -> bytes:
    """Signed varint (zigzag, then LEB128)."""
    return varint(zigzag(value))


def varint_len(value: int) -> int:
    """Bytes of the LEB128 encoding of ``value`` (>= 0)."""
    return max(1, -(-int(value).bit_length() // 7))


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32 (zlib / IEEE 802.3 polynomial) of ``data``, as an unsigned 32-bit integer."""
    return zlib.crc32(data) & 0xFFFFFFFF


class Writer:
    """Appends fields to a bytearray (``buf``)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def __len__(self) -> int:
        return len(self.buf)

    def u8(self, v: int) -> None:
        self.buf.append(v & 0xFF)

    def varint(self, v: int) -> None:
        """Unsigned LEB128."""
        self.buf += varint(v)

    def svarint(self, v: int) -> None:
        """Signed varint (zigzag)."""
        self.buf += svarint(v)

    def u32le(self, v: int) -> None:
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)

    def u32be(self, v: int) -> None:
        self.buf += struct.pack(">I", v & 0xFFFFFFFF)

    def u64le(self, v: int) -> None:
        self.buf += struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)

    def f32le(self, v: float) -> None:
        self.buf += struct.pack("<f", v)

    def raw(self, b: bytes | bytearray | memoryview) -> None:
        self.buf += b

    def getvalue(self) -> bytes:
        return bytes(self.buf)


class Reader:
    """Sequential reader over a bytes-like object; raises FormatError on any overrun.

    ``what`` names the object being read ("stream", "entropy payload", ...) in error messages;
    every field read may name itself too.
    """

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "stream") -> None:
        if isinstance(data, memoryview):
            self.buf = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        else:
            self.buf = memoryview(data if isinstance(data, bytes) else bytes(data))
        self.pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        """Bytes left to read."""
        return len(self.buf) - self.pos

    def need(self, n: int, what: str | None = None) -> None:
        """Raise FormatError unless ``n`` bytes remain for ``what``."""
        if n < 0 or n > self.remaining:
            field = what or self.what
            raise FormatError(
                f"{self.what} truncated at byte {self.pos}: {field} needs {n} bytes, "
                f"{self.remaining} left"
            )

    def take(self, n: int, what: str | None = None) -> memoryview:
        pos = self.pos
        if n < 0 or pos + n > len(self.buf):
            self.need(n, what)
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def u8(self, what: str | None = None) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            self.need(1, what)
        self.pos = pos + 1
        return self.buf[pos]

    def u32be(self, what: str | None = None) -> int:
        return struct.unpack(">I", self.take(4, what))[0]

    def u32le(self, what: str | None = None) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def u64le(self, what: str | None = None) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]

    def f32le(self, what: str | None = None) -> float:
        return struct.unpack("<f", self.take(4, what))[0]

    def varint(self, what: str | None = None, *, limit: int = VARINT_LIMIT) -> int:
        """Unsigned LEB128 of at most 10 bytes whose value is <= ``limit``."""
        value = shift = 0
        start = self.pos
        field = what or self.what
        for _ in range(MAX_VARINT_BYTES):
            b = self.u8(what)
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value > limit:
                    raise FormatError(f"{field} at byte {start} is {value}, larger than {limit}")
                return value
            shift += 7
        raise FormatError(f"{field} at byte {start}: varint longer than {MAX_VARINT_BYTES} bytes")

    def svarint(self, what: str | None = None, *, limit: int = VARINT_LIMIT) -> int:
        """Signed (zigzag) varint with |value| <= ``limit``."""
        z = self.varint(what, limit=2 * limit + 1)
        return z >> 1 if not z & 1 else -(z >> 1) - 1

"""A bounds-checked byte reader and writer helpers: every read checks the bytes that remain first."""

from __future__ import annotations

import struct

from .errors import FormatError


class Reader:
    """Sequential reader over a bytes-like object; raises FormatError on any overrun."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.buf = memoryview(bytes(data) if not isinstance(data, bytes) else data)
        self.pos = 0

    @property
    def remaining(self) -> int:
        """Bytes left to read."""
        return len(self.buf) - self.pos

    def need(self, n: int, what: str) -> None:
        """Raise FormatError unless ``n`` bytes remain for ``what``."""
        if n < 0 or n > self.remaining:
            raise FormatError(
                f"truncated at byte {self.pos}: {what} needs {n} bytes, {self.remaining} left"
            )

    def take(self, n: int, what: str) -> memoryview:
        self.need(n, what)
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        return struct.unpack(">I", self.take(4, what))[0]

    def varint(self, what: str, limit: int = 2**40) -> int:
        """Unsigned LEB128, at most 6 bytes, value <= ``limit``."""
        value = shift = 0
        start = self.pos
        for _ in range(6):
            b = self.u8(what)
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value > limit:
                    raise FormatError(f"{what} at byte {start} is {value}, larger than {limit}")
                return value
            shift += 7
        raise FormatError(f"{what} at byte {start}: varint longer than 6 bytes")


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

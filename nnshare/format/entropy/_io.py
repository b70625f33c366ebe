"""Bounded byte reader and writer for entropy-coder side info (varints, floats)."""

from __future__ import annotations

import struct

from ..errors import FormatError

_MAX_VARINT_BYTES = 10


class Writer:
    """Appends side-info fields to a bytearray."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> None:
        self.buf.append(v & 0xFF)

    def varint(self, v: int) -> None:
        """Unsigned LEB128."""
        if v < 0:
            raise ValueError("varint must be >= 0")
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                self.buf.append(b | 0x80)
            else:
                self.buf.append(b)
                return

    def svarint(self, v: int) -> None:
        """Signed varint (zigzag)."""
        self.varint(2 * v if v >= 0 else -2 * v - 1)

    def f32(self, v: float) -> None:
        self.buf += struct.pack("<f", v)

    def raw(self, b: bytes) -> None:
        self.buf += b


class Reader:
    """Reads fields from a bytes-like object; every read is bounds-checked (FormatError)."""

    def __init__(self, data: bytes | memoryview, what: str = "entropy payload") -> None:
        self.data = memoryview(data).cast("B")
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> memoryview:
        if n < 0 or n > self.remaining():
            raise FormatError(
                f"{self.what} truncated at byte {self.pos}: need {n} bytes, {self.remaining()} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self, limit: int = 1 << 62) -> int:
        v = 0
        for i in range(_MAX_VARINT_BYTES):
            b = self.u8()
            v |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if v > limit:
                    raise FormatError(f"{self.what}: value {v} exceeds limit {limit}")
                return v
        raise FormatError(f"{self.what}: varint longer than {_MAX_VARINT_BYTES} bytes")

    def svarint(self, limit: int = 1 << 62) -> int:
        z = self.varint(2 * limit + 1)
        return z >> 1 if not z & 1 else -(z >> 1) - 1

    def f32(self) -> float:
        return struct.unpack("<f", self.take(4))[0]

"""Fragments: any byte stream cut into numbered, CRC-checked pieces, and put back together.

A fragment is ``HEADER_BYTES`` of header, the payload, and a CRC-32 of header + payload
(``OVERHEAD_BYTES`` = 22 in all). Header fields, little-endian:

=========  =====  ==========================================================================
field      bytes  meaning
=========  =====  ==========================================================================
magic      2      ``b"NL"``
version    1      1
kind       1      0 = data (other kinds are the transport's control messages)
transfer   4      CRC-32 of the whole stream: names the transfer and checks the reassembly
length     4      stream length in bytes
size       2      payload bytes of every fragment but the last (1..65535)
seq        4      fragment number, 0 .. count - 1
=========  =====  ==========================================================================

``count = ceil(length / size)``; fragment ``seq`` holds bytes ``[seq * size, (seq + 1) * size)``.
The transport (802.11 MPDU, UDP datagram, file) is not this module's business.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, SpecError
from ..format.wire import crc32

MAGIC = b"NL"
VERSION = 1
KIND_DATA = 0
_HEAD = struct.Struct("<2sBBIIHI")
HEADER_BYTES = _HEAD.size  # 18
CRC_BYTES = 4
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
MAX_FRAGMENT_PAYLOAD = 0xFFFF


class FragmentError(FormatError):
    """A fragment is corrupted, foreign, duplicated, out of range or inconsistent."""


@dataclass(frozen=True)
class Fragment:
    """One parsed fragment."""

    transfer: int
    length: int
    size: int
    seq: int
    payload: bytes

    @property
    def count(self) -> int:
        return fragment_count(self.length, self.size)


def fragment_count(length: int, size: int) -> int:
    """Fragments of a ``length``-byte stream cut into ``size``-byte payloads (at least 1)."""
    return max(1, math.ceil(length / size))


def payload_sizes(length: int, size: int) -> np.ndarray:
    """Payload bytes of every fragment, (count,) int64."""
    n = fragment_count(length, size)
    out = np.full(n, size, dtype=np.int64)
    out[-1] = length - (n - 1) * size
    return out


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FRAGMENT_PAYLOAD:
        raise SpecError(f"fragment payload size must be 1..{MAX_FRAGMENT_PAYLOAD} bytes, got {size!r}")


def build(transfer: int, length: int, size: int, seq: int, payload: bytes, kind: int = KIND_DATA) -> bytes:
    """Serialise one fragment (header + payload + CRC-32)."""
    head = _HEAD.pack(MAGIC, VERSION, kind, transfer, length, size, seq)
    body = head + bytes(payload)
    return body + struct.pack("<I", crc32(body))


def fragment(data: bytes, size: int = 1500) -> list[bytes]:
    """Cut ``data`` into fragments of ``size`` payload bytes (the last may be shorter)."""
    _check_size(size)
    data = bytes(data)
    if len(data) >= 1 << 32:
        raise SpecError("streams of 4 GiB or more cannot be fragmented")
    tid = crc32(data)
    n = fragment_count(len(data), size)
    return [build(tid, len(data), size, i, data[i * size : (i + 1) * size]) for i in range(n)]


def parse(frag: bytes | bytearray | memoryview) -> Fragment:
    """Check and parse one fragment; raises FragmentError naming what is wrong."""
    b = bytes(frag)
    if len(b) < OVERHEAD_BYTES:
        raise FragmentError(f"fragment of {len(b)} bytes is shorter than its {OVERHEAD_BYTES}-byte framing")
    magic, version, kind, tid, length, size, seq = _HEAD.unpack_from(b)
    if magic != MAGIC:
        raise FragmentError(f"not an nnshare fragment (magic {magic!r})")
    if version != VERSION:
        raise FragmentError(f"fragment version {version} is not supported (this reader knows {VERSION})")
    (crc,) = struct.unpack_from("<I", b, len(b) - CRC_BYTES)
    if crc32(b[:-CRC_BYTES]) != crc:
        raise FragmentError(f"fragment CRC mismatch (seq field {seq}): the fragment is corrupted")
    if kind != KIND_DATA:
        raise FragmentError(f"fragment kind {kind} is not a data fragment")
    if size == 0:
        raise FragmentError("fragment payload size field is 0")
    count = fragment_count(length, size)
    if seq >= count:
        raise FragmentError(f"fragment seq {seq} is out of range: the transfer has {count} fragments")
    payload = b[HEADER_BYTES:-CRC_BYTES]
    want = size if seq < count - 1 else length - (count - 1) * size
    if len(payload) != want:
        raise FragmentError(f"fragment {seq} carries {len(payload)} payload bytes, expected {want}")
    return Fragment(tid, length, size, seq, payload)


class Reassembler:
    """Collects the fragments of one transfer in any order and returns the verified stream.

    ``add`` raises FragmentError for a corrupted, malformed or foreign fragment (another transfer
    id, length or fragment size than the first one accepted) and returns False for a duplicate.
    """

    def __init__(self, transfer: int | None = None) -> None:
        self.transfer = transfer
        self.length: int | None = None
        self.size: int | None = None
        self.parts: dict[int, bytes] = {}
        self.duplicates = 0

    @property
    def count(self) -> int | None:
        return None if self.length is None else fragment_count(self.length, self.size)

    def add(self, frag: bytes | Fragment) -> bool:
        """Take one fragment; True if new, False if a duplicate."""
        f = frag if isinstance(frag, Fragment) else parse(frag)
        if self.transfer is not None and f.transfer != self.transfer:
            raise FragmentError(f"foreign fragment: transfer {f.transfer:08x}, expected {self.transfer:08x}")
        if self.length is not None and (f.length, f.size) != (self.length, self.size):
            raise FragmentError(
                f"foreign fragment: stream of {f.length} bytes in {f.size}-byte fragments, expected "
                f"{self.length} bytes in {self.size}-byte fragments"
            )
        self.transfer, self.length, self.size = f.transfer, f.length, f.size
        if f.seq in self.parts:
            if self.parts[f.seq] != f.payload:
                raise FragmentError(f"fragment {f.seq} arrived twice with different payloads")
            self.duplicates += 1
            return False
        self.parts[f.seq] = f.payload
        return True

    @property
    def complete(self) -> bool:
        return self.count is not None and len(self.parts) == self.count

    def missing(self) -> list[int]:
        """Fragment numbers not yet received (all unknown before the first fragment)."""
        if self.count is None:
            return []
        return [i for i in range(self.count) if i not in self.parts]

    def bitmap(self) -> bytes:
        """Received fragments as a bitmap: bit ``i % 8`` of byte ``i // 8`` set if ``i`` arrived."""
        n = self.count or 0
        bits = np.zeros(n, dtype=bool)
        if self.parts:
            bits[np.fromiter(self.parts, dtype=np.int64)] = True
        return np.packbits(bits, bitorder="little").tobytes()

    def result(self) -> bytes:
        """The reassembled stream, checked against the transfer's CRC-32."""
        if not self.complete:
            n = self.count
            got = len(self.parts)
            raise FragmentError(f"transfer incomplete: {got} of {n if n is not None else '?'} fragments")
        data = b"".join(self.parts[i] for i in range(self.count))
        if crc32(data) != self.transfer:
            raise FragmentError("reassembled stream fails the transfer CRC-32")
        return data


def bitmap_to_seqs(bitmap: bytes, count: int) -> np.ndarray:
    """Fragment numbers set in a bitmap of ``count`` fragments, (k,) int64."""
    if len(bitmap) != (count + 7) // 8:
        raise FragmentError(f"bitmap of {len(bitmap)} bytes does not match {count} fragments")
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
    if bits[count:].any():
        raise FragmentError("bitmap marks fragments beyond the end of the transfer")
    return np.flatnonzero(bits[:count]).astype(np.int64)


def reassemble(fragments) -> bytes:
    """Strict reassembly of a complete set of fragments in any order: a duplicate, a foreign or a
    corrupted fragment, or a missing one, raises FragmentError."""
    r = Reassembler()
    for f in fragments:
        p = parse(f)
        if not r.add(p):
            raise FragmentError(f"fragment {p.seq} is duplicated")
    return r.result()


STATE_MAGIC = b"NLR1"


def save_state(r: Reassembler) -> bytes:
    """A partly received transfer: magic, transfer id, length, size (LE), bitmap, the payloads
    received in seq order, CRC-32 of all before it. Reload with ``load_state`` to resume."""
    if r.count is None:
        raise SpecError("nothing received yet: no transfer state to save")
    head = STATE_MAGIC + struct.pack("<IIH", r.transfer, r.length, r.size)
    body = head + r.bitmap() + b"".join(r.parts[i] for i in sorted(r.parts))
    return body + struct.pack("<I", crc32(body))


def load_state(data: bytes) -> Reassembler:
    """Rebuild a Reassembler from ``save_state`` bytes; FragmentError if they are damaged."""
    b = bytes(data)
    if len(b) < 18 or b[:4] != STATE_MAGIC:
        raise FragmentError("not an nnshare transfer state (magic)")
    (crc,) = struct.unpack_from("<I", b, len(b) - 4)
    if crc32(b[:-4]) != crc:
        raise FragmentError("transfer state CRC mismatch: the state file is corrupted")
    tid, length, size = struct.unpack_from("<IIH", b, 4)
    if size == 0:
        raise FragmentError("transfer state has fragment size 0")
    count = fragment_count(length, size)
    nb = (count + 7) // 8
    seqs = bitmap_to_seqs(b[14 : 14 + nb], count) if len(b) >= 18 + nb else None
    if seqs is None:
        raise FragmentError("transfer state truncated in its bitmap")
    sizes = payload_sizes(length, size)
    pos = 14 + nb
    r = Reassembler(tid)
    r.length, r.size = length, size
    for i in seqs.tolist():
        n = int(sizes[i])
        if pos + n > len(b) - 4:
            raise FragmentError("transfer state truncated in its payloads")
        r.parts[i] = b[pos : pos + n]
        pos += n
    if pos != len(b) - 4:
        raise FragmentError("transfer state has trailing bytes")
    return r

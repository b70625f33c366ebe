"""Readers of the version-1 update stream ``NNSU`` and its chain state ``NNSS`` (read only).

nnshare writes updates as ``NNSH`` v2 streams of kind "update" now (:mod:`.delta`); streams and
state files written by earlier versions still decode. Layouts (integers big-endian unless noted):

- ``NNSU``: magic, version (u8) = 1, flags (u8; bit 0 = continues a chain), base fingerprint
  (u32, CRC-32 of sorted names, shapes, float32 LE values), chain fingerprint (u32, CRC-32 of
  sorted names and int32 LE codes; 0 without a chain), tensor count (varint), per tensor in sorted
  name order: step (f32 LE), code bits (u8; 0 = all-zero update), entropy payload length (varint)
  and payload (codes in [-2**(b-1), 2**(b-1) - 1]); CRC-32 of everything before.
- ``NNSS``: magic, count (varint), per tensor (sorted) name (varint length + UTF-8), element count
  (varint), int32 LE codes; CRC-32 (u32) at the end.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

import numpy as np

from ..format.entropy import decode_codes
from ..format.errors import FormatError
from ..format.wire import Reader
from .receive import LEGACY_UPDATE_MAGIC

MAGIC = LEGACY_UPDATE_MAGIC  # b"NNSU"
STATE_MAGIC = b"NNSS"
FLAG_CHAIN = 0x01


def crc_arrays(arrays: Mapping[str, np.ndarray]) -> int:
    """v1 base fingerprint: CRC-32 of sorted names, shapes and float32 LE values."""
    crc = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype="<f4"))
        crc = zlib.crc32(f"{name}:{','.join(map(str, a.shape))};".encode(), crc)
        crc = zlib.crc32(a.tobytes(), crc)
    return crc


def crc_codes(codes: Mapping[str, np.ndarray]) -> int:
    """v1 chain fingerprint: CRC-32 of sorted names and int32 LE codes."""
    crc = 0
    for name in sorted(codes):
        a = np.ascontiguousarray(np.asarray(codes[name], dtype="<i4"))
        crc = zlib.crc32(name.encode() + b";" + a.tobytes(), crc)
    return crc


def read_state(data: bytes | bytearray | memoryview) -> dict[str, np.ndarray]:
    """Codes of an ``NNSS`` state file; FormatError on a bad file."""
    buf = memoryview(bytes(data))
    if len(buf) < 9 or bytes(buf[:4]) != STATE_MAGIC:
        raise FormatError("not an nnshare update state (wrong magic or too short)")
    if zlib.crc32(buf[:-4]) != struct.unpack(">I", buf[-4:])[0]:
        raise FormatError("CRC mismatch in the update state")
    r = Reader(buf[:-4], "update state")
    r.take(4)
    codes = {}
    for _ in range(r.varint(limit=len(buf))):
        try:
            name = bytes(r.take(r.varint(limit=len(buf)))).decode()
        except UnicodeDecodeError:
            raise FormatError("update state: tensor name is not UTF-8") from None
        n = r.varint(limit=len(buf) // 4)
        if name in codes:
            raise FormatError(f"update state: tensor {name!r} appears twice")
        codes[name] = np.frombuffer(r.take(4 * n), dtype="<i4").astype(np.int32)
    if r.remaining:
        raise FormatError("update state: trailing bytes")
    return codes


def decode_v1(
    data: bytes | bytearray | memoryview,
    base_a: dict[str, np.ndarray],
    prev: Mapping[str, np.ndarray] | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float]]:
    """Rebuild ``base + step * codes`` (float32) from an ``NNSU`` stream; returns the arrays,
    the codes and the steps."""
    buf = memoryview(bytes(data))
    if len(buf) < 18 or bytes(buf[:4]) != MAGIC:
        raise FormatError("not an nnshare update stream (wrong magic or too short)")
    if zlib.crc32(buf[:-4]) != struct.unpack(">I", buf[-4:])[0]:
        raise FormatError("CRC mismatch in the update stream (corrupted or truncated)")
    r = Reader(buf[:-4], "update stream")
    r.take(4)
    version, flags = r.u8(), r.u8()
    if version != 1:
        raise FormatError(f"unsupported update version {version} (this reader knows 1)")
    if flags & ~FLAG_CHAIN:
        raise FormatError(f"reserved update flag bits set: {flags:#04x}")
    base_fp, chain_fp = struct.unpack(">II", r.take(8))
    if crc_arrays(base_a) != base_fp:
        raise FormatError(f"base fingerprint mismatch: update made against {base_fp:#010x}")
    if flags & FLAG_CHAIN:
        if prev is None:
            raise FormatError("update continues a chain: the receiver needs the previous update")
        if crc_codes(prev) != chain_fp:
            raise FormatError("previous-update mismatch: the receiver holds another update chain")
    count = r.varint(limit=len(base_a))
    names = sorted(base_a)
    if count != len(names):
        raise FormatError(f"update has {count} tensors, base has {len(names)}")
    out, codes, steps = {}, {}, {}
    for k in names:
        b_ = base_a[k]
        s = struct.unpack("<f", r.take(4))[0]
        if not (np.isfinite(s) and s > 0):
            raise FormatError(f"tensor {k!r}: bad step {s}")
        bits = r.u8()
        if bits == 0:
            c = np.zeros(b_.size, np.int32)
        elif bits > 16:  # the writer sent at most 16-bit codes
            raise FormatError(f"tensor {k!r}: code width {bits} out of range 1..16")
        else:
            length = r.varint(limit=r.remaining)
            ctx = prev.get(k) if (prev is not None and flags & FLAG_CHAIN) else None
            if ctx is not None and ctx.size != b_.size:
                raise FormatError(f"tensor {k!r}: previous update has another size")
            c = decode_codes(r.take(length), b_.size, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1,
                             context=ctx)
        with np.errstate(over="ignore"):  # an overflow is refused by the caller
            out[k] = (b_ + np.float32(s) * c.astype(np.float32).reshape(b_.shape)).astype(np.float32)
        codes[k], steps[k] = c, s
    if r.remaining:
        raise FormatError(f"{r.remaining} unexpected bytes after the last tensor")
    return out, codes, steps

"""Fixed-width bit packing: unsigned b-bit values (1 <= b <= 16), MSB first, no slot waste.

Value i occupies stream bits [b*i, b*i + b) counted from the most significant bit of byte 0; the
last byte is zero-padded. A tensor of n values at b bits takes exactly ceil(n*b / 8) bytes.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .errors import FormatError

#: Packed fields of at most this many bytes at an odd width unpack through one Python integer.
SMALL_BYTES = 256


def packed_nbytes(n: int, bits: int) -> int:
    """Bytes that n values of ``bits`` bits occupy: ceil(n * bits / 8)."""
    return (int(n) * int(bits) + 7) // 8


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative integers < 2**bits into ceil(n*bits/8) bytes, MSB first."""
    v = np.ascontiguousarray(values).reshape(-1)
    n = v.size
    if bits == 8:
        return v.astype(np.uint8, copy=False).tobytes()
    if bits == 16:
        return v.astype(">u2").tobytes()
    if bits in (1, 2, 4):
        per = 8 // bits
        u = v.astype(np.uint8, copy=False)
        if n % per:
            u = np.concatenate([u, np.zeros(per - n % per, np.uint8)])
        if bits == 1:
            return np.packbits(u).tobytes()
        u = u.reshape(-1, per)
        acc = u[:, 0] << np.uint8(8 - bits)
        for i in range(1, per):
            acc |= u[:, i] << np.uint8(8 - bits * (i + 1))
        return acc.tobytes()
    g = -(-n // 8)
    vv = np.zeros(g * 8, np.uint32)
    vv[:n] = v
    vv = vv.reshape(g, 8)
    out = np.zeros((g, bits), np.uint32)
    for k in range(bits):  # output byte k of each group of 8 values (= bits bytes)
        lo_bit, hi_bit = 8 * k, 8 * k + 8
        i0, i1 = lo_bit // bits, (hi_bit - 1) // bits
        acc = out[:, k]
        for i in range(i0, min(i1, 7) + 1):
            shift = (bits * i + bits) - hi_bit  # where value i's LSB sits relative to byte's LSB
            col = vv[:, i]
            acc |= (col >> shift) if shift >= 0 else (col << -shift)
        out[:, k] = acc & 0xFF
    return out.astype(np.uint8).tobytes()[: packed_nbytes(n, bits)]


def unpack(buf: bytes | memoryview, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: n values in an unsigned integer dtype (uint8, uint16 or uint32).
    ``buf`` must hold packed_nbytes(n, bits) bytes."""
    need = packed_nbytes(n, bits)
    if len(buf) < need:
        raise FormatError(f"packed codes need {need} bytes, only {len(buf)} left")
    raw = np.frombuffer(buf, dtype=np.uint8, count=need)
    if bits == 8:
        return raw
    if bits == 16:
        return np.frombuffer(buf, dtype=">u2", count=n).astype(np.uint16)
    if bits == 1:
        return np.unpackbits(raw, count=n)
    if bits in (2, 4):
        per = 8 // bits
        out = np.empty((need, per), np.uint8)
        mask = np.uint8((1 << bits) - 1)
        for i in range(per):
            np.bitwise_and(raw >> np.uint8(8 - bits * (i + 1)), mask, out=out[:, i])
        return out.reshape(-1)[:n]
    if need <= SMALL_BYTES:  # a few values: one Python integer beats ~40 numpy calls
        v = int.from_bytes(raw.tobytes(), "big") >> (8 * need - n * bits)
        mask_ = (1 << bits) - 1
        return np.array([(v >> (bits * (n - 1 - i))) & mask_ for i in range(n)], np.uint32)
    if bits < 8:
        return _unpack_narrow(raw, n, bits)
    g = -(-n // 8)
    by = np.zeros(g * bits, np.uint32)
    by[:need] = raw
    by = by.reshape(g, bits)
    out = np.empty((g, 8), np.uint32)
    mask = np.uint32((1 << bits) - 1)
    for i in range(8):
        first, last = (bits * i) // 8, (bits * i + bits - 1) // 8
        acc = np.zeros(g, np.uint32)
        for k in range(first, last + 1):
            acc = (acc << np.uint32(8)) | by[:, k]
        tail = 8 * (last + 1) - (bits * i + bits)  # bits after value i inside the last byte
        out[:, i] = (acc >> np.uint32(tail)) & mask
    return out.reshape(-1)[:n]


def _unpack_narrow(raw: np.ndarray, n: int, bits: int) -> np.ndarray:
    """:func:`unpack` at 3, 5, 6 or 7 bits in uint8 arithmetic: a group of 8 values is ``bits``
    bytes and each value spans at most two of them (its high part shifted out of one byte, its
    low part out of the next), so every value is 2-4 uint8 operations on strided columns."""
    g = -(-n // 8)
    by = raw
    if raw.size != g * bits:
        by = np.zeros(g * bits, np.uint8)
        by[: raw.size] = raw
    by = by.reshape(g, bits)
    out = np.empty((g, 8), np.uint8)
    tmp = np.empty(g, np.uint8)
    mask = np.uint8((1 << bits) - 1)
    for i in range(8):
        k, o = divmod(bits * i, 8)  # first byte of value i, its offset from that byte's MSB
        dst = out[:, i]
        if o + bits <= 8:
            np.right_shift(by[:, k], np.uint8(8 - o - bits), out=dst)
            if o:
                np.bitwise_and(dst, mask, out=dst)
        else:  # high o + bits - 8 ... : the low bits of byte k, then the top of byte k + 1
            np.left_shift(by[:, k], np.uint8(o + bits - 8), out=tmp)
            np.bitwise_and(tmp, mask, out=tmp)
            np.right_shift(by[:, k + 1], np.uint8(16 - o - bits), out=dst)
            np.bitwise_or(dst, tmp, out=dst)
    return out.reshape(-1)[:n]


#: Values per chunk when packing variable widths (bounds the temporaries to ~20 MB).
VARWIDTH_CHUNK = 1 << 18


def _varwidth_bits(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One uint8 per bit (MSB first) of ``v[j]`` at ``w[j]`` bits, concatenated."""
    bitpos = np.zeros(v.size, np.int64)
    np.cumsum(w[:-1], out=bitpos[1:])
    bits = np.zeros(int(bitpos[-1] + w[-1]) if v.size else 0, np.uint8)
    for k in range(int(w.max()) if v.size else 0):  # bit k of every value wider than k
        sel = np.nonzero(w > k)[0]
        bits[bitpos[sel] + k] = (v[sel] >> (w[sel] - 1 - k).astype(np.uint32)) & 1
    return bits


def pack_varwidth_chunks(chunks) -> bytes:
    """:func:`pack_varwidth` of the concatenation of ``(values, widths)`` chunks, one chunk in
    memory at a time (bits left over past a byte boundary carry into the next chunk)."""
    out, carry = [], np.zeros(0, np.uint8)
    for values, widths in chunks:
        v = np.asarray(values, np.uint32).reshape(-1)
        w = np.asarray(widths, np.int64).reshape(-1)
        for a in range(0, v.size, VARWIDTH_CHUNK):
            bits = _varwidth_bits(v[a:a + VARWIDTH_CHUNK], w[a:a + VARWIDTH_CHUNK])
            if carry.size:
                bits = np.concatenate((carry, bits))
            cut = bits.size - bits.size % 8
            out.append(np.packbits(bits[:cut]).tobytes())
            carry = bits[cut:]
    if carry.size:
        out.append(np.packbits(carry).tobytes())
    return b"".join(out)


def pack_varwidth(values: np.ndarray, widths: np.ndarray) -> bytes:
    """Pack consecutive runs: ``values[j]`` takes ``widths[j]`` bits (1..16); MSB first, padded."""
    return pack_varwidth_chunks([(values, widths)])


def unpack_varwidth(buf: bytes | memoryview, widths: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_varwidth`."""
    w = np.asarray(widths, np.int64).reshape(-1)
    total = int(w.sum())
    need = (total + 7) // 8
    if len(buf) < need:
        raise FormatError(f"packed codes need {need} bytes, only {len(buf)} left")
    bits = np.unpackbits(np.frombuffer(buf, np.uint8, count=need))[:total]
    out = np.zeros(w.size, np.uint32)
    bitpos = np.concatenate(([0], np.cumsum(w)[:-1])) if w.size else np.zeros(0, np.int64)
    for b in np.unique(w):
        sel = np.nonzero(w == b)[0]
        idx = bitpos[sel, None] + np.arange(b)
        weights = (1 << np.arange(b - 1, -1, -1)).astype(np.uint32)
        out[sel] = (bits[idx].astype(np.uint32) * weights).sum(axis=1)
    return out


def pack_codes(codes: np.ndarray, qmin: int, bits: int) -> bytes | bytearray:
    """Pack signed or unsigned codes as offsets ``code - qmin`` in [0, 2**bits).

    Works in uint8 / uint16 modular arithmetic (the offset is below 2**bits, so the wrap-around
    is exact) to keep the hot path to two passes over small integers; large arrays take one
    compiled pass (:mod:`.kernels`, the same bytes).
    """
    c = np.asarray(codes).reshape(-1)
    f = kernels.fast(c.size) if c.dtype.kind in "iu" else None
    if f is not None:
        out = bytearray(packed_nbytes(c.size, bits))  # zeroed, written in place: no copy
        f.pack(np.ascontiguousarray(c), int(qmin), int(bits), np.frombuffer(out, np.uint8))
        return out
    dt = np.uint8 if bits <= 8 else np.uint16
    u = c.astype(dt)
    u -= dt(qmin % (256 if bits <= 8 else 65536))
    return pack(u, bits)


def unpack_codes(buf: bytes | memoryview, n: int, qmin: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: int32 codes."""
    f = kernels.fast(n, receiver=True)
    if f is not None:
        need = packed_nbytes(n, bits)
        if len(buf) < need:
            raise FormatError(f"packed codes need {need} bytes, only {len(buf)} left")
        out = np.empty(n, np.int32)
        f.unpack(np.frombuffer(buf, np.uint8, count=need), n, int(bits), np.int32(qmin), out)
        return out
    return np.add(unpack(buf, n, bits), np.int32(qmin), dtype=np.int32)

"""Compiled loops of the packed-code paths: fixed-width pack and unpack, unpack fused with the
affine dequantization, and per-row-width unpacking (receiver side; numba, the ``fast`` extra).

Each loop has a numpy twin in :mod:`.bitpack` / the affine scheme that gives the same bytes and
the same float32 values (the tests compare them). numba is imported on first use and only for
arrays of at least :data:`MIN_ELEMENTS` elements, and by a decoder only for large streams or
once loaded (:func:`fast`), so small streams and the CLI never pay for it;
``NNSHARE_NO_NUMBA=1`` (or numba missing) keeps everything on numpy.

Bit layout (docs/format.md): value i of a b-bit field occupies stream bits [b*i, b*i + b), MSB
first. A b <= 16-bit value starting at bit p lies inside the 3 bytes from byte p // 8, which
the loops read (bounds-checked) and shift.
"""

from __future__ import annotations

import os
import sys

import numpy as np

#: Arrays of fewer elements take the numpy path (numba's import and dispatch cost more there).
MIN_ELEMENTS = 1 << 15

_UNSET = object()
_FAST = _UNSET  # the compiled namespace, None for numpy; tests set None to force numpy


def pack_loop(codes, qmin, bits, out):
    """``codes - qmin`` (1-D ints) at ``bits`` bits into ``out`` (zeroed uint8, packed size)."""
    n = codes.size
    if bits == 8:
        for i in range(n):
            out[i] = np.uint8((codes[i] - qmin) & 0xFF)
        return
    if bits == 16:
        for i in range(n):
            v = (codes[i] - qmin) & 0xFFFF
            out[2 * i] = np.uint8(v >> 8)
            out[2 * i + 1] = np.uint8(v & 0xFF)
        return
    mask = (1 << bits) - 1
    if bits == 4:
        half = n >> 1
        for j in range(half):
            hi = (codes[2 * j] - qmin) & 15
            lo = (codes[2 * j + 1] - qmin) & 15
            out[j] = np.uint8((hi << 4) | lo)
        if n & 1:
            out[half] = np.uint8(((codes[n - 1] - qmin) & 15) << 4)
        return
    acc = np.uint64(0)
    nacc = 0
    j = 0
    for i in range(n):
        acc = (acc << np.uint64(bits)) | np.uint64((codes[i] - qmin) & mask)
        nacc += bits
        while nacc >= 8:
            nacc -= 8
            out[j] = np.uint8((acc >> np.uint64(nacc)) & np.uint64(0xFF))
            j += 1
        acc &= np.uint64((1 << nacc) - 1)
    if nacc:
        out[j] = np.uint8((acc << np.uint64(8 - nacc)) & np.uint64(0xFF))


def unpack_loop(raw, n, bits, qmin, out):
    """int32 ``value + qmin`` of n ``bits``-bit values of ``raw`` into ``out``."""
    nb = raw.size
    if bits == 8:
        for i in range(n):
            out[i] = np.int32(raw[i]) + qmin
        return
    if bits == 4:
        for i in range(n):
            out[i] = np.int32((raw[i >> 1] >> (4 * (1 - (i & 1)))) & 15) + qmin
        return
    mask = np.uint32((1 << bits) - 1)
    for i in range(n):
        b0 = (i * bits) >> 3
        v = np.uint32(raw[b0]) << np.uint32(16)
        if b0 + 1 < nb:
            v |= np.uint32(raw[b0 + 1]) << np.uint32(8)
        if b0 + 2 < nb:
            v |= np.uint32(raw[b0 + 2])
        out[i] = np.int32((v >> np.uint32(24 - ((i * bits) & 7) - bits)) & mask) + qmin


def dequant_loop(raw, bits, qmin, scale, zero, row_len, gl, out):
    """float32 affine values of packed codes, in stream order, into ``out`` (rows x row_len).

    Row r, element j has the scale and zero point (float32; 0 when symmetric) of entry
    ``r * ng + j // gl`` with ``ng = ceil(row_len / gl)``: one row per tensor, per channel; a
    row of groups per group. Value ``(float32(code) - z) * s``, the numpy dequantization's exact
    operations: ``float32(u) + (float32(qmin) - z)`` is the exact integer ``code - z``."""
    rows = out.shape[0]
    nb = raw.size
    ng = (row_len + gl - 1) // gl if row_len else 0
    mask = np.uint32((1 << bits) - 1)
    fq = np.float32(qmin)
    flat = out.reshape(-1)
    i = 0
    for r in range(rows):
        for g in range(ng):
            s = scale[r * ng + g]
            off = fq - zero[r * ng + g]  # exact: integers below 2**17; so is float32(u) + off
            i1 = i + min((g + 1) * gl, row_len) - g * gl
            if bits == 8:
                for k in range(i, i1):
                    flat[k] = (np.float32(raw[k]) + off) * s
            elif bits == 4:
                for k in range(i, i1):
                    flat[k] = (np.float32((raw[k >> 1] >> (4 - 4 * (k & 1))) & 15) + off) * s
            else:
                for k in range(i, i1):
                    b0 = (k * bits) >> 3
                    v = np.uint32(raw[b0]) << np.uint32(16)
                    if b0 + 1 < nb:
                        v |= np.uint32(raw[b0 + 1]) << np.uint32(8)
                    if b0 + 2 < nb:
                        v |= np.uint32(raw[b0 + 2])
                    u = (v >> np.uint32(24 - ((k * bits) & 7) - bits)) & mask
                    flat[k] = (np.float32(u) + off) * s
            i = i1


def unpack_rows_loop(raw, widths, row_len, qmin, out):
    """int32 codes of rows of ``row_len`` values, row r at ``widths[r]`` bits with its own
    ``qmin[r]``, consecutive in ``raw`` (followed by at least 2 zero bytes), into ``out``."""
    p = 0
    for r in range(widths.size):
        b = widths[r]
        mask = (1 << b) - 1
        q = qmin[r]
        for j in range(row_len):
            b0 = p >> 3
            v = (np.int64(raw[b0]) << 16) | (np.int64(raw[b0 + 1]) << 8) | np.int64(raw[b0 + 2])
            out[r, j] = ((v >> (24 - (p & 7) - b)) & mask) + q
            p += b


def dequant_rows_loop(raw, widths, qmin, scale, zero, out):
    """float32 ``(float32(code) - z) * s`` of channel rows at their own widths (the layout of
    :func:`unpack_rows_loop`; ``raw`` followed by at least 2 zero bytes) into ``out``
    (rows x row_len); one scale and zero point per row."""
    rows, m = out.shape
    p = 0
    for r in range(rows):
        b = widths[r]
        mask = (1 << b) - 1
        s = scale[r]
        off = np.float32(qmin[r]) - zero[r]  # exact (integers below 2**17)
        j0 = 0
        if b == 8 and (p & 7) == 0:
            base = p >> 3
            for j in range(m):
                out[r, j] = (np.float32(raw[base + j]) + off) * s
            j0 = m
        elif b < 8 and (p & 7) == 0:  # 8 values fill b whole bytes: one 64-bit word per 8
            base = p >> 3
            for g in range(m >> 3):
                acc = np.int64(0)
                for t in range(b):
                    acc = (acc << 8) | np.int64(raw[base + g * b + t])
                for t in range(8):
                    u = (acc >> (b * (7 - t))) & mask
                    out[r, 8 * g + t] = (np.float32(u) + off) * s
            j0 = m - (m & 7)
        if j0 < m:
            for j in range(j0, m):
                q = p + j * b
                b0 = q >> 3
                v = (np.int64(raw[b0]) << 16) | (np.int64(raw[b0 + 1]) << 8) | np.int64(raw[b0 + 2])
                out[r, j] = (np.float32((v >> (24 - (q & 7) - b)) & mask) + off) * s
        p += m * b


def pack_rows_loop(codes, widths, row_len, qmin, out):
    """Inverse of :func:`unpack_rows_loop`: ``codes`` (rows x row_len) into zeroed ``out``."""
    acc = np.uint64(0)
    nacc = 0
    k = 0
    for r in range(widths.size):
        b = widths[r]
        mask = (1 << b) - 1
        q = qmin[r]
        for j in range(row_len):
            acc = (acc << np.uint64(b)) | np.uint64((codes[r, j] - q) & mask)
            nacc += b
            while nacc >= 8:
                nacc -= 8
                out[k] = np.uint8((acc >> np.uint64(nacc)) & np.uint64(0xFF))
                k += 1
            acc &= np.uint64((1 << nacc) - 1)
    if nacc:
        out[k] = np.uint8((acc << np.uint64(8 - nacc)) & np.uint64(0xFF))


class _Compiled:
    """The loops above compiled by numba (cached on disk, one thread, no fast-math)."""

    def __init__(self, numba) -> None:
        jit = numba.njit(cache=True, nogil=True)
        self.pack = jit(pack_loop)
        self.unpack = jit(unpack_loop)
        self.dequant = jit(dequant_loop)
        self.unpack_rows = jit(unpack_rows_loop)
        self.dequant_rows = jit(dequant_rows_loop)
        self.pack_rows = jit(pack_rows_loop)


def fast(n: int, receiver: bool = False):
    """The compiled loops for an array of n elements, or None (numpy path): None when n is
    below :data:`MIN_ELEMENTS`, numba is missing or ``NNSHARE_NO_NUMBA`` is set.

    ``receiver``: a decoder's call, which loads numba (~0.7 s with its caches) only when it is
    loaded already or the stream being decoded holds at least ``rans.NUMBA_FROM`` elements (the
    rule of :mod:`.entropy.rans`), so a CLI decode of a small or medium model stays on numpy."""
    global _FAST
    if n < MIN_ELEMENTS:
        return None
    if _FAST is _UNSET:
        if os.environ.get("NNSHARE_NO_NUMBA"):
            return None
        if receiver and "numba" not in sys.modules:
            from . import budget
            from .entropy.rans import NUMBA_FROM

            b = budget.active()
            if max(n, b.elements if b is not None else 0) < NUMBA_FROM:
                return None
        try:
            import numba
        except ImportError:  # pragma: no cover - exercised where numba is absent
            numba = None
        _FAST = None if numba is None else _Compiled(numba)
    return _FAST

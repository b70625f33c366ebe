"""Packed codes of affine records: rows at per-channel widths, and float32 values straight from
packed codes (the fused unpack + dequantize of a decode).

Every function has a compiled path (:mod:`..kernels`, large arrays with numba) and a numpy path;
both give the same bytes and the same values (the tests compare them).
"""

from __future__ import annotations

import numpy as np

from .. import bitpack, grain, kernels
from ..errors import FormatError


def _row_starts(widths: np.ndarray, per_row: int) -> np.ndarray:
    """First stream bit of each row (int64)."""
    return np.concatenate(([0], np.cumsum(widths[:-1] * per_row))).astype(np.int64)


def _padded(raw: np.ndarray) -> np.ndarray:
    """``raw`` followed by 3 zero bytes (the compiled row loops read 3 bytes at a time)."""
    out = np.zeros(raw.size + 3, np.uint8)
    out[: raw.size] = raw
    return out


def pack_rows(codes: np.ndarray, qmin: np.ndarray, widths: np.ndarray, per_row: int) -> bytes:
    """Codes (rows x ``per_row``) as offsets ``code - qmin[row]`` (each in [0, 2**width)), row r
    at ``widths[r]`` bits, one row after the other, MSB first, zero-padded to a byte. Temporaries
    stay bounded: the compiled loop reads the codes in place, the numpy path works in blocks of
    rows (:func:`..bitpack.pack_varwidth_chunks`)."""
    widths = np.asarray(widths, np.int64)
    qmin = np.asarray(qmin, np.int64)
    rows = widths.size
    if rows == 0 or per_row == 0:
        return b""
    codes = np.asarray(codes).reshape(rows, per_row)
    if np.all(widths == widths[0]) and np.all(qmin == qmin[0]):
        return bitpack.pack_codes(codes, int(qmin[0]), int(widths[0]))
    f = kernels.fast(rows * per_row)
    if f is not None and codes.dtype.kind in "iu":
        out = bytearray((int(widths.sum()) * per_row + 7) // 8)
        f.pack_rows(np.ascontiguousarray(codes), widths, per_row, qmin, np.frombuffer(out, np.uint8))
        return out
    step = max(1, bitpack.VARWIDTH_CHUNK // per_row)
    return bitpack.pack_varwidth_chunks(
        ((codes[a:a + step].astype(np.int64) - qmin[a:a + step, None]).reshape(-1),
         np.repeat(widths[a:a + step], per_row)) for a in range(0, rows, step))


def unpack_rows(buf, widths: np.ndarray, per_row: int, qmin: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rows` plus each row's ``qmin``: int32 codes (rows x per_row).
    ``buf`` holds at least the packed bytes (the caller took them from the record)."""
    widths = np.asarray(widths, np.int64)
    qmin = np.asarray(qmin, np.int64)
    rows = widths.size
    total = int(widths.sum()) * per_row
    need = (total + 7) // 8
    if len(buf) < need:
        raise FormatError(f"packed codes need {need} bytes, only {len(buf)} left")
    raw = np.frombuffer(buf, np.uint8, count=need)
    out = np.empty((rows, per_row), np.int32)
    if rows == 0 or per_row == 0:
        return out
    if np.all(widths == widths[0]):
        vals = bitpack.unpack(raw, rows * per_row, int(widths[0])).reshape(rows, per_row)
        np.add(vals, qmin[:, None].astype(np.int32), out=out, casting="unsafe")
        return out
    f = kernels.fast(rows * per_row, receiver=True)
    if f is not None:
        f.unpack_rows(_padded(raw), widths, per_row, qmin, out)
        return out
    if per_row % 8:
        vals = bitpack.unpack_varwidth(raw, np.repeat(widths, per_row)).reshape(rows, per_row)
        np.add(vals, qmin[:, None].astype(np.int32), out=out, casting="unsafe")
        return out
    starts = _row_starts(widths, per_row) // 8
    for b in np.unique(widths):  # rows of one width, each starting on a byte boundary
        sel = np.nonzero(widths == b)[0]
        nbytes = per_row * int(b) // 8
        rows_b = np.lib.stride_tricks.sliding_window_view(raw, nbytes)[starts[sel]]  # row copies
        vals = bitpack.unpack(rows_b.reshape(-1), sel.size * per_row, int(b)).reshape(sel.size, per_row)
        out[sel] = np.add(vals, qmin[sel, None].astype(np.int32), dtype=np.int32)
    return out


def packed_values(w, params: dict, buf, shape: tuple[int, ...]) -> np.ndarray | None:
    """float32 values of an affine record with packed codes at one width (``w`` its wire spec,
    ``params`` its scales / zero points), equal to unpacking then dequantizing; None when the
    compiled loops do not apply (small, restricted, per-channel widths, no numba): the caller
    then takes the numpy path."""
    n = int(np.prod(shape, dtype=np.int64))
    f = kernels.fast(n, receiver=True)
    if f is None or w.restricted or w.channel_bits or n == 0:
        return None
    g = grain.grain_of(w)
    if g.kind == "tensor":
        rows, row_len, gl = 1, n, n
    else:
        length = int(shape[g.axis])
        if g.kind == "channel":
            rows, row_len, gl = length, n // length, n // length
        else:
            rows, row_len, gl = n // length, length, grain.group_len(length, g)
    scale = np.ascontiguousarray(params["scale"], np.float32).reshape(-1)
    zero = (np.zeros(scale.size, np.float32) if w.symmetric
            else np.ascontiguousarray(params["zero_point"], np.float32).reshape(-1))
    raw = np.frombuffer(buf, np.uint8, count=bitpack.packed_nbytes(n, w.bits))
    out = np.empty((rows, row_len), np.float32)
    f.dequant(raw, w.bits, np.int32(w.qmin), scale, zero, row_len, gl, out)
    return grain.from_stream_order(out.reshape(-1), tuple(shape), w)


def rows_values(w, params: dict, buf, shape: tuple[int, ...]) -> np.ndarray | None:
    """float32 values of an affine record with packed codes at per-channel widths (``w`` its
    wire spec), equal to unpacking then dequantizing; None when neither fused path applies
    (restricted, or rows not starting on byte boundaries without numba): the caller then takes
    the unpack-then-dequantize path."""
    n = int(np.prod(shape, dtype=np.int64))
    if w.restricted or not w.channel_bits or n == 0:
        return None
    rows = grain.n_rows(shape, w)
    per_row = n // rows
    f = kernels.fast(n, receiver=True)
    if f is None and per_row % 8:
        return None
    widths = w.row_bits(rows)
    qmin, _ = w.row_qrange(rows)
    scale = np.ascontiguousarray(params["scale"], np.float32).reshape(-1)
    need = (int(widths.sum()) * per_row + 7) // 8
    raw = np.frombuffer(buf, np.uint8, count=need)
    if f is None:
        zp = 0 if w.symmetric else np.asarray(params["zero_point"], np.int64).reshape(-1)
        out = _rows_values_numpy(raw, widths, (qmin - zp).astype(np.float32), scale, per_row)
    else:
        zero = (np.zeros(rows, np.float32) if w.symmetric
                else np.ascontiguousarray(params["zero_point"], np.float32).reshape(-1))
        out = np.empty((rows, per_row), np.float32)
        f.dequant_rows(_padded(raw), widths, qmin, scale, zero, out)
    return grain.from_stream_order(out.reshape(-1), tuple(shape), w)


#: Codes per block of rows on the numpy path (bounds its temporaries to ~1.3 MB).
ROWS_CHUNK = 1 << 18


def _rows_values_numpy(raw: np.ndarray, widths: np.ndarray, offset: np.ndarray, scale: np.ndarray,
                       per_row: int) -> np.ndarray:
    """float32 (rows x per_row) ``(v + offset[r]) * scale[r]`` of the packed offsets ``v`` of
    rows at their own widths, ``per_row`` a multiple of 8 (every row starts on a byte): the rows
    of one width are gathered and unpacked together, a block of rows at a time. ``offset`` is the
    row's qmin - zero point (an integer, so ``v + offset`` is the code minus the zero point,
    exact in float32, and the one multiply gives :meth:`AffineScheme.dequantize`'s value)."""
    rows = widths.size
    out = np.empty((rows, per_row), np.float32)
    starts = _row_starts(widths, per_row) // 8
    step = max(1, ROWS_CHUNK // per_row)
    for b in np.unique(widths):
        b = int(b)
        sel_b = np.flatnonzero(widths == b)
        window = np.lib.stride_tricks.sliding_window_view(raw, per_row * b // 8)
        for a in range(0, sel_b.size, step):
            sel = sel_b[a:a + step]
            vals = bitpack.unpack(window[starts[sel]].reshape(-1), sel.size * per_row, b)
            v = np.add(vals.reshape(sel.size, per_row), offset[sel, None], dtype=np.float32)
            v *= scale[sel, None]
            out[sel] = v
    return out

"""Compiled single passes of the affine sender (numba, the ``fast`` extra; large arrays only):
round-to-nearest quantization of block rows, and the error energy of quantized rows against
the original (what an encode's quality report needs, without building the dequantized copy).

Both repeat numpy's exact float32 operations (``x / s``, rint half to even, ``+ z``, clamp;
``(float32(code) - z) * s``), so the codes are identical to :func:`.affine.quantize_blocks`'s;
the energies are float64 sums in another order (a relative difference near 1e-12).
"""

from __future__ import annotations

import numpy as np

from ..format import kernels


def quantize_loop(blocks, scale, zero, qmin, qmax, out):
    """int32 ``clamp(rint(x / s) + z, qmin, qmax)`` of each row (all float32 per row)."""
    rows, m = blocks.shape
    for r in range(rows):
        s = scale[r]
        z = zero[r]
        lo = qmin[r]
        hi = qmax[r]
        for j in range(m):
            y = np.rint(blocks[r, j] / s) + z
            if y < lo:
                y = lo
            elif y > hi:
                y = hi
            out[r, j] = np.int32(y)


def error_loop(blocks, codes, scale, zero):
    """(sum x**2, sum (x - x_hat)**2, OR of the codes' differences from z) with
    ``x_hat = (float32(code) - z) * s`` per row, sums in float64 (four interleaved partial sums,
    so the additions pipeline). x_hat has a nonzero iff the OR is nonzero (s > 0)."""
    rows, m = blocks.shape
    e0 = e1 = e2 = e3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    nz = 0
    m4 = m - m % 4
    for r in range(rows):
        s = scale[r]
        z = zero[r]
        zi = np.int64(z)
        for j in range(0, m4, 4):
            x0 = np.float64(blocks[r, j])
            x1 = np.float64(blocks[r, j + 1])
            x2 = np.float64(blocks[r, j + 2])
            x3 = np.float64(blocks[r, j + 3])
            c0 = codes[r, j]
            c1 = codes[r, j + 1]
            c2 = codes[r, j + 2]
            c3 = codes[r, j + 3]
            nz |= (c0 - zi) | (c1 - zi) | (c2 - zi) | (c3 - zi)
            y0 = x0 - np.float64((np.float32(c0) - z) * s)
            y1 = x1 - np.float64((np.float32(c1) - z) * s)
            y2 = x2 - np.float64((np.float32(c2) - z) * s)
            y3 = x3 - np.float64((np.float32(c3) - z) * s)
            e0 += x0 * x0
            e1 += x1 * x1
            e2 += x2 * x2
            e3 += x3 * x3
            d0 += y0 * y0
            d1 += y1 * y1
            d2 += y2 * y2
            d3 += y3 * y3
        for j in range(m4, m):
            x0 = np.float64(blocks[r, j])
            c0 = codes[r, j]
            nz |= c0 - zi
            y0 = x0 - np.float64((np.float32(c0) - z) * s)
            e0 += x0 * x0
            d0 += y0 * y0
    return (e0 + e1) + (e2 + e3), (d0 + d1) + (d2 + d3), nz


_UNSET = object()
_FAST = _UNSET  # tests set None to force the numpy path


def fast(n: int):
    """(quantize, error) compiled for an array of n elements, or None (numpy path)."""
    global _FAST
    if kernels.fast(n) is None:
        return None
    if _FAST is _UNSET:
        import numba

        jit = numba.njit(cache=True, nogil=True)
        _FAST = (jit(quantize_loop), jit(error_loop))
    return _FAST

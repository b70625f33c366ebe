"""Range estimators: per block row, the clipping range (lo, hi) a uniform quantizer covers.

All functions take a 2-D float32 array of blocks (one row per scale) and return two float32
arrays of length rows. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError
from .spec import QuantSpec


def minmax(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row minimum and maximum (0 for empty rows)."""
    if blocks.shape[1] == 0:
        z = np.zeros(blocks.shape[0], np.float32)
        return z, z
    return blocks.min(axis=1).astype(np.float32), blocks.max(axis=1).astype(np.float32)


def percentile(blocks: np.ndarray, p: float, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Clip at the p-th percentile of |x| (symmetric) or of each tail (asymmetric)."""
    if blocks.shape[1] == 0:
        return minmax(blocks)
    if symmetric:
        a = np.percentile(np.abs(blocks), p, axis=1).astype(np.float32)
        return -a, a
    lo = np.percentile(blocks, 100.0 - p, axis=1).astype(np.float32)
    hi = np.percentile(blocks, p, axis=1).astype(np.float32)
    return lo, hi


def mse(blocks: np.ndarray, spec: QuantSpec, n_grid: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Shrink the min-max range by the factor in [0.02, 1] (log grid) minimising each row's squared error."""
    from .affine import params_from_range, quantize_blocks

    lo0, hi0 = minmax(blocks)
    best_err = np.full(blocks.shape[0], np.inf)
    best_lo, best_hi = lo0.copy(), hi0.copy()
    for alpha in np.geomspace(1.0, 0.02, n_grid).astype(np.float32):
        lo, hi = lo0 * alpha, hi0 * alpha
        scale, zp = params_from_range(lo, hi, spec)
        codes = quantize_blocks(blocks, scale, zp, spec, rng=None)
        err = ((codes - zp[:, None]).astype(np.float32) * scale[:, None] - blocks) ** 2
        err = err.sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_lo = np.where(better, lo, best_lo)
        best_hi = np.where(better, hi, best_hi)
    return best_lo, best_hi


def estimate(blocks: np.ndarray, spec: QuantSpec) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on ``spec.range_method``."""
    if spec.range_method == "minmax":
        return minmax(blocks)  # NaN / Inf propagate to the range; the caller checks it
    if not np.all(np.isfinite(blocks)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    if spec.range_method == "percentile":
        return percentile(blocks, spec.percentile, spec.symmetric)
    return mse(blocks, spec)

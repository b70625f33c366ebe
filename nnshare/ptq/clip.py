"""Weighted clipping search: the grid (scale and zero point per channel or group) minimising the
weighted squared rounding error ``sum_j a_j (w_j - Q(w_j))^2`` of each block, with ``a`` the
diagonal of the layer's input Hessian (Linear / Conv columns) or any per-element weight.

With ``a = diag(H)`` the objective is the output error ``dW H dW^T`` without its cross terms,
the part a clipping range can change. The search is the MSE range search of
:func:`nnshare.quant.ranges.mse` (one shrink factor for both ends over the same candidates)
followed, for asymmetric grids, by a refinement of each end alone; a candidate replaces the best
one only when strictly better, so the result is never worse on its objective than min-max or the
unweighted MSE range (with uniform weights it is the MSE range or better).
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantSpec, to_blocks
from ..quant.affine import params_from_range, quantize_blocks
from ..quant.ranges import minmax
from .weights import Grid, grid_from_range

SHRINK = np.geomspace(1.0, 0.02, 50).astype(np.float32)  # the candidates of ranges.mse
REFINE = np.linspace(0.8, 1.25, 19).astype(np.float32)  # one end alone, relative to the shared factor


def block_errors(blocks: np.ndarray, wts: np.ndarray, lo, hi, spec: QuantSpec) -> np.ndarray:
    """Per block row ``sum_j wts_j (x_j - Q(x_j))^2`` (float64) for the range (lo, hi)."""
    scale, zp = params_from_range(lo, hi, spec)
    codes = quantize_blocks(blocks, scale, zp, spec, rng=None)
    d = (codes - zp[:, None]).astype(np.float32) * scale[:, None] - blocks
    return (wts * d.astype(np.float64) ** 2).sum(axis=1)


def search_range(blocks: np.ndarray, wts: np.ndarray, spec: QuantSpec) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per block row minimising :func:`block_errors` over the candidate ranges."""
    lo0, hi0 = minmax(blocks)
    best = np.full(blocks.shape[0], np.inf)
    a_lo = np.ones(blocks.shape[0], np.float32)
    a_hi = np.ones(blocks.shape[0], np.float32)

    def consider(f_lo, f_hi):
        nonlocal best, a_lo, a_hi
        err = block_errors(blocks, wts, lo0 * f_lo, hi0 * f_hi, spec)
        better = err < best
        best = np.where(better, err, best)
        a_lo = np.where(better, f_lo, a_lo).astype(np.float32)
        a_hi = np.where(better, f_hi, a_hi).astype(np.float32)

    for a in SHRINK:
        consider(np.full_like(a_lo, a), np.full_like(a_hi, a))
    if not spec.symmetric:
        base = a_lo.copy()
        for f in REFINE:
            consider(np.minimum(base * f, 1.0), a_hi.copy())
        base = a_hi.copy()
        for f in REFINE:
            consider(a_lo.copy(), np.minimum(base * f, 1.0))
    return lo0 * a_lo, hi0 * a_hi


def clip_grid(w: np.ndarray, spec: QuantSpec, weight: np.ndarray | None = None) -> Grid:
    """The grid of ``w`` whose clipping ranges minimise the ``weight``-weighted squared error
    (``weight`` broadcastable to ``w.shape``, >= 0; None: uniform). For a Linear weight (out, in)
    with input Hessian H pass ``np.diag(H)[None, :]``."""
    w = np.asarray(w, np.float32)
    if not np.all(np.isfinite(w)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    if spec.scheme != "affine":
        raise SpecError(f"clipping search is for affine grids, got scheme {spec.scheme!r}")
    a = np.ones(w.shape) if weight is None else np.broadcast_to(np.asarray(weight, np.float64), w.shape)
    if not (np.all(np.isfinite(a)) and np.all(a >= 0)):
        raise SpecError("clipping weights must be finite and >= 0")
    blocks = to_blocks(w, spec)
    wts = to_blocks(np.ascontiguousarray(a, np.float32), spec).astype(np.float64)
    lo, hi = search_range(blocks, wts, spec)
    return grid_from_range(w, spec, lo, hi)

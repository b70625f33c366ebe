"""Scalar codebooks (sender side): Lloyd-Max / 1-D k-means, optionally weighted (Hessian or
Fisher weights), per tensor or per channel; nearest-level assignment.

A codebook quantizer sends K = 2^bits sorted levels per row (tensor or channel) and one b-bit
index per element; the receiver looks the index up: ``x_hat = levels[row, index]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..format.errors import SpecError
from ..format.spec import round_float
from . import densities

INITS = ("quantile", "gaussian", "laplacian", "uniform")
LEVEL_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class CodebookConfig:
    """``bits`` (1..8) per index; one codebook per ``"tensor"`` or ``"channel"`` (along ``axis``);
    Lloyd iterations from ``init`` (data quantiles, the Gaussian or Laplacian Lloyd-Max levels
    scaled to the data's mean and std, or a uniform grid over the data range); levels sent in
    ``levels_dtype``."""

    bits: int = 4
    granularity: str = "tensor"
    axis: int = 0
    init: str = "gaussian"
    iters: int = 200
    levels_dtype: str = "fp16"

    def __post_init__(self) -> None:
        b = self.bits
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not 1 <= b <= 8:
            raise SpecError(f"codebook bits must be an integer in 1..8, got {self.bits!r}")
        if self.granularity not in ("tensor", "channel"):
            raise SpecError(f"codebook granularity must be 'tensor' or 'channel', got {self.granularity!r}")
        if self.init not in INITS:
            raise SpecError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if isinstance(self.iters, bool) or not isinstance(self.iters, int | np.integer) or self.iters < 0:
            raise SpecError(f"iters must be an integer >= 0, got {self.iters!r}")
        if self.levels_dtype not in LEVEL_DTYPES:
            raise SpecError(
                f"levels_dtype must be one of {', '.join(LEVEL_DTYPES)}, got {self.levels_dtype!r}"
            )

    @property
    def k(self) -> int:
        """Number of levels."""
        return 2**self.bits


@cache
def _unit_levels(source: str, k: int) -> np.ndarray:
    return densities.lloyd_max(source, k, iters=2000, tol=1e-10)[0]


def init_levels(x: np.ndarray, k: int, init: str) -> np.ndarray:
    """K sorted starting levels for the 1-D data ``x``."""
    if init not in INITS:
        raise SpecError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if init in ("gaussian", "laplacian"):
        return float(x.mean()) + float(x.std()) * _unit_levels(init, k)
    if init == "uniform":
        lo, hi = float(x.min()), float(x.max())
        return lo + (np.arange(k) + 0.5) * (hi - lo) / k
    return np.quantile(x, (np.arange(k) + 0.5) / k)


def lloyd(
    x: np.ndarray, levels: np.ndarray, weights: np.ndarray | None = None, iters: int = 200, tol: float = 1e-9
) -> np.ndarray:
    """Weighted 1-D Lloyd (k-means) iterations from sorted ``levels``: thresholds at midpoints,
    levels at the weighted cell means (an empty cell keeps its level). Each pass lowers
    sum w (x - y)^2. Returns float64 levels, sorted. O(K log N) per pass after one sort."""
    xs = np.asarray(x, np.float64).reshape(-1)
    w = np.ones_like(xs) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w.shape != xs.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise SpecError("weights must be finite, non-negative and one per element")
    order = np.argsort(xs, kind="stable")
    xs, w = xs[order], w[order]
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cwx = np.concatenate([[0.0], np.cumsum(w * xs)])
    y = np.sort(np.asarray(levels, np.float64))
    span = max(float(xs[-1] - xs[0]), 1e-30) if xs.size else 1.0
    for _ in range(iters):
        cut = np.concatenate([[0], np.searchsorted(xs, (y[1:] + y[:-1]) / 2), [xs.size]])
        mass = cw[cut[1:]] - cw[cut[:-1]]
        new = np.where(mass > 0, (cwx[cut[1:]] - cwx[cut[:-1]]) / np.where(mass > 0, mass, 1), y)
        new = np.sort(new)
        moved = np.max(np.abs(new - y))
        y = new
        if moved <= tol * span:
            break
    return y


def assign(rows: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest level for every element: ``rows`` (R, N), sorted ``levels`` (R, K) ->
    int64 (R, N). Ties go to the lower level."""
    out = np.empty(rows.shape, np.int64)
    for r in range(rows.shape[0]):
        y = levels[r]
        out[r] = np.searchsorted((y[1:] + y[:-1]) / 2, rows[r], side="left")
    return out


def _rows(x: np.ndarray, cfg: CodebookConfig) -> np.ndarray:
    if cfg.granularity == "tensor":
        return x.reshape(1, -1)
    if x.ndim == 0 or not -x.ndim <= cfg.axis < x.ndim:
        raise SpecError(f"axis {cfg.axis} out of range for a tensor of shape {x.shape}")
    return np.moveaxis(x, cfg.axis, 0).reshape(x.shape[cfg.axis], -1)


def _unrows(rows: np.ndarray, shape: tuple[int, ...], cfg: CodebookConfig) -> np.ndarray:
    if cfg.granularity == "tensor":
        return rows.reshape(shape)
    ax = cfg.axis % len(shape)
    moved = (shape[ax],) + shape[:ax] + shape[ax + 1 :]
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), 0, ax))


def design(x, cfg: CodebookConfig, weights=None, levels=None) -> np.ndarray:
    """float32 codebooks (rows, K), rounded to ``cfg.levels_dtype`` and sorted. ``levels``
    (K,) or (rows, K) replaces the data-driven start (e.g. a compander's levels); ``weights``
    (x's shape) makes it weighted k-means."""
    arr = np.asarray(x, np.float64)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    rows = _rows(arr, cfg)
    wrows = None if weights is None else _rows(np.asarray(weights, np.float64).reshape(arr.shape), cfg)
    out = np.zeros((rows.shape[0], cfg.k))
    for r in range(rows.shape[0]):
        if rows.shape[1] == 0:
            continue
        start = init_levels(rows[r], cfg.k, cfg.init) if levels is None else np.atleast_2d(levels)[
            r % np.atleast_2d(levels).shape[0]]
        w = None if wrows is None else wrows[r]
        out[r] = lloyd(rows[r], start, w, cfg.iters)
    return np.sort(round_float(out.astype(np.float32), cfg.levels_dtype), axis=1)


def quantize_codebook(x, cfg: CodebookConfig, weights=None, levels=None) -> tuple[np.ndarray, dict]:
    """(int64 indices of x's shape, {"codebook": float32 (rows, K)}); see :func:`design`."""
    arr = np.asarray(x.detach().cpu().float().numpy() if hasattr(x, "detach") else x, np.float32)
    book = design(arr, cfg, weights, levels)
    idx = assign(_rows(arr, cfg).astype(np.float32), book)
    return _unrows(idx, arr.shape, cfg), {"codebook": book}


def dequantize_codebook(codes: np.ndarray, params: dict, cfg: CodebookConfig) -> np.ndarray:
    """float32 ``codebook[row, index]`` (the receiver's whole job)."""
    codes = np.asarray(codes)
    rows = _rows(codes, cfg)
    book = np.asarray(params["codebook"], np.float32)
    out = np.take_along_axis(book, rows.astype(np.int64), axis=1)
    return _unrows(out, codes.shape, cfg)

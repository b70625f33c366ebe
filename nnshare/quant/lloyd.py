"""Lloyd-Max codebooks (sender side of ``channel_codebook``, and the level designer for the
per-tensor ``codebook`` scheme): weighted 1-D Lloyd / k-means, started from data quantiles, a
uniform grid or the Gaussian / Laplacian Lloyd-Max levels scaled to the data.

- :func:`lloyd_levels` designs k levels for one 1-D array (optionally weighted: Hessian or
  Fisher diagonals make it the Hessian-weighted k-means of the weights);
- :class:`ChannelCodebookConfig` + :func:`quantize`: one codebook per output channel;
- per tensor: ``nnshare.quant.codebook.quantize(x, CodebookConfig(levels=k), levels=lloyd_levels(...))``.

The receiver looks each index up: ``x_hat = levels[channel, index]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..format import grain
from ..format.errors import SpecError
from ..format.grain import PerAxis
from ..format.schemes.channel_codebook import ChannelCodebookWire
from ..format.spec import QuantizedTensor, round_float
from . import densities
from .affine import as_float_array

INITS = ("quantile", "gaussian", "laplacian", "uniform")
LEVEL_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ChannelCodebookConfig:
    """One codebook per slice along ``axis``. On the wire: ``levels`` (2..256 per channel; codes
    packed at ceil(log2 levels) bits or entropy-coded), ``level_dtype``, ``axis``. Sender only:
    Lloyd ``iters`` from ``init`` (data quantiles, the Gaussian or Laplacian Lloyd-Max levels
    scaled to each channel's mean and std, or a uniform grid over its range)."""

    scheme: str = "channel_codebook"
    levels: int = 16
    axis: int = 0
    level_dtype: str = "fp16"
    init: str = "gaussian"
    iters: int = 100

    def __post_init__(self) -> None:
        if self.scheme != "channel_codebook":
            raise SpecError(
                f"ChannelCodebookConfig is the channel_codebook scheme's config, got {self.scheme!r}"
            )
        if self.init not in INITS:
            raise SpecError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if isinstance(self.iters, bool) or not isinstance(self.iters, int | np.integer) or self.iters < 0:
            raise SpecError(f"iters must be an integer >= 0, got {self.iters!r}")
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise SpecError(f"axis must be an integer, got {self.axis!r}")
        object.__setattr__(
            self, "_wire", ChannelCodebookWire(self.levels, self.level_dtype, PerAxis(self.axis))
        )

    @property
    def k(self) -> int:
        """Number of levels per channel."""
        return int(self.levels)

    @property
    def bits(self) -> int:
        """Bits of a packed index."""
        return self._wire.bits

    def wire(self, shape: tuple[int, ...] | None = None) -> ChannelCodebookWire:
        return self._wire if shape is None else self._wire.for_shape(tuple(shape))

    def at_bits(self, bits: int) -> ChannelCodebookConfig:
        """This config with 2**bits levels per channel."""
        return dataclasses.replace(self, levels=2 ** int(bits))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelCodebookConfig:
        bad = set(d) - {f.name for f in dataclasses.fields(cls)}
        if bad:
            raise SpecError(f"unknown ChannelCodebookConfig field(s): {', '.join(sorted(bad))}")
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        return {
            "levels": (2, 3, 4, 16, 256),
            "axis": (0, -1),
            "level_dtype": LEVEL_DTYPES,
            "init": INITS,
            "iters": (0, 5),
        }


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
    levels at the weighted cell means (an empty cell keeps its level; a value on a midpoint
    belongs to the lower level, as in :func:`assign`). Each pass lowers sum w (x - y)^2; stops
    when no level moves more than ``tol`` times the data's span. Returns float64 levels, sorted.
    O(K log N) per pass after one sort."""
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
        cut = np.concatenate([[0], np.searchsorted(xs, (y[1:] + y[:-1]) / 2, side="right"), [xs.size]])
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


def lloyd_levels(x, k: int, init: str = "gaussian", iters: int = 100, weights=None) -> np.ndarray:
    """k sorted float64 levels for the values of ``x``: :func:`init_levels` then :func:`lloyd`."""
    arr = np.asarray(x, np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    if arr.size == 0:
        return np.zeros(k)
    return lloyd(arr, init_levels(arr, k, init), weights, iters)


def quantize(x, config: ChannelCodebookConfig, *, weights=None, levels=None) -> QuantizedTensor:
    """Per-channel codebooks fitted to ``x`` (weighted by ``weights`` of x's shape, e.g. a
    Hessian diagonal), or the given ``levels`` ((k,) or (C, k)) as they are; levels are rounded
    to ``level_dtype`` and every value goes to its nearest rounded level."""
    arr = as_float_array(x)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    shape = tuple(int(s) for s in arr.shape)
    w = config.wire(shape)
    rows = grain.to_blocks(arr, w).astype(np.float64)
    wrows = None
    if weights is not None:
        wt = np.asarray(weights, np.float64)
        if wt.shape != arr.shape:
            raise SpecError(f"weights must have the tensor's shape {shape}, got {wt.shape}")
        wrows = grain.to_blocks(wt, w)
    k = config.k
    book = np.zeros((rows.shape[0], k))
    given = None if levels is None else np.atleast_2d(np.asarray(levels, np.float64))
    if given is not None and (given.shape[1] != k or given.shape[0] not in (1, rows.shape[0])):
        raise SpecError(f"levels must be ({k},) or ({rows.shape[0]}, {k})")
    for r in range(rows.shape[0]):
        if given is not None:
            book[r] = given[r % given.shape[0]]
        elif rows.shape[1]:
            start = init_levels(rows[r], k, config.init)
            book[r] = lloyd(rows[r], start, None if wrows is None else wrows[r], config.iters)
    if config.level_dtype == "fp16":
        book = np.clip(book, -65504.0, 65504.0)
    book = np.sort(round_float(book.astype(np.float32), config.level_dtype), axis=1)
    idx = assign(rows.astype(np.float32), book)
    codes = np.ascontiguousarray(grain.from_blocks(idx, shape, w)).astype(np.int32)
    return QuantizedTensor(codes=codes, params={"levels": book}, spec=w, shape=shape)

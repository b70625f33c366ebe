"""Multipoint quantization (sender side of scheme ``multipoint``): each row as a sum of scaled
low-bit vectors, extra points given greedily to the rows with the largest error.

Liu, Ye, Zhou, Liu, "Post-training Quantization with Multiple Points: Mixed Precision without
Mixed Precision" (AAAI 2021). For a row w (a whole tensor, or one output channel):

1. every row gets one point: (a, q) = argmin ||r - a q||^2 over a >= 0 and q on the b-bit grid,
   r the residual (w at first); for fixed a the best q is clamp(round(r / a)); a is found by a
   1-D search over candidate steps, each refined by least squares (a = <r, q> / <q, q>) and
   rounded to the precision it is sent in, so the residual is what the receiver will see;
2. then ``extra`` more points are handed out one at a time, each to the row whose current error
   is the largest (a row holds at most ``points``); the error is ``sum_j h_j e_j^2``, with
   ``h`` = 1 (weight error) or the diagonal of the layer's input second moment E[x_j^2] (the
   output error ``||(w - w_hat) x||^2`` under a diagonal approximation), passed as ``weights``.

The 1-bit grid is {-1, +1} (best a = weighted mean |r|, q = sign r), b >= 2 the restricted
symmetric grid [-L, L], L = 2^(b-1) - 1.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..format import grain
from ..format.errors import SpecError
from ..format.schemes.multipoint import MultipointWire, grid_half
from ..format.spec import FLOAT_DTYPES, QuantizedTensor, round_float
from .affine import as_float_array

_FP16_MAX = 65504.0
GRANULARITIES = ("tensor", "channel")


@dataclass(frozen=True)
class MultipointConfig:
    """How one tensor is multipoint-quantized.

    On the wire: ``bits`` (1..8 per code), ``points`` (most points per row, 1..16), the number of
    extra points ``round(extra x rows)`` (``extra``: extra points per row on average, 0 ..
    points - 1), ``granularity`` ("tensor" or "channel" on ``axis``), ``scale_dtype``. Sender
    only: ``candidates`` (steps tried per point, >= 1)."""

    scheme: str = "multipoint"
    bits: int = 4
    points: int = 2
    extra: float = 0.25
    granularity: str = "channel"
    axis: int = 0
    scale_dtype: str = "fp16"
    candidates: int = 16

    def __post_init__(self) -> None:
        if self.scheme != "multipoint":
            raise SpecError(f"MultipointConfig is the multipoint scheme's config, got {self.scheme!r}")
        if self.granularity not in GRANULARITIES:
            raise SpecError(
                f"granularity must be one of {', '.join(GRANULARITIES)}, got {self.granularity!r}"
            )
        if (
            isinstance(self.extra, bool)
            or not isinstance(self.extra, int | float)
            or not np.isfinite(self.extra)
        ):
            raise SpecError(f"extra must be a number, got {self.extra!r}")
        if isinstance(self.points, int) and not 0 <= self.extra <= max(0, self.points - 1):
            raise SpecError(f"extra must be in 0..points - 1 = {self.points - 1}, got {self.extra}")
        c = self.candidates
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 1:
            raise SpecError(f"candidates must be an integer >= 1, got {c!r}")
        g = grain.make(self.granularity, self.axis)
        object.__setattr__(self, "_wire", MultipointWire(self.bits, self.points, 0, g, self.scale_dtype))

    def wire(self, shape: tuple[int, ...] | None = None) -> MultipointWire:
        """What a record of ``shape`` carries (the extra points are counted for its rows)."""
        w = self._wire
        if shape is None:
            return w
        g = w.grain.on(tuple(shape))
        rows = grain.n_rows(tuple(shape), g)
        extra = min(rows * (w.points - 1), int(np.floor(self.extra * rows + 0.5)))
        return MultipointWire(w.bits, w.points, extra, g, w.scale_dtype)

    def at_bits(self, bits: int) -> MultipointConfig:
        return dataclasses.replace(self, bits=int(bits))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultipointConfig:
        bad = set(d) - {f.name for f in dataclasses.fields(cls)}
        if bad:
            raise SpecError(f"unknown MultipointConfig field(s): {', '.join(sorted(bad))}")
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        return {
            "bits": (1, 2, 3, 4, 8),
            "points": (1, 2, 3, 16),
            "extra": (0.0, 0.5, 1.0, 2.0),
            "granularity": GRANULARITIES,
            "axis": (0, -1),
            "scale_dtype": FLOAT_DTYPES,
            "candidates": (1, 16),
        }


def _round_scale(a: np.ndarray, dtype: str) -> np.ndarray:
    a = np.clip(
        np.nan_to_num(np.asarray(a, np.float64), nan=0.0), 0.0, _FP16_MAX if dtype == "fp16" else 3e38
    )
    return round_float(a.astype(np.float32), dtype).astype(np.float64)


def _grid(r: np.ndarray, a: np.ndarray, bits: int) -> np.ndarray:
    """Best grid values for residual rows r (R, d) at steps a (R, ...)."""
    if bits == 1:
        return np.where(r >= 0, 1.0, -1.0)
    lim = grid_half(bits)
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, np.clip(np.rint(r / safe), -lim, lim), 0.0)


def best_point(r: np.ndarray, h: np.ndarray, bits: int, dtype: str, candidates: int = 16):
    """One point for each residual row: (a (R,) float64 already rounded to ``dtype``, q (R, d)
    float64 grid values) minimising ``sum_j h_j (r_j - a q_j)^2`` over the candidates tried."""
    r = np.asarray(r, np.float64)
    if bits == 1:
        q = _grid(r, None, 1)
        a = (h * np.abs(r)).sum(1) / np.maximum(h.sum(1), 1e-300)
        return _round_scale(a, dtype), q
    lim = grid_half(bits)
    t = np.geomspace(0.05, 1.0, candidates) if candidates > 1 else np.ones(1)
    a = (np.abs(r).max(1, initial=0.0)[:, None] / lim) * t[None, :]  # (R, K)
    rr, hh = r[:, None, :], h[:, None, :]
    for _ in range(2):  # least-squares refits of the step for the chosen grid values
        q = _grid(rr, a[:, :, None], bits)
        den = (hh * q * q).sum(-1)
        a = np.where(den > 0, (hh * rr * q).sum(-1) / np.where(den > 0, den, 1.0), 0.0)
    a = _round_scale(a, dtype)
    q = _grid(rr, a[:, :, None], bits)
    err = (hh * (rr - a[:, :, None] * q) ** 2).sum(-1)
    k = np.argmin(err, axis=1)
    idx = np.arange(r.shape[0])
    return a[idx, k], q[idx, k]


def _points_for_rows(r, h, bits, dtype, candidates, chunk_elems=2_000_000):
    """:func:`best_point` over many rows, in chunks that bound memory."""
    rows = r.shape[0]
    step = max(1, chunk_elems // max(1, r.shape[1] * max(1, candidates)))
    parts = [
        best_point(r[i : i + step], h[i : i + step], bits, dtype, candidates) for i in range(0, rows, step)
    ]
    if not parts:
        return np.zeros(0), np.zeros((0, r.shape[1]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def quantize(x, config: MultipointConfig, *, weights=None) -> QuantizedTensor:
    """Multipoint-quantize ``x``; ``weights`` (>= 0, broadcastable to x, e.g. E[x_in^2] of a
    Linear layer as shape (1, in)) weight the error that picks where extra points go."""
    arr = as_float_array(x)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    shape = tuple(arr.shape)
    w = config.wire(shape)
    rows = grain.to_blocks(arr, w).astype(np.float64)
    if weights is None:
        h = np.ones_like(rows)
    else:
        hw = np.asarray(weights, np.float64)
        try:
            hw = np.broadcast_to(hw, shape)
        except ValueError:
            raise SpecError(f"weights of shape {hw.shape} do not broadcast to {shape}") from None
        if not np.all(np.isfinite(hw)) or np.any(hw < 0):
            raise SpecError("weights must be finite and >= 0")
        h = grain.to_blocks(np.ascontiguousarray(hw), w).astype(np.float64)
    n_rows, per_row = rows.shape if rows.ndim == 2 else (0, 0)
    a0, q0 = _points_for_rows(rows, h, w.bits, w.scale_dtype, config.candidates)
    pts: list[list[tuple[float, np.ndarray]]] = [[(a0[c], q0[c])] for c in range(n_rows)]
    resid = rows - a0[:, None] * q0
    heap = [(-float((h[c] * resid[c] ** 2).sum()), c) for c in range(n_rows) if w.points > 1]
    heapq.heapify(heap)
    for _ in range(w.extra):
        _, c = heapq.heappop(heap)
        a, q = best_point(resid[c : c + 1], h[c : c + 1], w.bits, w.scale_dtype, config.candidates)
        pts[c].append((a[0], q[0]))
        resid[c] -= a[0] * q[0]
        if len(pts[c]) < w.points:
            heapq.heappush(heap, (-float((h[c] * resid[c] ** 2).sum()), c))
    counts = np.array([len(p) for p in pts], np.int32)
    scale = np.array([a for p in pts for a, _ in p], np.float32)
    codes = np.array([q for p in pts for _, q in p], np.int32).reshape(len(scale), per_row)
    return QuantizedTensor(codes=codes, params={"scale": scale, "counts": counts}, spec=config, shape=shape)

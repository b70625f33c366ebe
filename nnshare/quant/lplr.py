"""LPLR: low-rank, low-precision factorization W ~ L R with both factors quantized
(Saha, Srivastava, Pilanci, NeurIPS 2023).

1. a Gaussian sketch S (d x m), S_ij ~ N(0, 1/m); 2. L = Q(W S); 3. R = Q'(pinv(L) W), fitted
after L was quantized, which absorbs much of L's error; optionally alternate (refit and
requantize L given R, then R given L). Q is the uniform quantizer of the LPLR reference: the
whole matrix mapped onto 2^B evenly spaced points between its minimum and maximum (both sent in
fp32). Storage: n m B + m d B' bits + 4 x 32 bits of ranges. Pure numpy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..format.errors import SpecError
from ..format.schemes.lplr import LPLRWire, matrix_shape
from ..format.spec import QuantizedTensor
from .affine import as_float_array


def minmax_quantize(a: np.ndarray, bits: int) -> np.ndarray:
    """``a`` rounded to the 2^bits evenly spaced points from its min to its max (float64)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise SpecError(f"bits must be an integer in 1..16, got {bits!r}")
    a = np.asarray(a, np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.full_like(a, lo)
    step = (hi - lo) / (2**bits - 1)
    return lo + np.rint((a - lo) / step) * step


@dataclass(frozen=True)
class LPLRResult:
    """The factors as the receiver rebuilds them and the storage they take."""

    left: np.ndarray  # (n, m)
    right: np.ndarray  # (m, d)
    bits: int

    @property
    def approx(self) -> np.ndarray:
        return self.left @ self.right


def lplr(
    w: np.ndarray, rank: int, bits_left: int, bits_right: int, *, iters: int = 0, seed: int = 0
) -> LPLRResult:
    """LPLR of the (n, d) matrix ``w`` with sketch size ``rank``; ``iters`` alternating refits."""
    w = np.asarray(w, np.float64)
    if w.ndim != 2 or not np.all(np.isfinite(w)):
        raise SpecError("LPLR needs a finite 2-D matrix")
    n, d = w.shape
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(n, d):
        raise SpecError(f"rank must be an integer in 1..{min(n, d)}, got {rank!r}")
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 1.0 / np.sqrt(rank), (d, rank))
    left = minmax_quantize(w @ s, bits_left)
    right = minmax_quantize(np.linalg.lstsq(left, w, rcond=None)[0], bits_right)
    for _ in range(iters):
        left = minmax_quantize(np.linalg.lstsq(right.T, w.T, rcond=None)[0].T, bits_left)
        right = minmax_quantize(np.linalg.lstsq(left, w, rcond=None)[0], bits_right)
    return LPLRResult(left, right, lplr_bits(n, d, rank, bits_left, bits_right))


def lplr_bits(n: int, d: int, rank: int, bits_left: int, bits_right: int) -> int:
    """Bits of an LPLR factorization: codes of both factors plus their four fp32 range ends."""
    return n * rank * bits_left + rank * d * bits_right + 4 * 32


def rank_for_budget(n: int, d: int, budget_bits: int, bits_left: int, bits_right: int) -> int:
    """Largest sketch size whose LPLR fits ``budget_bits`` (0 if none does)."""
    per_rank = n * bits_left + d * bits_right
    return int(max(0, min(min(n, d), (budget_bits - 128) // per_rank)))


def direct_svd_quant(w: np.ndarray, rank: int, bits_left: int, bits_right: int) -> LPLRResult:
    """The baseline of the LPLR paper: truncated SVD, U_k S_k and V_k^T quantized separately."""
    w = np.asarray(w, np.float64)
    u, sv, vt = np.linalg.svd(w, full_matrices=False)
    left = minmax_quantize(u[:, :rank] * sv[:rank], bits_left)
    right = minmax_quantize(vt[:rank], bits_right)
    return LPLRResult(left, right, lplr_bits(*w.shape, rank, bits_left, bits_right))


def factor_codes(a: np.ndarray, bits: int) -> tuple[np.ndarray, np.float32, np.float32]:
    """Min-max codes of ``a`` at ``bits`` bits with lo and step rounded to fp32, as sent:
    (int32 codes in [0, 2^bits - 1], lo, step); the receiver rebuilds ``lo + step * code``."""
    a = np.asarray(a, np.float64)
    lo = np.float32(a.min()) if a.size else np.float32(0)
    step = np.float32((float(a.max()) - float(lo)) / (2**bits - 1)) if a.size else np.float32(0)
    if not step > 0:
        return np.zeros(a.shape, np.int32), lo, np.float32(0)
    codes = np.clip(np.rint((a - float(lo)) / float(step)), 0, 2**bits - 1).astype(np.int32)
    return codes, lo, step


@dataclass(frozen=True)
class LPLRConfig:
    """LPLR of a tensor viewed as (shape[0], rest) (scheme ``lplr``). On the wire: ``rank``
    (sketch size m, 1..min(n, d)), ``bits_left`` and ``bits_right`` (1..16). Sender only:
    ``iters`` (alternating refits, >= 0) and ``seed`` (of the Gaussian sketch)."""

    scheme: str = "lplr"
    rank: int = 4
    bits_left: int = 4
    bits_right: int = 4
    iters: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scheme != "lplr":
            raise SpecError(f"LPLRConfig is the lplr scheme's config, got {self.scheme!r}")
        for name in ("iters", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise SpecError(f"{name} must be an integer >= 0, got {v!r}")
        object.__setattr__(self, "_wire", LPLRWire(self.rank, self.bits_left, self.bits_right))

    def wire(self, shape: tuple[int, ...] | None = None) -> LPLRWire:
        return self._wire if shape is None else self._wire.for_shape(tuple(shape))

    def at_bits(self, bits: int) -> LPLRConfig:
        return dataclasses.replace(self, bits_left=int(bits), bits_right=int(bits))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LPLRConfig:
        bad = set(d) - {f.name for f in dataclasses.fields(cls)}
        if bad:
            raise SpecError(f"unknown LPLRConfig field(s): {', '.join(sorted(bad))}")
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        return {
            "rank": (1, 2, 3),
            "bits_left": (1, 3, 8, 16),
            "bits_right": (1, 4, 8),
            "iters": (0, 1),
            "seed": (0, 5),
        }


def quantize(x, config: LPLRConfig) -> QuantizedTensor:
    """LPLR codes of ``x`` as (shape[0], rest): L = Q(W S), R = Q'(pinv(L) W) fitted to the L
    the receiver rebuilds, then ``iters`` alternating refits. Codes: A (n x m) then B (m x d)."""
    arr = as_float_array(x)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    shape = tuple(arr.shape)
    w = config.wire(shape)
    n, d = matrix_shape(shape)
    wm = arr.reshape(n, d).astype(np.float64)
    s = np.random.default_rng(config.seed).normal(0.0, 1.0 / np.sqrt(w.rank), (d, w.rank))

    def rebuild(codes, lo, step):
        return float(lo) + float(step) * codes.astype(np.float64)

    a, lo_l, st_l = factor_codes(wm @ s, w.bits_left)
    b, lo_r, st_r = factor_codes(np.linalg.lstsq(rebuild(a, lo_l, st_l), wm, rcond=None)[0], w.bits_right)
    for _ in range(config.iters):
        right = rebuild(b, lo_r, st_r)
        a, lo_l, st_l = factor_codes(np.linalg.lstsq(right.T, wm.T, rcond=None)[0].T, w.bits_left)
        b, lo_r, st_r = factor_codes(np.linalg.lstsq(rebuild(a, lo_l, st_l), wm, rcond=None)[0], w.bits_right)
    codes = np.concatenate([a.reshape(-1), b.reshape(-1)]).astype(np.int32)
    params = {"lo": np.array([lo_l, lo_r], np.float32), "step": np.array([st_l, st_r], np.float32)}
    return QuantizedTensor(codes=codes, params=params, spec=config, shape=shape)

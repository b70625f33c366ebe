"""LPLR: low-rank, low-precision factorization W ~ L R with both factors quantized
(Saha, Srivastava, Pilanci, NeurIPS 2023).

1. a Gaussian sketch S (d x m), S_ij ~ N(0, 1/m); 2. L = Q(W S); 3. R = Q'(pinv(L) W), fitted
after L was quantized, which absorbs much of L's error; optionally alternate (refit and
requantize L given R, then R given L). Q is the uniform quantizer of the LPLR reference: the
whole matrix mapped onto 2^B evenly spaced points between its minimum and maximum (both sent in
fp32). Storage: n m B + m d B' bits + 4 x 32 bits of ranges. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError


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

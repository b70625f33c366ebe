"""Sigma-delta and distributed noise-shaping quantization along the last axis, with the
condensation (decoding) operator, for random Fourier features (Zhang, Kannan, Cloninger, Saab).

Alphabet: K midrise levels ``delta * (k - (K - 1) / 2)``, k = 0..K-1 (1 bit: ``{-delta/2, +delta/2}``).

- r-th order sigma-delta (greedy): ``(Delta^r u)_i = z_i - q_i`` with
  ``q_i = Q(z_i + sum_{j=1..r} (-1)^(j-1) C(r, j) u_{i-j})``; the quantization error is pushed
  to high "frequencies" along the feature index.
- distributed noise shaping: blocks of ``lam`` features, u reset at each block,
  ``q_i = Q(z_i + beta u_{i-1})``, ``u_i = beta u_{i-1} + z_i - q_i``.
- condensation ``V = sqrt(2 / p) / |v| (I_p (x) v)``: p = m / lam block sums weighted by v,
  v = coefficients of (1 + t + ... + t^(lt - 1))^r (sigma-delta, lam = r (lt - 1) + 1) or
  (beta^-1, ..., beta^-lam) (noise shaping). The kernel estimate is ``<V q(x), V q(y)>``.

Pure numpy; ``codes`` are alphabet indices (uint8), so a b-bit alphabet costs b bits per feature.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np

from ..format.errors import SpecError
from ..format.schemes.sigma_delta import MODES, SigmaDeltaWire, condense_with, ns_filter, sd_filter
from ..format.spec import QuantizedTensor, round_scale
from .affine import as_float_array

__all__ = [
    "SigmaDeltaConfig",
    "alphabet",
    "condense",
    "noise_shaping",
    "ns_filter",
    "quantize",
    "random_fourier_features",
    "sd_filter",
    "sigma_delta",
]


def alphabet(bits: int, delta: float) -> np.ndarray:
    """The 2^bits midrise levels of step ``delta`` (float64, sorted)."""
    if not 1 <= int(bits) <= 8 or not delta > 0:
        raise SpecError(f"a sigma-delta alphabet needs 1..8 bits and delta > 0, got {bits}, {delta}")
    k = 2 ** int(bits)
    return delta * (np.arange(k) - (k - 1) / 2)


def _nearest(v: np.ndarray, levels: np.ndarray) -> np.ndarray:
    k = levels.size
    delta = levels[1] - levels[0] if k > 1 else 1.0
    return np.clip(np.rint(v / delta + (k - 1) / 2), 0, k - 1).astype(np.int64)


def sigma_delta(z: np.ndarray, order: int, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy order-``order`` sigma-delta of ``z`` (..., m) along the last axis.

    Returns (uint8 alphabet indices of z's shape, float64 state u of z's shape)."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise SpecError(f"sigma-delta order must be an integer >= 1, got {order!r}")
    z = np.asarray(z, np.float64)
    coef = np.array([(-1) ** (j - 1) * comb(order, j) for j in range(1, order + 1)], np.float64)
    flat = z.reshape(-1, z.shape[-1])
    u = np.zeros(flat.shape)
    idx = np.zeros(flat.shape, np.int64)
    hist = np.zeros((flat.shape[0], order))  # u_{i-1}, ..., u_{i-order}
    for i in range(flat.shape[1]):
        v = flat[:, i] + hist @ coef
        k = _nearest(v, levels)
        idx[:, i] = k
        u[:, i] = v - levels[k]
        hist = np.concatenate([u[:, i : i + 1], hist[:, :-1]], axis=1)
    return idx.reshape(z.shape).astype(np.uint8), u.reshape(z.shape)


def noise_shaping(z: np.ndarray, beta: float, lam: int, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distributed noise shaping of ``z`` (..., m), m a multiple of ``lam``, state reset per block.

    Returns (uint8 alphabet indices, float64 state u)."""
    z = np.asarray(z, np.float64)
    m = z.shape[-1]
    if isinstance(lam, bool) or not isinstance(lam, int) or lam < 1 or m % lam:
        raise SpecError(f"block length {lam!r} must divide the feature count {m}")
    if not beta > 0:
        raise SpecError(f"beta must be > 0, got {beta}")
    flat = z.reshape(-1, m)
    u = np.zeros(flat.shape)
    idx = np.zeros(flat.shape, np.int64)
    prev = np.zeros(flat.shape[0])
    for i in range(m):
        if i % lam == 0:
            prev = np.zeros(flat.shape[0])
        v = flat[:, i] + beta * prev
        k = _nearest(v, levels)
        idx[:, i] = k
        prev = v - levels[k]
        u[:, i] = prev
    return idx.reshape(z.shape).astype(np.uint8), u.reshape(z.shape)


def condense(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``V q`` for features q (..., m) with condensation vector v (float64, (..., m / len(v)))."""
    return condense_with(q, v)


def random_fourier_features(x: np.ndarray, m: int, sigma: float, seed: int = 0) -> np.ndarray:
    """z(x) = cos(x Omega + xi) in [-1, 1]^m for x (n, d); omega ~ N(0, sigma^-2 I), xi ~ U[0, 2 pi):
    (2 / m) <z(x), z(y)> estimates the Gaussian kernel exp(-|x - y|^2 / (2 sigma^2))."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    omega = rng.normal(0.0, 1.0 / sigma, (x.shape[1], m))
    xi = rng.uniform(0.0, 2 * np.pi, m)
    return np.cos(x @ omega + xi)


@dataclass(frozen=True)
class SigmaDeltaConfig:
    """Sigma-delta / noise-shaping quantization along the last axis (scheme ``sigma_delta``).

    On the wire: ``bits`` (K = 2^bits midrise levels), ``mode`` ("sigma_delta" of ``order``
    1..8, or "noise_shaping" with ``beta``), ``block`` (the condensation length; sigma-delta:
    order x (lt - 1) + 1; noise shaping: the state resets every ``block`` features, which must
    divide the last dimension), ``per_row`` (one delta per row instead of per tensor),
    ``scale_dtype``. Sender only: ``headroom`` (the outer levels sit at headroom x max|x|; the
    recursion stays stable with room to spare: 1-bit first order at 1, noise shaping at
    K / (K - beta))."""

    scheme: str = "sigma_delta"
    bits: int = 2
    mode: str = "sigma_delta"
    order: int = 1
    block: int = 8
    beta: float = 0.0
    per_row: bool = True
    scale_dtype: str = "fp16"
    headroom: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme != "sigma_delta":
            raise SpecError(f"SigmaDeltaConfig is the sigma_delta scheme's config, got {self.scheme!r}")
        h = self.headroom
        if isinstance(h, bool) or not isinstance(h, int | float) or not (np.isfinite(h) and h > 0):
            raise SpecError(f"headroom must be a number > 0, got {h!r}")
        wire = SigmaDeltaWire(
            self.bits, self.mode, self.order, self.block, float(self.beta), self.per_row, self.scale_dtype
        )
        object.__setattr__(self, "_wire", wire)

    def wire(self, shape: tuple[int, ...] | None = None) -> SigmaDeltaWire:
        return self._wire if shape is None else self._wire.for_shape(tuple(shape))

    def at_bits(self, bits: int) -> SigmaDeltaConfig:
        return dataclasses.replace(self, bits=int(bits))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SigmaDeltaConfig:
        bad = set(d) - {f.name for f in dataclasses.fields(cls)}
        if bad:
            raise SpecError(f"unknown SigmaDeltaConfig field(s): {', '.join(sorted(bad))}")
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        return {
            "bits": (1, 2, 4, 8),
            "mode": MODES,
            "order": (1, 2, 3),
            "block": (1, 2, 3, 7),
            "beta": (0.0, 1.25, 2.0),
            "per_row": (False, True),
            "scale_dtype": ("fp32", "fp16", "bf16"),
            "headroom": (1.0, 1.5),
        }


def quantize(x, config: SigmaDeltaConfig) -> QuantizedTensor:
    """Sigma-delta / noise-shaping codes of ``x`` along its last axis (a QuantizedTensor whose
    codes are level indices in [0, 2^bits - 1] and params ``delta``: (1,) or (rows,) float32)."""
    arr = as_float_array(x)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    shape = tuple(arr.shape)
    w = config.wire(shape)
    m = int(shape[-1])
    if w.mode == "noise_shaping" and m % w.block:
        raise SpecError(f"noise-shaping block {w.block} must divide the last dimension {m}")
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    z = arr.reshape(rows, m).astype(np.float64)
    amax = np.abs(z).max(axis=1, initial=0.0) if w.per_row else np.array([np.abs(z).max(initial=0.0)])
    delta = round_scale(2.0 * config.headroom * amax / (w.levels - 1), w.scale_dtype)
    d = delta.astype(np.float64)
    unit = alphabet(w.bits, 1.0)
    zn = z / (d[:, None] if w.per_row else d[0])
    if zn.size == 0:
        idx = np.zeros(zn.shape, np.uint8)
    elif w.mode == "sigma_delta":
        idx, _ = sigma_delta(zn, w.order, unit)
    else:
        idx, _ = noise_shaping(zn, float(w.beta), w.block, unit)
    codes = idx.astype(np.int32).reshape(shape)
    return QuantizedTensor(codes=codes, params={"delta": delta.astype(np.float32)}, spec=config, shape=shape)

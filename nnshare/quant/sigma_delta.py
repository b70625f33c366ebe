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

from math import comb

import numpy as np

from ..format.errors import SpecError


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


def sd_filter(order: int, lt: int) -> np.ndarray:
    """Condensation vector of order-r sigma-delta: coefficients of (1 + t + ... + t^(lt-1))^r,
    length r (lt - 1) + 1."""
    if order < 1 or lt < 1:
        raise SpecError("sigma-delta condensation needs order >= 1 and lt >= 1")
    v = np.ones(1)
    for _ in range(order):
        v = np.convolve(v, np.ones(lt))
    return v


def ns_filter(beta: float, lam: int) -> np.ndarray:
    """Condensation vector of noise shaping: (beta^-1, beta^-2, ..., beta^-lam)."""
    return float(beta) ** -np.arange(1, lam + 1, dtype=np.float64)


def condense(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``V q`` for features q (..., m): m / len(v) block sums weighted by v, scaled by
    sqrt(2 / p) / |v| (p the number of blocks). Returns float64 (..., p)."""
    q = np.asarray(q, np.float64)
    lam = v.size
    m = q.shape[-1]
    if m % lam:
        raise SpecError(f"the condensation length {lam} must divide the feature count {m}")
    p = m // lam
    blocks = q.reshape(q.shape[:-1] + (p, lam))
    return np.sqrt(2.0 / p) / np.linalg.norm(v) * (blocks @ v)


def random_fourier_features(x: np.ndarray, m: int, sigma: float, seed: int = 0) -> np.ndarray:
    """z(x) = cos(x Omega + xi) in [-1, 1]^m for x (n, d); omega ~ N(0, sigma^-2 I), xi ~ U[0, 2 pi):
    (2 / m) <z(x), z(y)> estimates the Gaussian kernel exp(-|x - y|^2 / (2 sigma^2))."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    omega = rng.normal(0.0, 1.0 / sigma, (x.shape[1], m))
    xi = rng.uniform(0.0, 2 * np.pi, m)
    return np.cos(x @ omega + xi)

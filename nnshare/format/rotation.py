"""Seeded random rotations of vectors of any length (no padding to a power of two). numpy only.

A rotation ``R(seed, d)`` is a product of randomized Walsh-Hadamard blocks: with m the largest
power of two <= d, the passes are ``H D_1`` on coordinates [0, m), ``H D_2`` on [d - m, d),
``H D_3`` on [0, m), ``H D_4`` on [d - m, d) (two passes when d = m), where H is the orthonormal
Hadamard matrix of size m and D_k a diagonal of random signs. Each pass is orthogonal, so R is,
and ``inverse(rotate(x)) == x`` up to float64 rounding. Signs come from splitmix64 over
(seed, pass, index) in integer arithmetic, so sender and receiver build the same R on every
machine and numpy version.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, stream: int, n: int) -> np.ndarray:
    """n pseudo-random uint64 words for (seed, stream): splitmix64 of a counter."""
    base = (int(seed) * 0x100000001B3 + int(stream) * 0x9E3779B1 + 1) & 0xFFFFFFFFFFFFFFFF
    with np.errstate(over="ignore"):
        z = np.uint64(base) + _GOLDEN * (np.arange(n, dtype=np.uint64) + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def random_signs(seed: int, stream: int, n: int) -> np.ndarray:
    """n random signs (+1.0 / -1.0, float64) for (seed, stream)."""
    return 1.0 - 2.0 * (splitmix64(seed, stream, n) >> np.uint64(63)).astype(np.float64)


def hadamard(x: np.ndarray) -> np.ndarray:
    """Orthonormal fast Walsh-Hadamard transform along the last axis (length a power of two)."""
    x = np.array(x, dtype=np.float64, copy=True)
    m = x.shape[-1]
    if m & (m - 1):
        raise ValueError(f"Hadamard length must be a power of two, got {m}")
    lead = x.shape[:-1]
    h = 1
    while h < m:
        v = x.reshape(*lead, m // (2 * h), 2, h)
        a = v[..., 0, :].copy()
        v[..., 0, :] += v[..., 1, :]
        v[..., 1, :] = a - v[..., 1, :]
        h *= 2
    return x * (1.0 / np.sqrt(m)) if m > 1 else x


def _passes(d: int) -> list[tuple[int, int]]:
    """(start, stream) of each Hadamard pass for length d."""
    if d <= 0:
        return []
    m = 1 << (d.bit_length() - 1)
    if m == d:
        return [(0, 0), (0, 1)]
    return [(0, 0), (d - m, 1), (0, 2), (d - m, 3)]


def block_size(d: int) -> int:
    """The Hadamard block size m used for length d (largest power of two <= d)."""
    return 1 << (d.bit_length() - 1) if d > 0 else 0


def rotate(x: np.ndarray, seed: int) -> np.ndarray:
    """R x for vectors along the last axis (float64 result); any length d >= 1."""
    y = np.array(x, dtype=np.float64, copy=True)
    d = y.shape[-1]
    m = block_size(d)
    for start, stream in _passes(d):
        sl = slice(start, start + m)
        y[..., sl] = hadamard(y[..., sl] * random_signs(seed, stream, m))
    return y


def inverse(y: np.ndarray, seed: int) -> np.ndarray:
    """R^T y: the inverse of :func:`rotate` (float64 result)."""
    x = np.array(y, dtype=np.float64, copy=True)
    d = x.shape[-1]
    m = block_size(d)
    for start, stream in reversed(_passes(d)):
        sl = slice(start, start + m)
        x[..., sl] = hadamard(x[..., sl]) * random_signs(seed, stream, m)
    return x

"""Gray-mapped square QAM (unit average energy) and max-log per-bit LLRs.

A square M-QAM is two Gray-coded sqrt(M)-PAMs (I then Q). Bits per symbol: first half on I,
second half on Q, most significant bit first. LLR sign: positive means bit 0.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..format.errors import SpecError


@cache
def pam(bits_per_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(levels (L,), bit labels (L, bits_per_dim) uint8) of a Gray PAM scaled for QAM Es = 1."""
    if bits_per_dim < 1:
        raise SpecError("PAM needs at least 1 bit per dimension")
    levels_n = 2**bits_per_dim
    idx = np.arange(levels_n)
    gray = idx ^ (idx >> 1)
    labels = ((gray[:, None] >> np.arange(bits_per_dim - 1, -1, -1)) & 1).astype(np.uint8)
    amp = (2 * idx - (levels_n - 1)).astype(np.float64)
    # QAM energy = 2 * mean(amp^2) = 2 (L^2 - 1) / 3
    amp /= np.sqrt(2 * (levels_n**2 - 1) / 3)
    return amp, labels


def modulate(bits: np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Complex symbols (n,) from bits (n * bits_per_symbol,)."""
    if bits_per_symbol % 2:
        raise SpecError("square QAM needs an even number of bits per symbol")
    m = bits_per_symbol // 2
    amp, _ = pam(m)
    b = np.asarray(bits, dtype=np.int64).reshape(-1, 2, m)
    gray = (b << np.arange(m - 1, -1, -1)).sum(-1)  # (n, 2) Gray labels
    idx = gray.copy()
    shift = gray >> 1
    while np.any(shift):
        idx ^= shift
        shift >>= 1
    return amp[idx[:, 0]] + 1j * amp[idx[:, 1]]


def llr(y: np.ndarray, noise_var: np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Max-log LLRs (n * bits_per_symbol,) for received symbols y (n,) with complex noise
    variance ``noise_var`` (scalar or (n,)): LLR = (min_{b=1} |y-x|^2 - min_{b=0} |y-x|^2) / var.
    """
    m = bits_per_symbol // 2
    amp, labels = pam(m)
    y = np.asarray(y)
    nv = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), y.shape)
    out = np.empty((y.size, 2, m))
    for d, comp in enumerate((y.real, y.imag)):
        dist = (comp[:, None] - amp[None, :]) ** 2  # (n, L)
        for j in range(m):
            one = labels[:, j] == 1
            out[:, d, j] = (dist[:, one].min(1) - dist[:, ~one].min(1)) / nv
    return out.reshape(-1)

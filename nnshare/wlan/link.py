"""Precoding with the fed-back V-hat and a per-tone MMSE receiver: post-MMSE SINR per stream.

Signal model per data tone: y = H W x + n, W = V_hat / sqrt(Nss) (total transmit power 1),
E|x_s|^2 = 1, n ~ CN(0, N0 I) with N0 = 10^(-SNR/10): SNR is the average received SNR per
receive antenna (unit average channel gain). The STA knows the effective channel G = H W.
Unbiased MMSE SINR: SINR_s = 1 / (N0 [(G^H G + N0 I)^-1]_ss) - 1.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError


def effective_channel(h: np.ndarray, v_hat: np.ndarray) -> np.ndarray:
    """G = H V_hat / sqrt(Nss): (..., Nr, Nss) from H (..., Nr, Nt) and V_hat (..., Nt, Nss)."""
    return (h @ v_hat) / np.sqrt(v_hat.shape[-1])


def mmse_sinr(g: np.ndarray, snr_db) -> np.ndarray:
    """Post-MMSE SINR (linear) per stream, (..., Nss), for effective channels g (..., Nr, Nss).

    ``snr_db`` broadcasts against g's leading axes.
    """
    n0 = 10.0 ** (-np.asarray(snr_db, dtype=np.float64) / 10.0)
    gram = g.conj().swapaxes(-1, -2) @ g
    nss = gram.shape[-1]
    n0 = np.asarray(n0)[..., None]
    if nss == 1:
        return (gram[..., 0, 0].real / n0[..., 0])[..., None]
    if nss == 2:
        a = gram[..., 0, 0].real + n0[..., 0]
        d = gram[..., 1, 1].real + n0[..., 0]
        det = a * d - np.abs(gram[..., 0, 1]) ** 2
        inv_diag = np.stack([d / det, a / det], axis=-1)
    elif nss > 2:
        inv = np.linalg.inv(gram + n0[..., None] * np.eye(nss))
        inv_diag = np.diagonal(inv, axis1=-2, axis2=-1).real
    else:
        raise SpecError("need at least one stream")
    return np.maximum(1.0 / (n0 * inv_diag) - 1.0, 1e-12)

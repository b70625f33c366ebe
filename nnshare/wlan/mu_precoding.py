"""Downlink MU-MIMO precoding from fed-back CSI and the per-user SINR it gives.

Signal model per data tone: y_u = h_u W x + n_u for U single-antenna users, h_u (1 x Nt) the
true channel row, W = [w_1 .. w_U] with unit-norm columns, E|x_u|^2 = 1 / U (total transmit
power 1, equal per user), n_u ~ CN(0, N0), N0 = 10^(-SNR/10): SNR is the average received SNR
per receive antenna (unit average channel gain), as in :mod:`.link`. Each station knows its own
effective gain h_u w_u (beamformed LTFs) and sees the other users' streams as noise:

    SINR_u = |h_u w_u|^2 / U / (N0 + sum_{j != u} |h_u w_j|^2 / U).

The AP builds W from its estimate of the rows, h_hat_u = sqrt(snr_u) v_hat_u^H (the fed-back
steering vector scaled by the fed-back per-tone SNR, noise normalised to 1):
ZF  W ~ H_hat^H (H_hat H_hat^H)^-1  (directions only: row scaling does not change them);
MMSE (regularised ZF) W ~ H_hat^H (H_hat H_hat^H + U I)^-1, columns normalised.
Shapes: H (..., U, Nt); W (..., Nt, U); SINR (..., U).
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError

PRECODERS = ("zf", "mmse")


def ap_channel(v_hat: np.ndarray, snr_lin: np.ndarray) -> np.ndarray:
    """AP's channel estimate H_hat (..., U, Nt) from steering vectors v_hat (..., U, Nt, 1) and
    per-tone linear SNRs (..., U) (noise normalised to 1)."""
    return np.sqrt(np.asarray(snr_lin))[..., None] * v_hat[..., 0].conj()


def precoder(h_hat: np.ndarray, method: str = "zf") -> np.ndarray:
    """Unit-norm-column precoder W (..., Nt, U) from H_hat (..., U, Nt) (rows in SNR units)."""
    if method not in PRECODERS:
        raise SpecError(f"precoder must be one of {', '.join(PRECODERS)}, got {method!r}")
    u = h_hat.shape[-2]
    if u > h_hat.shape[-1]:
        raise SpecError(f"{u} users need at least {u} AP antennas, got {h_hat.shape[-1]}")
    hh = h_hat.conj().swapaxes(-1, -2)
    gram = h_hat @ hh
    if method == "mmse":
        gram = gram + u * np.eye(u)
    w = hh @ np.linalg.inv(gram)
    return w / np.maximum(np.linalg.norm(w, axis=-2, keepdims=True), 1e-300)


def mu_sinr(h: np.ndarray, w: np.ndarray, snr_db) -> np.ndarray:
    """Per-user SINR (linear) (..., U) on true channels h (..., U, Nt) with precoder w (..., Nt, U).

    ``snr_db`` broadcasts against the leading axes."""
    n0 = np.asarray(10.0 ** (-np.asarray(snr_db, dtype=np.float64) / 10.0))[..., None]
    u = h.shape[-2]
    p = np.abs(h @ w) ** 2 / u  # (..., U, U): row = receiving user, column = stream
    sig = np.diagonal(p, axis1=-2, axis2=-1)
    interf = p.sum(-1) - sig
    return np.maximum(sig / (n0 + interf), 1e-12)


def zf_interference_free_sinr(h: np.ndarray, snr_db) -> np.ndarray:
    """Analytic ZF SINR with perfect CSI (..., U): 1 / (U N0 [(H H^H)^-1]_uu), no interference."""
    n0 = np.asarray(10.0 ** (-np.asarray(snr_db, dtype=np.float64) / 10.0))[..., None]
    inv = np.linalg.inv(h @ h.conj().swapaxes(-1, -2))
    return 1.0 / (h.shape[-2] * n0 * np.diagonal(inv, axis1=-2, axis2=-1).real)

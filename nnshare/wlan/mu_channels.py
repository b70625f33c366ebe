"""Downlink MU-MIMO channels: one TGn cluster model per station with TGac per-user angle offsets.

TGac (IEEE 802.11-09/0308r12, multi-user extension) keeps the TGn cluster tables and gives each
user its own random offsets on every cluster's mean angles, so users share the delay profile and
angular spreads but not the directions: AoD offsets uniform in +-``aod_offset_deg`` (30 deg) and
AoA offsets uniform in +-``aoa_offset_deg`` (180 deg), drawn per channel, user and cluster. (The
offset ranges are quoted from the TGac model as recalled, not re-verified here; both are
parameters.) With one antenna per station the AoA offsets do not change the channel.

Each station's taps are independent Rayleigh with Kronecker correlation R_rx^{1/2} G R_tx^{1/2,T}
of lambda/2 ULAs under the truncated Laplacian PAS (as :mod:`.channels`), block fading, evaluated
at the exact tone frequencies. Normalisation: E|H_k[u, r, t]|^2 = 1.
Shapes: H is (n_channels, n_tones, n_users, Nr, Nt), complex128.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..format.errors import SpecError
from .channels import MODEL_B, MODEL_D, tone_frequencies

AOD_OFFSET_DEG = 30.0
AOA_OFFSET_DEG = 180.0
_PAS_POINTS = 2048
_TABLE_STEP_DEG = 0.5
_TABLE_SIZE = 720  # table rows - 1: 360 deg / step


@cache
def _lag_table(n: int, spread_deg: float) -> np.ndarray:
    """r_d(mean) for lags d = 0..n-1 on means 0, 0.5, .., 360 deg: (721, n) complex."""
    phi = np.linspace(-np.pi, np.pi, _PAS_POINTS + 1)[:-1]
    w = np.exp(-np.sqrt(2.0) * np.abs(phi) / np.deg2rad(spread_deg))
    w /= w.sum()
    means = np.deg2rad(np.arange(_TABLE_SIZE + 1) * _TABLE_STEP_DEG)
    e = np.exp(1j * np.pi * np.sin(phi[None, :] + means[:, None]))  # (M, A)
    out = np.empty((means.size, n), np.complex128)
    pw = np.ones_like(e)
    for k in range(n):
        out[:, k] = pw @ w
        pw = pw * e
    return out


def ula_correlations(n: int, means_deg: np.ndarray, spread_deg: float) -> np.ndarray:
    """Spatial correlations (..., n, n) of a lambda/2 ULA under a truncated Laplacian PAS of
    angular spread ``spread_deg`` around each mean in ``means_deg`` (...), in degrees.

    R[m, l] = E exp(j pi (m - l) sin phi) with PAS(phi) ~ exp(-sqrt(2) |phi - mean| / spread)
    on mean +- 180 deg (as ``channels.ula_correlation``), from a table over the mean angle in
    0.5 deg steps, interpolated linearly (error below 1e-3).
    """
    means = np.asarray(means_deg, dtype=np.float64)
    table = _lag_table(n, float(spread_deg))
    pos = np.mod(means.reshape(-1), 360.0) / _TABLE_STEP_DEG
    i = np.minimum(pos.astype(np.int64), _TABLE_SIZE - 1)
    t = (pos - i)[:, None]
    r_d = (1 - t) * table[i] + t * table[i + 1]  # (B, n)
    d = np.arange(n)
    diff = d[:, None] - d[None, :]
    r = np.where(diff >= 0, r_d[:, np.abs(diff)], r_d[:, np.abs(diff)].conj())
    return r.reshape(means.shape + (n, n))


def _sqrtm_psd(r: np.ndarray) -> np.ndarray:
    w, u = np.linalg.eigh(r)
    return (u * np.sqrt(np.clip(w, 0, None))[..., None, :]) @ u.conj().swapaxes(-1, -2)


def generate_mu(
    n: int,
    n_users: int,
    model: str = "D",
    *,
    nt: int = 4,
    nr: int = 1,
    tones: np.ndarray | None = None,
    aod_offset_deg: float = AOD_OFFSET_DEG,
    aoa_offset_deg: float = AOA_OFFSET_DEG,
    rng: np.random.Generator | int = 0,
) -> np.ndarray:
    """``n`` drops of ``n_users`` stations: H (n, n_tones, n_users, nr, nt) of TGn ``model``
    ("D" or "B") with TGac per-user angle offsets (0 gives every user the TGn angles)."""
    if model not in ("D", "B"):
        raise SpecError(f"MU-MIMO channel model must be 'D' or 'B', got {model!r}")
    if n < 1 or n_users < 1 or nt < 1 or nr < 1:
        raise SpecError("need at least one drop, one user and one antenna at each side")
    if aod_offset_deg < 0 or aoa_offset_deg < 0:
        raise SpecError("angle offset ranges must be >= 0 degrees")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    cm = MODEL_D if model == "D" else MODEL_B
    d, p, cl = cm.taps()
    f = tone_frequencies(tones)
    n_cl = len(cm.clusters)
    off_d = rng.uniform(-aod_offset_deg, aod_offset_deg, (n, n_users, n_cl))
    off_a = rng.uniform(-aoa_offset_deg, aoa_offset_deg, (n, n_users, n_cl))
    g = rng.standard_normal((n, n_users, d.size, nr, nt)) + 1j * rng.standard_normal(
        (n, n_users, d.size, nr, nt)
    )
    g *= np.sqrt(0.5)
    taps = np.empty_like(g)
    for ci, c in enumerate(cm.clusters):
        tx = _sqrtm_psd(ula_correlations(nt, c.aod + off_d[..., ci], c.as_tx))  # (n, U, nt, nt)
        sel = cl == ci
        taps[:, :, sel] = g[:, :, sel] @ tx.swapaxes(-1, -2)[:, :, None]
        if nr > 1:
            rx = _sqrtm_psd(ula_correlations(nr, c.aoa + off_a[..., ci], c.as_rx))  # (n, U, nr, nr)
            taps[:, :, sel] = rx[:, :, None] @ taps[:, :, sel]
    taps *= np.sqrt(p)[None, None, :, None, None]
    phase = np.exp(-2j * np.pi * f[:, None] * d[None, :])  # (K, P)
    return np.einsum("kp,nuprt->nkurt", phase, taps)

"""TGax PHY abstraction: RBIR effective-SINR mapping onto the AWGN PER tables.

RBIR(gamma) = I_QAM(gamma) / log2(M), with I_QAM the coded-modulation mutual information of
Gray square M-QAM over AWGN at SNR gamma (two PAMs; Gauss-Hermite quadrature, computed here).
SINR_eff = RBIR^-1( mean over data tones and streams of RBIR(SINR_{k,s}) ); the packet error
rate is the AWGN table's PER at SINR_eff (packet = the 1000-byte reference, whole codewords).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .mcs import mcs
from .per_tables import table

GRID_DB = np.arange(-20.0, 60.0001, 0.1)


@cache
def rbir_curve(bits_per_symbol: int) -> np.ndarray:
    """RBIR on ``GRID_DB`` for square QAM with ``bits_per_symbol`` bits (monotone, in [0, 1])."""
    m = bits_per_symbol // 2
    levels = 2**m
    amp = (2 * np.arange(levels) - (levels - 1)) / np.sqrt(2 * (levels**2 - 1) / 3)
    x, w = np.polynomial.hermite.hermgauss(32)
    snr = 10.0 ** (GRID_DB / 10.0)
    sigma = np.sqrt(0.5 / snr)  # per-dimension noise std for Es = 1
    n = np.sqrt(2.0) * sigma[:, None] * x[None, :]  # (G, Q)
    diff = amp[:, None] - amp[None, :]  # (i, j)
    # E_n log2 sum_j exp(-((d_ij + n)^2 - n^2) / (2 sigma^2))
    arg = -((diff[None, :, :, None] + n[:, None, None, :]) ** 2 - n[:, None, None, :] ** 2)
    arg = arg / (2 * sigma[:, None, None, None] ** 2)
    mx = arg.max(axis=2, keepdims=True)
    lse = (mx[:, :, 0, :] + np.log(np.exp(arg - mx).sum(axis=2))) / np.log(2)  # (G, i, Q)
    expect = (lse * w[None, None, :]).sum(-1) / np.sqrt(np.pi)  # (G, i)
    i_pam = m - expect.mean(-1)
    r = np.clip(2 * i_pam / bits_per_symbol, 0.0, 1.0)
    return np.maximum.accumulate(r)


def rbir(sinr_db, bits_per_symbol: int) -> np.ndarray:
    """RBIR of SINR values given in dB (any shape); linear interpolation on the uniform grid."""
    curve = rbir_curve(bits_per_symbol)
    step = GRID_DB[1] - GRID_DB[0]
    pos = np.clip((np.asarray(sinr_db, dtype=np.float64) - GRID_DB[0]) / step, 0, curve.size - 1)
    i = np.minimum(pos.astype(np.int64), curve.size - 2)
    frac = pos - i
    return curve[i] + frac * (curve[i + 1] - curve[i])


def rbir_inverse(r, bits_per_symbol: int) -> np.ndarray:
    """SINR (dB) whose RBIR is ``r``."""
    curve = rbir_curve(bits_per_symbol)
    # strictly increasing part only
    keep = np.concatenate([[True], np.diff(curve) > 1e-12])
    return np.interp(r, curve[keep], GRID_DB[keep])


def effective_sinr_db(sinr: np.ndarray, mcs_index: int, axes=(-2, -1)) -> np.ndarray:
    """Effective SINR (dB) of linear per-tone/per-stream SINRs, averaging RBIR over ``axes``."""
    b = mcs(mcs_index).bits_per_symbol
    r = rbir(10 * np.log10(sinr), b).mean(axis=axes)
    return rbir_inverse(r, b)


def packet_error_rate(
    sinr: np.ndarray, mcs_index: int, axes=(-2, -1), packet_bytes: int | None = None
) -> np.ndarray:
    """PER per packet from per-tone/per-stream linear SINRs (tones and streams on ``axes``), for
    packets of ``packet_bytes`` (default the 1000-byte reference; 1458 for TGax calibration)."""
    cw = None if packet_bytes is None else mcs(mcs_index).codewords_for(packet_bytes)
    return table(mcs_index).per_at(effective_sinr_db(sinr, mcs_index, axes), cw)

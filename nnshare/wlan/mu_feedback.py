"""The standard's MU compressed beamforming feedback for single-antenna stations (4x1 V).

An HE MU report (Feedback Type MU) carries, per station, the Givens angles of V (Nt x Nc) on the
Ns tones of the grouping Ng with the MU codebooks (bphi, bpsi) = (7, 5) or (9, 7), the average
SNR of each stream (8 bits, 0.25 dB steps from -10 to 53.75 dB) and, in the MU Exclusive
Beamforming Report, a delta SNR per reported tone and stream (4 bits, 1 dB steps, -8..7 dB
around the average; the same Ns tones, as in ns-3's ``HeMuExclusiveBfReport``). Bits:

    Ns * (Na / 2) * (bphi + bpsi) + 8 * Nc + 4 * Nc * Ns        (MIMO Control field not counted)

The AP interpolates V (:func:`.beamforming.interpolate`) and the SNR (linearly in dB) to the data
tones. A scheme maps what the STA measured on the Ng = 4 grid — V (n, 64, U, Nt, 1) and linear
per-tone SNR (n, 64, U) — to the AP's V-hat (n, 234, U, Nt, 1) and SNR (n, 234, U).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import beamforming as bf
from .ofdm import data_tones, feedback_tones, tone_positions

MU_CODEBOOKS = ((7, 5), (9, 7))
AVG_SNR_BITS = 8
DELTA_SNR_BITS = 4

MuScheme = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_GRID4 = feedback_tones(4)
_GRID16 = feedback_tones(16)
_POS16 = tone_positions(_GRID16, _GRID4)
_DATA = data_tones()


def mu_report_bits(ns: int, nt: int = 4, nc: int = 1, bphi: int = 9, bpsi: int = 7) -> int:
    """Bits of one station's MU compressed beamforming report (angles, average SNR, delta SNR)."""
    return ns * (bf.n_angles(nt, nc) // 2) * (bphi + bpsi) + AVG_SNR_BITS * nc + DELTA_SNR_BITS * nc * ns


def quantize_avg_snr(snr_db: np.ndarray) -> np.ndarray:
    """The 8-bit Average SNR field's value (dB): 0.25 dB steps, clipped to [-10, 53.75] dB."""
    code = np.clip(np.round((np.asarray(snr_db) - 22.0) * 4.0), -128, 127)
    return 22.0 + code / 4.0


def quantize_delta_snr(snr_db: np.ndarray, avg_db: np.ndarray) -> np.ndarray:
    """4-bit delta SNR (dB) of each tone against the quantized average: 1 dB steps in [-8, 7]."""
    return np.clip(np.round(np.asarray(snr_db) - avg_db), -8, 7)


def snr_report(snr_lin: np.ndarray, tone_axis: int = 1) -> np.ndarray:
    """Per-tone SNR (dB) the AP rebuilds from the average SNR and the delta SNRs; the average is
    10 log10 of the mean linear SNR over the reported tones."""
    avg = quantize_avg_snr(10 * np.log10(np.mean(snr_lin, axis=tone_axis, keepdims=True)))
    return avg + quantize_delta_snr(10 * np.log10(snr_lin), avg)


def _interp_tones(x: np.ndarray, grid: np.ndarray, tones: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 1 from ``grid`` tones to ``tones`` (nearest outside)."""
    pos = np.clip(np.searchsorted(grid, tones, side="right") - 1, 0, grid.size - 2)
    t = np.clip((tones - grid[pos]) / (grid[pos + 1] - grid[pos]), 0.0, 1.0)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (1 - t).reshape(shape) * x[:, pos] + t.reshape(shape) * x[:, pos + 1]


def to_data_tones(
    v_grid: np.ndarray, snr_db_grid: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AP side: V (n, Kg, U, Nt, 1) and SNR (dB, (n, Kg, U)) on ``grid`` -> (V-hat, linear SNR)
    on the 234 data tones (the same interpolation for every scheme)."""
    v = bf.interpolate(np.moveaxis(v_grid, 1, 2), grid, _DATA)  # tone axis must be -3
    return np.moveaxis(v, 2, 1), snr_to_data_tones(snr_db_grid, grid)


def snr_to_data_tones(snr_db_grid: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """AP side: reported SNR (dB, (n, Kg, U)) on ``grid`` -> linear SNR on the 234 data tones."""
    return 10.0 ** (_interp_tones(snr_db_grid, grid, _DATA) / 10.0)


def givens_mu_scheme(bphi: int, bpsi: int, ng: int) -> MuScheme:
    """The standard's MU report with (bphi, bpsi) at grouping ``ng`` (4 or 16)."""

    def run(v4: np.ndarray, snr4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, s, grid = (v4, snr4, _GRID4) if ng == 4 else (v4[:, _POS16], snr4[:, _POS16], _GRID16)
        return to_data_tones(bf.givens_feedback(v, bphi, bpsi), snr_report(s), grid)

    return run


def scheme_name(bphi: int, bpsi: int, ng: int) -> str:
    """Row label of a Givens MU scheme, e.g. 'MU (9,7) Ng=4'."""
    return f"MU ({bphi},{bpsi}) Ng={ng}"


def report_bits(name: str, nt: int = 4) -> int:
    """Bits per station per 20 MHz sounding of a Givens MU scheme named by :func:`scheme_name`."""
    cb, ng = name[3:].split(" Ng=")
    bphi, bpsi = (int(x) for x in cb.strip("()").split(","))
    return mu_report_bits(feedback_tones(int(ng)).size, nt, 1, bphi, bpsi)

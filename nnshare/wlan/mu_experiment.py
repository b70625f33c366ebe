"""The MU-MIMO link experiment: U single-antenna stations on a 4-antenna AP, TGn model D with
TGac per-user offsets, feedback per station, ZF or MMSE precoding, per-user SINR -> PER through
the RBIR abstraction, SNR at 10 % PER and sum goodput.

Sounding and data see the same channel (block fading); the sounding SNR equals the data SNR and
one unit-variance noise draw per drop, scaled with the SNR, is shared by all schemes (common
random numbers). PER is averaged over drops and users (one 1000-byte reference packet per user).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from ..link.phy import Phy
from . import abstraction
from . import beamforming as bf
from .experiment import MCS_LIST, Curves
from .mu_autoencoder import feedback as ae_feedback
from .mu_autoencoder import to_features
from .mu_channels import generate_mu
from .mu_feedback import MuScheme, to_data_tones
from .mu_precoding import ap_channel, mu_sinr, precoder
from .ofdm import data_tones, feedback_tones, ru242_tones, tone_positions

IDEAL = "ideal"

_GRID4 = feedback_tones(4)
_GRID16 = feedback_tones(16)


@dataclass(frozen=True, eq=False)
class MuTestSet:
    """Drops of U stations: channels on the data tones and on the Ng = 4 grid, sounding noise."""

    h_data: np.ndarray  # (n, 234, U, Nt)
    h_fb: np.ndarray  # (n, 64, U, Nt)
    noise_fb: np.ndarray  # (n, 64, U, Nt) CN(0, 1)

    @property
    def n_users(self) -> int:
        return self.h_data.shape[2]

    def sounding(self, snr_db: float | None) -> tuple[np.ndarray, np.ndarray]:
        """What each STA measures on the 64 feedback tones: V (n, 64, U, 4, 1) and linear SNR
        (n, 64, U) = |h_est|^2 / N0 of the noisy LS estimate (None: perfect CSI at 100 dB)."""
        s = 100.0 if snr_db is None else float(snr_db)
        h = self.h_fb if snr_db is None else bf.noisy_estimate(self.h_fb, s, self.noise_fb)
        v = bf.svd_v(h[..., None, :], 1)
        return v, np.sum(np.abs(h) ** 2, axis=-1) * 10.0 ** (s / 10.0)


def make_test_set(n: int, n_users: int = 2, model: str = "D", seed: int = 1, **offsets) -> MuTestSet:
    """``n`` drops of ``n_users`` stations on all RU242 tones, split into data and feedback tones."""
    rng = np.random.default_rng(seed)
    tones = ru242_tones()
    h = generate_mu(n, n_users, model, tones=tones, rng=rng, **offsets)[..., 0, :]  # (n, K, U, Nt)
    h_fb = h[:, tone_positions(_GRID4, tones)]
    noise = (rng.standard_normal(h_fb.shape) + 1j * rng.standard_normal(h_fb.shape)) / np.sqrt(2)
    return MuTestSet(h_data=h[:, tone_positions(data_tones(), tones)], h_fb=h_fb, noise_fb=noise)


def training_features(n: int, n_users: int, snr_db: tuple[float, float], seed: int, **offsets) -> np.ndarray:
    """Encoder inputs (8 n U, 64) from ``n`` drops sounded at SNRs uniform in ``snr_db``."""
    rng = np.random.default_rng(seed)
    h = generate_mu(n, n_users, "D", tones=_GRID4, rng=rng, **offsets)[..., 0, :]  # (n, 64, U, 4)
    snr = rng.uniform(snr_db[0], snr_db[1], (n, 1, 1, 1))
    noise = (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape)) / np.sqrt(2)
    v = bf.svd_v(bf.noisy_estimate(h, snr, noise)[..., None, :], 1)  # (n, 64, U, 4, 1)
    return to_features(np.moveaxis(v, 2, 1).reshape(-1, _GRID4.size, 4, 1))


def ae_mu_scheme(encoder: nn.Module, decoder: nn.Module, b_lat: int, snr_ng: int = 4) -> MuScheme:
    """AE feedback of V on the Ng = 4 grid plus the standard's SNR report on the Ng = ``snr_ng``
    tones (4 or 16), both interpolated to the data tones."""
    from .mu_feedback import snr_report, snr_to_data_tones

    if snr_ng not in (4, 16):
        raise SpecError(f"snr_ng must be 4 or 16, got {snr_ng}")
    pos = np.arange(_GRID4.size) if snr_ng == 4 else tone_positions(_GRID16, _GRID4)
    grid = _GRID4 if snr_ng == 4 else _GRID16

    def run(v4: np.ndarray, snr4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, _ = to_data_tones(ae_feedback(encoder, decoder, v4, b_lat), np.zeros(snr4.shape), _GRID4)
        return v, snr_to_data_tones(snr_report(snr4[:, pos]), grid)

    return run


def link_sinr(
    ts: MuTestSet, scheme: MuScheme | None, snr_db: float, method: str = "zf", measured: tuple | None = None
) -> np.ndarray:
    """Per-tone per-user SINR (n, 234, U) on the data tones; ``scheme`` None = ideal CSI.
    ``measured``: ``ts.sounding(snr_db)`` when the caller already has it."""
    if scheme is None:
        v = bf.svd_v(ts.h_data[..., None, :], 1)
        snr = np.sum(np.abs(ts.h_data) ** 2, axis=-1) * 10.0 ** (snr_db / 10.0)
    else:
        v, snr = scheme(*(measured if measured is not None else ts.sounding(snr_db)))
    return mu_sinr(ts.h_data, precoder(ap_channel(v, snr), method), snr_db)


@dataclass(frozen=True)
class MuCurves(Curves):
    """``per[scheme][mcs]`` (len(snr_db),): PER averaged over drops and users."""

    def sum_goodput(self, n_users: int) -> dict:
        """{scheme: (len(snr_db),) Mb/s}: U x max over MCS of (1 - PER) x the HE 20 MHz 1-SS rate
        (0.8 us GI), the best fixed MCS at each SNR; sounding overhead not subtracted."""
        rates = {m: Phy(mcs=m).rate_mbps for m in next(iter(self.per.values()))}
        return {
            s: n_users * np.max([(1 - c) * rates[m] for m, c in by.items()], axis=0)
            for s, by in self.per.items()
        }


def per_by_drop(
    ts: MuTestSet,
    schemes: dict[str, MuScheme | None],
    snr_db: np.ndarray,
    mcs_list=MCS_LIST,
    method: str = "zf",
    progress: Callable[[], None] | None = None,
) -> dict[str, dict[int, np.ndarray]]:
    """{scheme: {mcs: (n_drops, len(snr_db)) PER}} per drop (mean over its stations; None =
    ideal CSI) with precoder ``method``: every scheme sees the same drops and sounding noise."""
    out = {k: {m: np.zeros((ts.h_data.shape[0], len(snr_db))) for m in mcs_list} for k in schemes}
    with torch.no_grad():
        for j, s in enumerate(snr_db):
            measured = ts.sounding(float(s))
            for name, fn in schemes.items():
                sinr = link_sinr(ts, fn, float(s), method, measured)
                for m in mcs_list:
                    out[name][m][:, j] = abstraction.packet_error_rate(sinr, m, axes=(1,)).mean(axis=1)
            if progress is not None:
                progress()
    return out


def per_curves(
    ts: MuTestSet,
    schemes: dict[str, MuScheme | None],
    snr_db: np.ndarray,
    mcs_list=MCS_LIST,
    *,
    method: str = "zf",
    progress: Callable[[], None] | None = None,
) -> MuCurves:
    """PER vs SNR of every scheme (None = ideal CSI) with precoder ``method``: the mean over
    drops of :func:`per_by_drop` (every drop has the same number of stations)."""
    by_drop = per_by_drop(ts, schemes, snr_db, mcs_list, method, progress)
    per = {name: {m: a.mean(axis=0) for m, a in d.items()} for name, d in by_drop.items()}
    return MuCurves(snr_db=np.asarray(snr_db, dtype=np.float64), per=per)


def sgcs_table(ts: MuTestSet, schemes: dict[str, MuScheme], snr_db: float) -> dict[str, float]:
    """Mean SGCS of each scheme's V-hat on the data tones against the true V (end to end)."""
    v_true = bf.svd_v(ts.h_data[..., None, :], 1)
    with torch.no_grad():
        return {
            name: float(bf.sgcs(v_true, fn(*ts.sounding(snr_db))[0]).mean()) for name, fn in schemes.items()
        }

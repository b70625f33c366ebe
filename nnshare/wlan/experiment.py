"""The link-level experiment: test channels, feedback schemes, PER-vs-SNR curves by the PHY
abstraction, SNR at 10 % PER, SGCS. Pure functions over arrays; the demo drives them.

Sounding and data see the same channel (block fading). The sounding SNR equals the data SNR;
the noisy LS estimate uses one unit-variance noise draw per channel that is scaled with the SNR
and shared by all schemes (common random numbers, so scheme differences are not Monte Carlo
noise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import abstraction
from . import beamforming as bf
from .autoencoder import feedback as ae_feedback
from .autoencoder import to_features
from .bitlevel import snr_at_per
from .channels import generate
from .link import effective_channel, mmse_sinr
from .ofdm import data_tones, feedback_tones, tone_positions, used_tones

MCS_LIST = (4, 7, 9, 11)
TARGET_PER = 0.1

Scheme = Callable[[np.ndarray], np.ndarray]  # V on Ng=4 grid (n, 64, 4, 2) -> V-hat on data tones


@dataclass(frozen=True, eq=False)
class TestSet:
    """Channels on the data tones and on the Ng = 4 feedback grid, plus the sounding noise
    (20 MHz: 234 data tones, 64 grid tones; ``bw`` MHz in general)."""

    h_data: np.ndarray  # (n, 234, Nr, Nt)
    h_fb: np.ndarray  # (n, 64, Nr, Nt)
    noise_fb: np.ndarray  # (n, 64, Nr, Nt) CN(0, 1)
    model: str
    bw: int = 20

    @property
    def n(self) -> int:
        return self.h_data.shape[0]

    def v_fb(self, snr_db: float | None) -> np.ndarray:
        """STA's V on the 64 feedback tones from the noisy estimate (None: perfect CSI)."""
        h = self.h_fb if snr_db is None else bf.noisy_estimate(self.h_fb, snr_db, self.noise_fb)
        return bf.svd_v(h)


def make_test_set(n: int, model: str = "D", seed: int = 1, bw: int = 20, smooth: int = 1) -> TestSet:
    """``n`` channels of ``model`` on all tones of the ``bw`` MHz full-band RU, split into data
    tones and the Ng = 4 feedback grid (at 20 MHz with ``smooth`` = 1 the channels and noise
    equal earlier versions').

    ``smooth`` > 1: the STA estimates every used tone (LS, unit-variance noise per tone) and
    smooths the estimate over ``smooth`` adjacent tones (``beamforming.smooth_tones``) before
    taking the feedback grid; the estimate is linear, so ``h_fb`` holds the smoothed channel and
    ``noise_fb`` the smoothed noise (variance about 1 / ``smooth``).
    """
    rng = np.random.default_rng(seed)
    tones = used_tones(bw)
    h = generate(n, model, rng=rng, tones=tones)
    fb = tone_positions(feedback_tones(4, bw), tones)
    dt = tone_positions(data_tones(bw), tones)
    if smooth == 1:
        h_fb = h[:, fb]
        noise = (rng.standard_normal(h_fb.shape) + 1j * rng.standard_normal(h_fb.shape)) / np.sqrt(2)
    else:
        w = (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape)) / np.sqrt(2)
        h_fb, noise = bf.smooth_tones(h, smooth)[:, fb], bf.smooth_tones(w, smooth)[:, fb]
    return TestSet(h_data=h[:, dt], h_fb=h_fb, noise_fb=noise, model=model, bw=bw)


def training_features(n: int, model: str, snr_db: tuple[float, float], seed: int) -> np.ndarray:
    """Encoder inputs (16 n, 64) from ``n`` channels sounded at SNRs uniform in ``snr_db``."""
    rng = np.random.default_rng(seed)
    h = generate(n, model, rng=rng, tones=feedback_tones(4))
    snr = rng.uniform(snr_db[0], snr_db[1], (n, 1, 1, 1))
    noise = (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape)) / np.sqrt(2)
    return to_features(bf.svd_v(bf.noisy_estimate(h, snr, noise)))


# ---- feedback schemes -------------------------------------------------------------------


def _grids(bw: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Ng = 4 grid, Ng = 16 grid, positions of Ng = 16 in Ng = 4, data tones) at ``bw`` MHz."""
    g4, g16 = feedback_tones(4, bw), feedback_tones(16, bw)
    return g4, g16, tone_positions(g16, g4), data_tones(bw)


def givens_scheme(bphi: int, bpsi: int, ng: int, bw: int = 20) -> Scheme:
    """802.11 compressed beamforming with (bphi, bpsi) at grouping ``ng``, interpolated."""
    g4, g16, pos16, dt = _grids(bw)

    def run(v4: np.ndarray) -> np.ndarray:
        v, grid = (v4, g4) if ng == 4 else (v4[:, pos16], g16)
        return bf.interpolate(bf.givens_feedback(v, bphi, bpsi), grid, dt)

    return run


def ae_scheme(encoder: nn.Module, decoder: nn.Module, b_lat: int, bw: int = 20) -> Scheme:
    """Autoencoder feedback on the Ng = 4 grid, interpolated to the data tones. Any number of
    grid tones: the last group is padded by repeating the last tone (``autoencoder.feedback``)."""
    g4, _, _, dt = _grids(bw)

    def run(v4: np.ndarray) -> np.ndarray:
        return bf.interpolate(ae_feedback(encoder, decoder, v4, b_lat), g4, dt)

    return run


# ---- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """PER curves: ``per[scheme][mcs]`` (len(snr_db),) averaged over channels."""

    snr_db: np.ndarray
    per: dict

    def snr_at_target(self, target: float = TARGET_PER) -> dict:
        """{scheme: {mcs: SNR (dB) at ``target`` PER}} (nan if not crossed on the grid)."""
        return {
            s: {m: snr_at_per(self.snr_db, c, target) for m, c in by_mcs.items()}
            for s, by_mcs in self.per.items()
        }


def per_curves(
    ts: TestSet,
    schemes: dict[str, Scheme],
    snr_db: np.ndarray,
    mcs_list=MCS_LIST,
    *,
    ideal: bool = True,
    progress: Callable[[], None] | None = None,
    packet_bytes: int | None = None,
) -> Curves:
    """PER vs SNR of every scheme (and of ideal V from perfect CSI on every data tone), for
    packets of ``packet_bytes`` (default: the 1000-byte reference)."""
    per: dict = {}
    names = (["ideal V"] if ideal else []) + list(schemes)
    for name in names:
        per[name] = {m: np.zeros(len(snr_db)) for m in mcs_list}
    v_ideal = bf.svd_v(ts.h_data) if ideal else None
    with torch.no_grad():
        for j, s in enumerate(snr_db):
            v4 = ts.v_fb(float(s))
            for name in names:
                v_hat = v_ideal if name == "ideal V" else schemes[name](v4)
                sinr = mmse_sinr(effective_channel(ts.h_data, v_hat), float(s))
                for m in mcs_list:
                    per[name][m][j] = abstraction.packet_error_rate(sinr, m, packet_bytes=packet_bytes).mean()
            if progress is not None:
                progress()
    return Curves(snr_db=np.asarray(snr_db, dtype=np.float64), per=per)


def sgcs_table(ts: TestSet, schemes: dict[str, Scheme], snr_db: float) -> dict[str, dict]:
    """SGCS per scheme at sounding SNR ``snr_db``: against the STA's measured V on the data
    tones (interpolated measurement: what compression must reproduce) and against the true V
    (end to end, estimation noise included). Mean and std over channels."""
    v4 = ts.v_fb(snr_db)
    g4, _, _, dt = _grids(ts.bw)
    v_meas = bf.interpolate(v4, g4, dt)
    v_true = bf.svd_v(ts.h_data)
    out = {}
    with torch.no_grad():
        for name, fn in schemes.items():
            v_hat = fn(v4)
            a = bf.sgcs(v_meas, v_hat).mean(axis=1)
            b = bf.sgcs(v_true, v_hat).mean(axis=1)
            out[name] = {
                "sgcs": float(a.mean()),
                "sgcs_std": float(a.std()),
                "sgcs_true": float(b.mean()),
            }
    return out

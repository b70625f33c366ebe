"""TGn/TGax indoor MIMO channels in the frequency domain (block fading, one draw per packet).

Models D NLOS and B NLOS follow the cluster tap tables of IEEE 802.11-03/940r4 (V. Erceg et al.,
"TGn Channel Models", May 2004; time variation in ``doppler``): each cluster has
its own tap powers, mean angles of arrival/departure and angular spreads; taps are Rayleigh with
Kronecker spatial correlation R_rx^{1/2} G R_tx^{1/2,T} of lambda/2 uniform linear arrays under a
truncated Laplacian power azimuth spectrum. The continuous-delay sum is evaluated at the exact tone
frequencies (no TGac bandwidth expansion). Fallback "rayleigh": taps every 10 ns to
390 ns with an exponential profile (50 ns rms), i.i.d. across antennas.

Normalisation: total tap power 1, so E|H_k[r, t]|^2 = 1 and E||H_k||_F^2 = Nr * Nt on every tone.
Shapes: H is (n_channels, n_tones, Nr, Nt), complex128.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..format.errors import SpecError
from .ofdm import SPACING_HZ, ru242_tones

_D_DELAYS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 110, 140, 170, 200, 240, 290, 340, 390)
_NA = None


@dataclass(frozen=True)
class Cluster:
    """One cluster: power (dB) per delay tap (None = absent), angles and spreads in degrees."""

    powers_db: tuple
    aoa: float
    as_rx: float
    aod: float
    as_tx: float


@dataclass(frozen=True)
class ChannelModel:
    """A tapped-delay-line model with clusters; ``delays_ns`` is shared by all clusters."""

    name: str
    delays_ns: tuple
    clusters: tuple

    def taps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(delays (P,) in s, linear powers (P,) summing to 1, cluster index (P,))."""
        d, p, c = [], [], []
        for ci, cl in enumerate(self.clusters):
            for tau, pdb in zip(self.delays_ns, cl.powers_db, strict=False):
                if pdb is not None:
                    d.append(tau * 1e-9)
                    p.append(10.0 ** (pdb / 10.0))
                    c.append(ci)
        p = np.asarray(p)
        return np.asarray(d), p / p.sum(), np.asarray(c)

    def rms_delay_spread_ns(self) -> float:
        """RMS delay spread (ns) of the normalised power delay profile."""
        d, p, _ = self.taps()
        mean = np.sum(p * d)
        return float(np.sqrt(np.sum(p * (d - mean) ** 2)) * 1e9)


# fmt: off
# TGn model D (03/940r4): cluster tap powers in dB on the 18 delays.
MODEL_D = ChannelModel(
    "D",
    _D_DELAYS,
    (
        Cluster((0, -0.9, -1.7, -2.6, -3.5, -4.3, -5.2, -6.1, -6.9, -7.8, -9.0, -11.1, -13.7,
                 -16.3, -19.3, -23.2, _NA, _NA),
                aoa=158.9, as_rx=27.7, aod=332.1, as_tx=27.4),
        Cluster((_NA,) * 10 + (-6.6, -9.5, -12.1, -14.7, -17.4, -21.9, -25.5, _NA),
                aoa=320.2, as_rx=31.4, aod=49.3, as_tx=32.1),
        Cluster((_NA,) * 14 + (-18.8, -23.2, -25.2, -26.7),
                aoa=276.1, as_rx=37.4, aod=275.9, as_tx=36.8),
    ),
)

# TGn model B (03/940r4): 9 delays, 0..80 ns.
MODEL_B = ChannelModel(
    "B",
    (0, 10, 20, 30, 40, 50, 60, 70, 80),
    (
        Cluster((0, -5.4, -10.8, -16.2, -21.7, _NA, _NA, _NA, _NA),
                aoa=4.3, as_rx=14.4, aod=225.1, as_tx=14.4),
        Cluster((_NA, _NA, -3.2, -6.3, -9.4, -12.5, -15.6, -18.7, -21.8),
                aoa=118.4, as_rx=25.2, aod=106.5, as_tx=25.4),
    ),
)
# fmt: on

EXP_RMS_NS = 50.0
MODELS = ("D", "B", "rayleigh")


def exponential_profile(rms_ns: float = EXP_RMS_NS) -> tuple[np.ndarray, np.ndarray]:
    """(delays (40,) in s, powers (40,) summing to 1): taps every 10 ns to 390 ns, e^{-tau/rms}."""
    d = np.arange(0, 400, 10) * 1e-9
    p = np.exp(-d / (rms_ns * 1e-9))
    return d, p / p.sum()


@cache
def ula_correlation(n: int, mean_deg: float, spread_deg: float) -> np.ndarray:
    """Spatial correlation (n, n) of a lambda/2 ULA under a truncated Laplacian PAS.

    PAS(phi) ~ exp(-sqrt(2) |phi - mean| / spread) on mean +- 180 deg; broadside at 0 deg.
    R[m, l] = E exp(j pi (m - l) sin phi).
    """
    phi = np.linspace(-np.pi, np.pi, 4097)[:-1]
    sigma = np.deg2rad(spread_deg)
    w = np.exp(-np.sqrt(2.0) * np.abs(phi) / sigma)
    w /= w.sum()
    ang = phi + np.deg2rad(mean_deg)
    m = np.arange(n)
    steer = np.exp(1j * np.pi * m[:, None] * np.sin(ang)[None, :])  # (n, A)
    return (steer * w) @ steer.conj().T


def _sqrtm_psd(r: np.ndarray) -> np.ndarray:
    w, u = np.linalg.eigh(r)
    return (u * np.sqrt(np.clip(w, 0, None))) @ u.conj().T


def tone_frequencies(tones: np.ndarray | None = None) -> np.ndarray:
    """Baseband frequency (Hz) of each tone index (default: the 242 RU242 tones)."""
    t = ru242_tones() if tones is None else np.asarray(tones)
    return t * SPACING_HZ


def generate(
    n: int,
    model: str = "D",
    *,
    nt: int = 4,
    nr: int = 2,
    tones: np.ndarray | None = None,
    rng: np.random.Generator | int = 0,
) -> np.ndarray:
    """``n`` channel realisations H (n, n_tones, nr, nt) of ``model`` ("D", "B" or "rayleigh")."""
    if model not in MODELS:
        raise SpecError(f"channel model must be one of {', '.join(MODELS)}, got {model!r}")
    if n < 1 or nt < 1 or nr < 1:
        raise SpecError("need at least one channel and one antenna at each side")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    d = tap_profile(model, nt, nr)[0]
    g = rng.standard_normal((n, d.size, nr, nt)) + 1j * rng.standard_normal((n, d.size, nr, nt))
    return channel_from_gains(g * np.sqrt(0.5), model, tones)


def tap_profile(model: str, nt: int, nr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, list]:
    """(delays (P,) s, powers (P,) summing to 1, cluster of each tap (P,), R_rx^1/2 and R_tx^1/2
    per cluster) of ``model``."""
    if model not in MODELS:
        raise SpecError(f"channel model must be one of {', '.join(MODELS)}, got {model!r}")
    if model == "rayleigh":
        d, p = exponential_profile()
        return d, p, np.zeros(d.size, int), [np.eye(nr)], [np.eye(nt)]
    cm = MODEL_D if model == "D" else MODEL_B
    d, p, cl = cm.taps()
    rx_sqrt = [_sqrtm_psd(ula_correlation(nr, c.aoa, c.as_rx)) for c in cm.clusters]
    tx_sqrt = [_sqrtm_psd(ula_correlation(nt, c.aod, c.as_tx)) for c in cm.clusters]
    return d, p, cl, rx_sqrt, tx_sqrt


def channel_from_gains(g: np.ndarray, model: str, tones: np.ndarray | None = None) -> np.ndarray:
    """H (..., n_tones, nr, nt) from i.i.d. unit-power tap gains ``g`` (..., P, nr, nt): spatial
    correlation per cluster, tap powers, and the continuous-delay sum at the tone frequencies."""
    nr, nt = g.shape[-2:]
    d, p, cl, rx_sqrt, tx_sqrt = tap_profile(model, nt, nr)
    if g.shape[-3] != d.size:
        raise SpecError(f"model {model} has {d.size} taps, got gains for {g.shape[-3]}")
    f = tone_frequencies(tones)
    taps = np.empty_like(g)
    for ci in np.unique(cl):
        sel = cl == ci
        taps[..., sel, :, :] = rx_sqrt[ci] @ g[..., sel, :, :] @ tx_sqrt[ci].T
    taps *= np.sqrt(p)[:, None, None]
    phase = np.exp(-2j * np.pi * f[:, None] * d[None, :])  # (K, P)
    return np.einsum("kp,...prt->...krt", phase, taps)

"""TGn channel ageing: the bell-shaped Doppler spectrum and time-varying tap gains.

TGn (IEEE 802.11-03/940r4, Erceg et al., "TGn Channel Models", 2004) gives every tap the bell
spectrum S(f) = 1 / (1 + A (f / fd)^2), |f| <= fd, with A = 9 (S(fd) = 0.1) and fd = v / lambda
at the environmental speed v = 1.2 km/h (fd = 5.84 Hz at 5.25 GHz). Not modelled: the
fluorescent-light components of models D and E.

Its autocorrelation is R(tau) = int S(f) cos(2 pi f tau) df / int S(f) df over [-fd, fd]
(computed by Gauss-Legendre quadrature). Tap gains are sums of ``n_sin`` complex sinusoids with
frequencies drawn i.i.d. from S (inverse CDF: f = fd tan((2u - 1) atan(sqrt A)) / sqrt A) and
uniform phases: g(t) = n_sin^-1/2 sum_k exp(j (2 pi f_k t + phi_k)). E[g(t) g*(t + tau)] = R(tau)
exactly for any n_sin; g is close to CN(0, 1) for n_sin >= 16.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..errors import SpecError
from .channels import channel_from_gains, tap_profile

BELL_A = 9.0
CARRIER_HZ = 5.25e9
TGN_SPEED_KMH = 1.2
LIGHT_M_PER_S = 299_792_458.0


def doppler_hz(speed_kmh: float, carrier_hz: float = CARRIER_HZ) -> float:
    """Maximum Doppler shift fd = v / lambda (Hz) at ``speed_kmh`` and ``carrier_hz``."""
    if not (speed_kmh >= 0 and carrier_hz > 0):
        raise SpecError(f"need speed >= 0 km/h and a positive carrier, got {speed_kmh!r}, {carrier_hz!r}")
    return speed_kmh / 3.6 * carrier_hz / LIGHT_M_PER_S


def bell_spectrum(f_hz, fd_hz: float, a: float = BELL_A) -> np.ndarray:
    """S(f) = 1 / (1 + a (f/fd)^2) on |f| <= fd, 0 outside (unnormalised)."""
    x = np.asarray(f_hz, dtype=np.float64) / fd_hz
    return np.where(np.abs(x) <= 1, 1.0 / (1.0 + a * x * x), 0.0)


@cache
def _legendre(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def bell_autocorrelation(tau_s, fd_hz: float, a: float = BELL_A) -> np.ndarray:
    """Normalised autocorrelation R(tau) (real, R(0) = 1) of the bell spectrum at lags ``tau_s``."""
    if fd_hz == 0:
        return np.ones_like(np.asarray(tau_s, dtype=np.float64))
    x, w = _legendre()
    s = w / (1.0 + a * x * x)
    tau = np.asarray(tau_s, dtype=np.float64)
    return np.cos(2 * np.pi * fd_hz * tau[..., None] * x) @ s / s.sum()


def bell_frequencies(shape: tuple, fd_hz: float, rng: np.random.Generator, a: float = BELL_A) -> np.ndarray:
    """Doppler frequencies (Hz) drawn i.i.d. from the bell spectrum (inverse CDF)."""
    u = rng.random(shape)
    r = np.sqrt(a)
    return fd_hz * np.tan((2 * u - 1) * np.arctan(r)) / r


@dataclass(frozen=True, eq=False)
class FadingProcess:
    """Sum-of-sinusoids tap gains: ``freqs`` and ``phases`` (..., n_sin); ``gain(t)`` is (...)."""

    freqs: np.ndarray
    phases: np.ndarray

    def gain(self, t_s: float) -> np.ndarray:
        """Unit-power complex gains at time ``t_s`` (s)."""
        n_sin = self.freqs.shape[-1]
        return np.exp(1j * (2 * np.pi * self.freqs * t_s + self.phases)).sum(-1) / np.sqrt(n_sin)


def fading_process(shape: tuple, fd_hz: float, rng: np.random.Generator, n_sin: int = 32) -> FadingProcess:
    """Independent bell-spectrum processes of shape ``shape`` (``n_sin`` sinusoids each)."""
    if n_sin < 1:
        raise SpecError(f"need at least one sinusoid, got {n_sin}")
    full = tuple(shape) + (n_sin,)
    return FadingProcess(bell_frequencies(full, fd_hz, rng), rng.uniform(0, 2 * np.pi, full))


@dataclass(frozen=True, eq=False)
class AgeingChannel:
    """``n`` TGn channels of ``model`` evolving in time: ``at(t, tones)`` is H (n, K, nr, nt)."""

    model: str
    process: FadingProcess

    def at(self, t_s: float, tones: np.ndarray | None = None) -> np.ndarray:
        return channel_from_gains(self.process.gain(t_s), self.model, tones)


def ageing_channels(
    n: int, model: str, fd_hz: float, *, nt: int = 4, nr: int = 2, rng=0, n_sin: int = 32
) -> AgeingChannel:
    """``n`` time-varying channels of ``model`` whose taps fade with the bell spectrum at ``fd_hz``."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    p = tap_profile(model, nt, nr)[0].size
    return AgeingChannel(model, fading_process((n, p, nr, nt), fd_hz, rng, n_sin))

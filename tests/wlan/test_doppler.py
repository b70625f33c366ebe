import numpy as np
import pytest

from nnshare.errors import SpecError
from nnshare.wlan import doppler


def test_doppler_shift_of_the_tgn_speed():
    # 1.2 km/h at 5.25 GHz: 0.3333 m/s / 0.05710 m = 5.837 Hz
    assert doppler.doppler_hz(1.2) == pytest.approx(5.837, abs=1e-3)
    assert doppler.doppler_hz(3.0, 2.4e9) == pytest.approx(3 / 3.6 * 2.4e9 / 299_792_458)
    with pytest.raises(SpecError):
        doppler.doppler_hz(-1.0)


def test_autocorrelation_is_the_spectrum_transform():
    fd = 5.836
    tau = np.array([0.0, 0.005, 0.02, 0.05, 0.1, 0.3])
    r = doppler.bell_autocorrelation(tau, fd)
    # independent: trapezoid integral of the spectrum on a fine grid
    f = np.linspace(-fd, fd, 200_001)
    s = doppler.bell_spectrum(f, fd)
    ref = np.trapezoid(s * np.cos(2 * np.pi * f * tau[:, None]), f, axis=1) / np.trapezoid(s, f)
    np.testing.assert_allclose(r, ref, atol=1e-8)
    assert r[0] == pytest.approx(1.0)
    assert doppler.bell_spectrum(fd, fd) == pytest.approx(0.1)  # A = 9: S(fd) = S(0) / 10
    assert doppler.bell_spectrum(1.01 * fd, fd) == 0.0  # truncated at fd
    # a flat spectrum on [-fd, fd] (A = 0) has the analytic sinc autocorrelation
    flat = doppler.bell_autocorrelation(tau, fd, a=0.0)
    np.testing.assert_allclose(flat, np.sinc(2 * fd * tau), atol=1e-10)


def test_sum_of_sinusoids_has_the_model_autocorrelation():
    fd = doppler.doppler_hz(1.2)
    rng = np.random.default_rng(5)
    proc = doppler.fading_process((6000,), fd, rng, n_sin=8)
    g0 = proc.gain(0.0)
    assert np.mean(np.abs(g0) ** 2) == pytest.approx(1.0, abs=0.04)
    for tau in (0.01, 0.02, 0.05, 0.1):
        emp = np.mean(g0 * proc.gain(tau).conj())
        assert abs(emp - doppler.bell_autocorrelation(tau, fd)) < 0.05, tau
    # the frequencies follow the spectrum: its CDF at fd / 3 is atan(1) / atan(3) ... mapped to [0, 1]
    f = doppler.bell_frequencies((200_000,), fd, rng)
    assert np.all(np.abs(f) <= fd)
    cdf = (np.arctan(3 * (1 / 3)) / np.arctan(3) + 1) / 2
    assert np.mean(f <= fd / 3) == pytest.approx(cdf, abs=0.005)


def test_ageing_channel_decorrelates_as_the_spectrum_says():
    fd = doppler.doppler_hz(3.0)
    ch = doppler.ageing_channels(1500, "D", fd, rng=2, n_sin=8)
    tones = np.array([-100, 0, 60])
    h0 = ch.at(0.0, tones)
    assert h0.shape == (1500, 3, 2, 4)
    assert np.mean(np.abs(h0) ** 2) == pytest.approx(1.0, abs=0.05)  # unit average gain per entry
    for tau in (0.01, 0.04):
        emp = np.mean(h0 * ch.at(tau, tones).conj()).real
        assert emp == pytest.approx(doppler.bell_autocorrelation(tau, fd), abs=0.05)
    with pytest.raises(SpecError):
        doppler.fading_process((2,), fd, np.random.default_rng(0), n_sin=0)

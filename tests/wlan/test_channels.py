import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan import channels
from nnshare.wlan.ofdm import ru242_tones


@pytest.mark.parametrize("model", ["D", "B", "rayleigh"])
def test_power_normalisation(model):
    h = channels.generate(400, model, rng=3)
    assert h.shape == (400, 242, 2, 4)
    per_tone = (np.abs(h) ** 2).sum(axis=(2, 3)).mean(axis=0)  # E||H_k||_F^2 per tone
    assert abs(per_tone.mean() - 8.0) < 0.4
    assert np.all(np.abs(per_tone - 8.0) < 1.2)


def test_rms_delay_spreads_of_the_tables():
    assert channels.MODEL_D.rms_delay_spread_ns() == pytest.approx(50.0, abs=1.5)
    assert channels.MODEL_B.rms_delay_spread_ns() == pytest.approx(15.0, abs=1.5)
    d, p = channels.exponential_profile()
    mean = (p * d).sum()
    assert np.sqrt((p * (d - mean) ** 2).sum()) * 1e9 == pytest.approx(50.0, abs=1.5)
    _, pd, _ = channels.MODEL_D.taps()
    assert pd.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("model", ["D", "B"])
def test_frequency_correlation_matches_delay_profile(model):
    """E[H_k H_{k+dk}^*] per antenna pair = sum_l p_l exp(-j 2 pi dk df tau_l)."""
    h = channels.generate(600, model, rng=5)
    cm = channels.MODEL_D if model == "D" else channels.MODEL_B
    d, p, _ = cm.taps()
    for dk in (4, 16, 40):
        emp = np.mean(h[:, :-dk] * h[:, dk:].conj())
        theory = np.sum(p * np.exp(2j * np.pi * dk * 78_125.0 * d))
        assert abs(emp - theory) < 0.06, (dk, emp, theory)
    # the wider delay spread of model D decorrelates faster across 40 tones (3.1 MHz)
    db, pb, _ = channels.MODEL_B.taps()
    dd, pd, _ = channels.MODEL_D.taps()
    corr_b = abs(np.sum(pb * np.exp(2j * np.pi * 40 * 78_125.0 * db)))
    corr_d = abs(np.sum(pd * np.exp(2j * np.pi * 40 * 78_125.0 * dd)))
    assert corr_d < corr_b - 0.15


def test_spatial_correlation():
    h = channels.generate(1500, "D", rng=7, tones=np.array([2]))[:, 0]  # (n, 2, 4)
    emp = np.einsum("nrt,nru->tu", h, h.conj()) / (1500 * 2)
    d, p, cl = channels.MODEL_D.taps()
    theory = sum(
        p[cl == i].sum() * channels.ula_correlation(4, c.aod, c.as_tx)
        for i, c in enumerate(channels.MODEL_D.clusters)
    )
    assert np.allclose(np.diag(emp).real, 1.0, atol=0.1)
    assert np.abs(emp - theory).max() < 0.1
    assert np.abs(theory[0, 1]) > 0.3  # correlated, unlike the i.i.d. fallback
    r = channels.ula_correlation(4, 10.0, 30.0)
    assert np.allclose(r, r.conj().T) and np.allclose(np.diag(r), 1.0)


def test_seeded_and_bad_input():
    a = channels.generate(3, "D", rng=11)
    b = channels.generate(3, "D", rng=11)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, channels.generate(3, "D", rng=12))
    assert channels.tone_frequencies().shape == ru242_tones().shape
    with pytest.raises(SpecError, match="channel model"):
        channels.generate(2, "Z")
    with pytest.raises(SpecError):
        channels.generate(0, "D")

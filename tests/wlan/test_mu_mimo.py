import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan import beamforming as bf
from nnshare.wlan import channels
from nnshare.wlan import mu_experiment as E
from nnshare.wlan import mu_feedback as F
from nnshare.wlan.mu_channels import generate_mu, ula_correlations
from nnshare.wlan.mu_precoding import ap_channel, mu_sinr, precoder, zf_interference_free_sinr
from nnshare.wlan.ofdm import feedback_tones


@pytest.fixture(scope="module")
def ts():
    return E.make_test_set(12, 3, seed=4)


def test_mu_channel_power_and_per_user_offsets():
    h = generate_mu(300, 2, tones=np.array([2, 50]), rng=3)
    assert h.shape == (300, 2, 2, 1, 4)
    assert abs((np.abs(h) ** 2).mean() - 1.0) < 0.08
    # offsets 0: every user sees the TGn cluster correlation of channels.py
    h0 = generate_mu(1000, 2, tones=np.array([2]), aod_offset_deg=0.0, rng=5)[:, 0, :, 0]  # (n, U, 4)
    d, p, cl = channels.MODEL_D.taps()
    theory = sum(
        p[cl == i].sum() * channels.ula_correlation(4, c.aod, c.as_tx)
        for i, c in enumerate(channels.MODEL_D.clusters)
    )
    for u in range(2):
        emp = np.einsum("nt,nu->tu", h0[:, u], h0[:, u].conj()) / 1000
        assert np.abs(emp - theory).max() < 0.1
    # the vectorised correlation equals the cached TGn one
    r = ula_correlations(4, np.array([[10.0, 200.0]]), 30.0)
    assert np.abs(r[0, 0] - channels.ula_correlation(4, 10.0, 30.0)).max() < 1e-3
    assert np.abs(r[0, 1] - channels.ula_correlation(4, 200.0, 30.0)).max() < 1e-3
    # offsets make users' transmit correlations differ: lower mean cross-user alignment
    h30 = generate_mu(1000, 2, tones=np.array([2]), rng=5)[:, 0, :, 0]
    align = [
        np.mean(
            np.abs(np.sum(x[:, 0].conj() * x[:, 1], -1)) ** 2
            / (np.linalg.norm(x[:, 0], axis=-1) * np.linalg.norm(x[:, 1], axis=-1)) ** 2
        )
        for x in (h0, h30)
    ]
    assert align[1] < align[0]
    with pytest.raises(SpecError, match="model"):
        generate_mu(1, 2, "rayleigh")
    with pytest.raises(SpecError, match="offset"):
        generate_mu(1, 2, aod_offset_deg=-1.0)


def test_zf_with_ideal_feedback_is_interference_free(ts):
    h = ts.h_data  # (n, 234, 3, 4)
    v = bf.svd_v(h[..., None, :], 1)
    snr = np.sum(np.abs(h) ** 2, -1) * 10**2.5
    w = precoder(ap_channel(v, snr), "zf")
    g = h @ w
    off = g - np.diagonal(g, axis1=-2, axis2=-1)[..., None] * np.eye(3)
    assert np.abs(off).max() < 1e-9 * np.abs(g).max()
    assert np.allclose(np.linalg.norm(w, axis=-2), 1.0)
    for snr_db in (10.0, 25.0):
        got = mu_sinr(h, w, snr_db)
        assert np.allclose(got, zf_interference_free_sinr(h, snr_db), rtol=1e-9)
        # analytic: SINR_u = 1 / (U N0 [(H H^H)^-1]_uu)
        u = 1
        inv = np.linalg.inv(h[3, 7] @ h[3, 7].conj().T)
        assert got[3, 7, u] == pytest.approx(10 ** (snr_db / 10) / (3 * inv[u, u].real), rel=1e-9)
    # link_sinr with ideal CSI gives exactly that value
    assert np.allclose(E.link_sinr(ts, None, 20.0, "zf"), zf_interference_free_sinr(h, 20.0), rtol=1e-9)


def test_mmse_beats_zf_at_low_snr_and_matches_at_high(ts):
    h = ts.h_data
    v = bf.svd_v(h[..., None, :], 1)
    gain = np.sum(np.abs(h) ** 2, -1)
    rate = {}
    for snr_db in (0.0, 60.0):
        for m in ("zf", "mmse"):
            w = precoder(ap_channel(v, gain * 10 ** (snr_db / 10)), m)
            rate[snr_db, m] = np.log2(1 + mu_sinr(h, w, snr_db)).sum(-1).mean()
    assert rate[0.0, "mmse"] > rate[0.0, "zf"]
    assert rate[60.0, "mmse"] == pytest.approx(rate[60.0, "zf"], rel=1e-3)
    with pytest.raises(SpecError, match="precoder"):
        precoder(h, "mrt")
    with pytest.raises(SpecError, match="antennas"):
        precoder(np.ones((5, 4), complex))


@pytest.mark.parametrize("ng,ns", [(4, 64), (16, 20)])
@pytest.mark.parametrize("bphi,bpsi", F.MU_CODEBOOKS)
def test_mu_report_bits_equal_the_formula(ng, ns, bphi, bpsi):
    assert feedback_tones(ng).size == ns
    # 4x1: Na = 6 (3 phi + 3 psi); 8-bit average SNR; 4-bit delta SNR per reported tone
    assert F.mu_report_bits(ns, 4, 1, bphi, bpsi) == ns * 3 * (bphi + bpsi) + 8 + 4 * ns
    assert F.report_bits(F.scheme_name(bphi, bpsi, ng)) == ns * 3 * (bphi + bpsi) + 8 + 4 * ns
    # Na / 2 x (bphi + bpsi) per tone for other shapes: 4x2 Na = 10, 8x2 Na = 26
    assert F.mu_report_bits(ns, 4, 2, bphi, bpsi) == ns * 5 * (bphi + bpsi) + 16 + 8 * ns
    assert F.mu_report_bits(ns, 8, 2, bphi, bpsi) == ns * 13 * (bphi + bpsi) + 16 + 8 * ns


def test_mu_report_bit_values():
    assert [F.report_bits(F.scheme_name(a, b, g)) for (a, b) in F.MU_CODEBOOKS for g in (4, 16)] == [
        2568,
        808,
        3336,
        1048,
    ]


def test_snr_fields():
    assert F.quantize_avg_snr(np.array([-20.0, 22.1, 22.13, 60.0])).tolist() == [-10.0, 22.0, 22.25, 53.75]
    d = F.quantize_delta_snr(np.array([0.0, 10.4, 19.6, 30.0]), 20.0)
    assert d.tolist() == [-8.0, -8.0, 0.0, 7.0]
    snr = 10 ** (np.array([[[20.0], [23.0], [11.0]]]) / 10)  # (1, 3 tones, 1 user)
    rep = F.snr_report(snr)
    avg = F.quantize_avg_snr(10 * np.log10(snr.mean()))
    assert np.allclose(rep[0, :, 0], avg + np.clip(np.round(10 * np.log10(snr[0, :, 0]) - avg), -8, 7))


def test_givens_mu_scheme_feedback_quality_orders(ts):
    v4, snr4 = ts.sounding(30.0)
    assert v4.shape == (12, 64, 3, 4, 1) and snr4.shape == (12, 64, 3)
    v_true = bf.svd_v(ts.h_data[..., None, :], 1)
    q = {}
    for bphi, bpsi in F.MU_CODEBOOKS:
        for ng in (4, 16):
            v_hat, s_hat = F.givens_mu_scheme(bphi, bpsi, ng)(v4, snr4)
            assert v_hat.shape == v_true.shape and s_hat.shape == (12, 234, 3)
            q[bphi, ng] = bf.sgcs(v_true, v_hat).mean()
            # SNR within the delta-SNR quantization (0.5 dB) plus interpolation error
            err = np.abs(10 * np.log10(s_hat) - 10 * np.log10(np.sum(np.abs(ts.h_data) ** 2, -1) * 1e3))
            assert np.median(err) < 1.0
    assert q[9, 4] > q[7, 4] > q[7, 16] and q[9, 4] > q[9, 16]
    assert q[9, 4] > 0.99

import numpy as np
import pytest
import torch

from nnshare.format.errors import SpecError
from nnshare.wlan import ofdm
from nnshare.wlan.autoencoder import feedback, make_decoder, make_encoder, pad_groups
from nnshare.wlan.beamforming import givens_report_bits, n_angles, svd_v
from nnshare.wlan.experiment import ae_scheme, givens_scheme, make_test_set
from nnshare.wlan.overhead import ae_feedback_bits, feedback_table

# Ns of the HE compressed beamforming report (802.11ax-2021 Table 9-91a/b) per (bandwidth, Ng)
NS = {(20, 4): 64, (20, 16): 20, (40, 4): 122, (40, 16): 32, (80, 4): 250, (80, 16): 64,
      (160, 4): 500, (160, 16): 128}  # fmt: skip
# Na per (Nr, Nc) (802.11 Table 9-88 "Order of angles in the Compressed Beamforming Feedback Matrix")
NA = {(2, 1): 2, (2, 2): 2, (3, 1): 4, (3, 2): 6, (3, 3): 6, (4, 1): 6, (4, 2): 10, (4, 3): 12,
      (4, 4): 12, (8, 1): 14, (8, 2): 26, (8, 8): 56}  # fmt: skip


def test_tone_plans_of_every_bandwidth():
    for bw, (used, data, pil) in {20: (242, 234, 8), 40: (484, 468, 16), 80: (996, 980, 16),
                                  160: (1992, 1960, 32)}.items():  # fmt: skip
        u = ofdm.used_tones(bw)
        assert (u.size, ofdm.data_tones(bw).size, ofdm.pilot_tones(bw).size) == (used, data, pil)
        assert np.all(np.diff(u) > 0) and np.all(np.isin(ofdm.pilot_tones(bw), u))
        assert np.array_equal(u, -u[::-1])
    assert ofdm.used_tones(80)[0] == -500 and 3 in ofdm.used_tones(80) and 2 not in ofdm.used_tones(80)
    assert -512 not in ofdm.used_tones(160) and -1012 in ofdm.used_tones(160) and 12 in ofdm.used_tones(160)
    with pytest.raises(SpecError, match="bandwidth"):
        ofdm.used_tones(320)


@pytest.mark.parametrize("bw", ofdm.BANDWIDTHS)
@pytest.mark.parametrize("ng", ofdm.GROUPINGS)
def test_report_bits_equal_the_standard_formula(bw, ng):
    tones = ofdm.feedback_tones(ng, bw)
    assert tones.size == NS[(bw, ng)]
    assert np.all(np.isin(tones, ofdm.used_tones(bw))) and np.all(np.diff(tones) > 0)
    assert np.all(np.isin(ofdm.feedback_tones(16, bw), ofdm.feedback_tones(4, bw)))
    for (nr, nc), na in NA.items():
        assert n_angles(nr, nc) == na
        for bphi, bpsi in ((4, 2), (6, 4)):
            # SU report: Ns x Na/2 x (bphi + bpsi) bits of angles + 8 bits of SNR per stream
            assert (
                givens_report_bits(tones.size, nr, nc, bphi, bpsi)
                == NS[(bw, ng)] * na // 2 * (bphi + bpsi) + 8 * nc
            )
    rows = {r["scheme"]: r["bits"] for r in feedback_table(4, bw)}
    assert rows[f"Givens (6,4) Ng={ng}"] == NS[(bw, ng)] * 5 * 10 + 16
    assert rows[f"Givens (4,2) Ng={ng}"] == NS[(bw, ng)] * 5 * 6 + 16


def test_reviewers_independent_numbers():
    got = [givens_report_bits(ofdm.feedback_tones(ng, bw).size) for ng in (4, 16) for bw in (40, 80, 160)]
    assert got == [6116, 12516, 25016, 1616, 3216, 6416]


def test_ae_handles_any_number_of_tones():
    assert [ae_feedback_bits(4, 4, bw) for bw in ofdm.BANDWIDTHS] == [
        g * 16 * 4 + 16 for g in (16, 31, 63, 125)
    ]
    v = svd_v(np.random.default_rng(0).standard_normal((3, 122, 2, 4)) + 0j)
    p = pad_groups(v)
    assert p.shape == (3, 124, 4, 2) and np.array_equal(p[:, 122], v[:, 121])
    torch.manual_seed(0)
    enc, dec = make_encoder(), make_decoder()
    out = feedback(enc, dec, v, 4)
    assert out.shape == v.shape
    # each group is coded on its own: the first 30 groups equal the unpadded 120-tone result
    assert np.allclose(out[:, :120], feedback(enc, dec, v[:, :120], 4))


def test_schemes_run_at_80_mhz():
    ts = make_test_set(2, "D", seed=3, bw=80)
    assert ts.h_data.shape == (2, 980, 2, 4) and ts.h_fb.shape == (2, 250, 2, 4) and ts.bw == 80
    v4 = ts.v_fb(30.0)
    torch.manual_seed(0)
    for fn in (givens_scheme(6, 4, 16, bw=80), ae_scheme(make_encoder(), make_decoder(), 4, bw=80)):
        vh = fn(v4)
        assert vh.shape == (2, 980, 4, 2)
        assert np.allclose(np.abs(np.sum(vh.conj() * vh, axis=-2)), 1.0)  # unit-norm columns
    # the 20 MHz test set is unchanged by the bandwidth option
    a, b = make_test_set(2, "D", seed=3), make_test_set(2, "D", seed=3, bw=20)
    assert np.array_equal(a.h_data, b.h_data) and a.bw == 20


def test_smoothing_across_tones():
    from nnshare.wlan.beamforming import smooth_tones

    rng = np.random.default_rng(1)
    flat = np.ones((2, 30, 2, 4)) * (0.3 + 0.4j)
    assert np.allclose(smooth_tones(flat, 5), flat)  # a flat channel is unchanged
    ramp = np.arange(30.0)[None, :, None, None] * np.ones((1, 30, 1, 1))
    assert np.allclose(smooth_tones(ramp, 5), ramp)  # a linear one too (symmetric windows)
    w = rng.standard_normal((4000, 30, 1, 1))
    s = smooth_tones(w, 5)
    assert np.var(s[:, 2:-2]) == pytest.approx(1 / 5, rel=0.05)
    assert np.allclose(s[:, 0], w[:, 0]) and np.allclose(s[:, 1], w[:, :3].mean(1))
    assert np.array_equal(smooth_tones(w, 1), w)
    for bad in (0, 4, 2.0, True):
        with pytest.raises(SpecError, match="smoothing"):
            smooth_tones(w, bad)
    raw, sm = make_test_set(40, "D", seed=2), make_test_set(40, "D", seed=2, smooth=5)
    assert np.array_equal(raw.h_data, sm.h_data)  # same channels, only the estimate differs
    assert np.mean(np.abs(raw.noise_fb) ** 2) == pytest.approx(1.0, rel=0.1)
    # 62 grid tones average 5 tones; the band-edge tones -122 and 122 keep their raw estimate
    assert np.mean(np.abs(sm.noise_fb) ** 2) == pytest.approx((62 * 0.2 + 2) / 64, rel=0.1)
    # the smoothing bias is small: model D is nearly flat over 5 x 78 kHz
    err = np.mean(np.abs(sm.h_fb - raw.h_fb) ** 2)
    assert err < 0.01

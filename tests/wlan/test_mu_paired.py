import numpy as np
import pytest
import torch
from torch import nn

from nnshare.format.errors import SpecError
from nnshare.wlan import mu_autoencoder as A
from nnshare.wlan import mu_experiment as E
from nnshare.wlan.autoencoder import make_decoder, make_encoder
from nnshare.wlan.mu_feedback import snr_report, to_data_tones
from nnshare.wlan.mu_paired import bootstrap_shift, crossing_shift, paired_table
from nnshare.wlan.ofdm import feedback_tones


def _curves(n=40, seed=0):
    """Per-drop PER curves on a 0.25 dB grid: logistic in SNR around a per-drop centre."""
    g = np.arange(10.0, 20.0, 0.25)
    c = np.random.default_rng(seed).uniform(13.0, 16.0, (n, 1))
    return g, 1 / (1 + np.exp(2.0 * (g[None] - c)))


def test_bootstrap_of_a_pure_shift_is_exact():
    g, p = _curves()
    q = np.concatenate([np.ones((p.shape[0], 2)), p[:, :-2]], axis=1)  # every drop 0.5 dB worse
    assert crossing_shift(g, p, q) == pytest.approx(0.5, abs=1e-9)
    b = bootstrap_shift(g, p, q, n_boot=200)
    assert b["shift_db"] == pytest.approx(0.5, abs=1e-9) and b["std_db"] < 1e-9
    assert b["ci95_db"] == pytest.approx([0.5, 0.5]) and b["p_above_0.1"] == 1.0
    same = bootstrap_shift(g, p, p, n_boot=50)
    assert same["shift_db"] == 0.0 and same["ci95_db"] == [0.0, 0.0] and same["p_above_0.1"] == 0.0


def test_bootstrap_spread_of_an_unpaired_difference():
    g, p = _curves(seed=1)
    _, q = _curves(seed=2)  # other drops: no pairing, the resamples spread
    b = bootstrap_shift(g, p, q, n_boot=300, seed=3)
    lo, hi = b["ci95_db"]
    assert b["n_boot_crossed"] == 300 and b["std_db"] > 0.05 and lo < b["shift_db"] < hi


def test_bootstrap_refuses_bad_input():
    g, p = _curves()
    with pytest.raises(SpecError, match="PER arrays"):
        bootstrap_shift(g, p, p[:, 1:])
    with pytest.raises(SpecError, match="n_boot"):
        bootstrap_shift(g, p, p, n_boot=0)


def test_paired_table_of_a_scheme_with_itself_is_zero():
    ts = E.make_test_set(3, 2, seed=4)
    def ideal(v4, snr4):
        return to_data_tones(v4, snr_report(snr4), feedback_tones(4))

    out = paired_table(ts, {"float32": ideal, "copy": ideal}, {4: 12.0, 7: float("nan")}, n_boot=20)
    assert out["n_drops"] == 3 and set(out["shift"]) == {"copy"} and set(out["shift"]["copy"]) == {"4"}
    d = out["shift"]["copy"]["4"]
    assert d["shift_db"] == 0.0 or np.isnan(d["shift_db"])
    with pytest.raises(SpecError, match="reference"):
        paired_table(ts, {"copy": ideal}, {4: 12.0})


def test_tone_log_loss_and_the_snr_grid():
    ts = E.make_test_set(2, 2, seed=5)
    v4, snr4 = ts.sounding(25.0)
    x = A.to_features(np.moveaxis(v4, 2, 1).reshape(4, 64, 4, 1))
    xb = torch.from_numpy(x)
    ident = nn.Identity()
    # identity "encoder/decoder": the loss is that of quantizing the 64 features to 3 bits
    v = x[:, :32] + 1j * x[:, 32:]
    zq = np.clip(np.floor((x + 1) * 4), 0, 7)
    xq = -1 + (2 * zq + 1) / 8
    vq = (xq[:, :32] + 1j * xq[:, 32:]).reshape(-1, 8, 4)
    vq /= np.linalg.norm(vq, axis=-1, keepdims=True)
    err = 1 - np.abs(np.sum(v.reshape(-1, 8, 4).conj() * vq, -1)) ** 2
    tone = float(A.make_loss("tone_log", 3)(ident, ident, xb))
    grp = float(A.make_loss("log", 3)(ident, ident, xb))
    assert tone == pytest.approx(np.log10(np.clip(err, 0, None) + 1e-5).mean(), abs=1e-4)
    assert grp == pytest.approx(np.log10(err.mean(-1) + 1e-5).mean(), abs=1e-4)
    assert tone < grp  # Jensen: the mean of logs is below the log of the mean
    with pytest.raises(SpecError, match="loss"):
        A.make_loss("max", 3)
    # the AE report with the SNR fields on the Ng = 16 tones
    assert A.ae_report_bits(7, snr_ng=16) == 8 * 16 * 7 + 8 + 4 * 20 == 984
    assert A.ae_report_bits(6) == 1032
    with pytest.raises(SpecError, match="snr_ng"):
        A.ae_report_bits(7, snr_ng=8)
    enc, dec = make_encoder(), make_decoder()
    va, sa = E.ae_mu_scheme(enc, dec, 7, 4)(v4, snr4)
    vb, sb = E.ae_mu_scheme(enc, dec, 7, 16)(v4, snr4)
    assert np.array_equal(va, vb) and sb.shape == sa.shape == (2, 234, 2) and not np.allclose(sa, sb)
    with pytest.raises(SpecError, match="snr_ng"):
        E.ae_mu_scheme(enc, dec, 7, 8)

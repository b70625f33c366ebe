import numpy as np
import pytest

import nnshare
from nnshare.format.errors import SpecError
from nnshare.wlan import beamforming as bf
from nnshare.wlan import mu_autoencoder as A
from nnshare.wlan import mu_experiment as E
from nnshare.wlan.autoencoder import make_encoder
from nnshare.wlan.mu_sharing import local_grid
from nnshare.wlan.sharing import receive, share


@pytest.fixture(scope="module")
def trained():
    x = E.training_features(12, 2, (20.0, 30.0), seed=3)
    enc, dec, hist = A.train(x, A.MuTrainConfig(epochs=3, batch=64, b_lat=4))
    return x, enc, dec, hist


def test_features_and_report_bits():
    ts = E.make_test_set(3, 2, seed=2)
    v4, _ = ts.sounding(25.0)
    g = np.moveaxis(v4, 2, 1).reshape(6, 64, 4, 1)
    x = A.to_features(g)
    assert x.shape == (6 * 8, 64) and x.dtype == np.float32
    # the first tone of each group is the 802.11-normalised V; the rest are phase-aligned copies
    z = x[:, :32] + 1j * x[:, 32:]
    grp = g.reshape(48, 8, 4)
    assert np.allclose(z.reshape(48, 8, 4)[:, 0], grp[:, 0], atol=1e-6)
    assert np.allclose(np.abs(np.sum(z.reshape(48, 8, 4).conj() * grp, -1)), 1.0, atol=1e-5)
    inner = np.sum(z.reshape(48, 8, 4)[:, :-1].conj() * z.reshape(48, 8, 4)[:, 1:], -1)
    assert np.all(inner.real > -1e-6) and np.allclose(inner.imag, 0, atol=1e-5)
    with pytest.raises(SpecError, match="shape"):
        A.to_features(np.zeros((2, 60, 4, 1), complex))
    # 8 groups x 16 latents x b_lat + 8-bit average SNR + 4-bit delta SNR on 64 tones
    assert A.ae_report_bits(4) == 8 * 16 * 4 + 8 + 4 * 64 == 776
    assert A.ae_report_bits(6) == 1032
    with pytest.raises(SpecError, match="loss"):
        A.MuTrainConfig(loss="mse")


def test_training_reduces_the_loss_and_feedback_is_a_steering_vector(trained):
    x, enc, dec, hist = trained
    assert len(hist) == 3 and hist[-1] < hist[0]
    ts = E.make_test_set(4, 2, seed=5)
    v4, snr4 = ts.sounding(30.0)
    v_hat = A.feedback(enc, dec, v4, 4)
    assert v_hat.shape == v4.shape
    assert np.allclose(np.linalg.norm(v_hat[..., 0], axis=-1), 1.0)
    assert np.allclose(v_hat[..., -1, 0].imag, 0, atol=1e-9) and np.all(v_hat[..., -1, 0].real >= 0)
    assert bf.sgcs(v4, v_hat).mean() > 0.3  # 3 epochs on 12 drops: learning, not good
    v, s = E.ae_mu_scheme(enc, dec, 4)(v4, snr4)
    assert v.shape == (4, 234, 2, 4, 1) and s.shape == (4, 234, 2)


def test_8bit_stream_round_trips_bit_exactly(trained):
    _, enc, _, _ = trained
    data = nnshare.encode(enc, "ptq-t8", mode="agreed")
    sh = receive("ptq-t8", data)
    assert sh.shared_bits == 27_456 and sh.total_bits == 8 * len(data)
    assert sh.shared_bits == share(enc, "ptq-t8").shared_bits
    # the decoded encoder re-encodes to the same bytes; the values are codes x scale exactly
    assert nnshare.encode(sh.encoder, "ptq-t8", mode="agreed") == data
    arrays = nnshare.decode(data, layout=nnshare.layout_of(make_encoder()))
    for name, t in sh.encoder.state_dict().items():
        assert np.array_equal(arrays[name], t.numpy())
    for name in ("0.weight", "2.weight"):
        w = dict(enc.named_parameters())[name].detach().numpy()
        s = np.abs(w).max() / 127
        q = arrays[name] / s
        assert np.abs(q - np.round(q)).max() < 1e-3 and np.abs(q).max() <= 127 + 1e-3
        assert 0 < np.abs(arrays[name] - w).max() <= s / 2 * (1 + 1e-5)
    assert np.array_equal(arrays["0.bias"], enc[0].bias.detach().numpy())  # biases stay fp32


def test_local_grid():
    g = local_grid({4: 12.1, 7: float("nan"), 11: 30.0}, lo=-0.5, hi=0.5, step=0.25)
    assert g.tolist() == [11.5, 11.75, 12.0, 12.25, 12.5, 29.5, 29.75, 30.0, 30.25, 30.5]

import numpy as np
import pytest
import torch

from nnshare import encode_tensors, inspect
from nnshare.format.errors import SpecError
from nnshare.format.spec import FloatTensor, QuantizedTensor
from nnshare.wlan import mu_autoencoder as A
from nnshare.wlan import mu_experiment as E
from nnshare.wlan.autoencoder import make_encoder
from nnshare.wlan.gptq_encoder import gptq_encoder
from nnshare.wlan.sharing import share, share_tensors


@pytest.fixture(scope="module")
def trained():
    x = E.training_features(40, 2, (15.0, 45.0), seed=5)
    enc, dec, _ = A.train(x, A.MuTrainConfig(epochs=3, batch=128, b_lat=7, loss="tone_log"))
    held = E.training_features(20, 2, (15.0, 45.0), seed=6)  # soundings GPTQ never saw
    return x, held, enc


def test_gptq_rounding_moves_held_out_latents_less_than_nearest(trained):
    x, held, enc = trained
    near = A.latent_error(enc, share(enc, "ptq-t8").encoder, held, 7)
    g = A.latent_error(enc, share_tensors("gptq-t8", gptq_encoder(enc, x)).encoder, held, 7)
    assert 0 < g["rms"] < 0.7 * near["rms"]
    assert g["flip_rate"] < near["flip_rate"]


def test_gptq_stream_is_the_ptq_t8_layout_and_round_trips(trained):
    x, _, enc = trained
    t = gptq_encoder(enc, x)
    assert list(t) == list(enc.state_dict())
    near = share(enc, "ptq-t8")
    s = share_tensors("gptq-t8", t)
    assert s.shared_bits == near.shared_bits == 27_456 and s.total_bits == near.total_bits
    assert s.payload_bits == near.payload_bits
    moved = 0
    for name, w in enc.state_dict().items():
        got = s.encoder.state_dict()[name].numpy()
        if name.endswith("weight"):
            q = t[name]
            assert isinstance(q, QuantizedTensor) and q.spec.bits == 8 and q.spec.granularity == "tensor"
            assert np.abs(q.codes).max() <= 127
            scale = np.abs(w.numpy()).max() / 127  # the same grid as ptq-t8: only the codes differ
            assert np.allclose(np.asarray(q.params["scale"]).ravel(), scale, rtol=1e-6)
            assert np.array_equal(got, q.dequantize().astype(np.float32))  # bit-exact receiver
            nearest = np.round(w.numpy() / scale)
            moved += int(np.sum(q.codes.reshape(nearest.shape) != nearest))
        else:
            assert isinstance(t[name], FloatTensor) and np.array_equal(got, t[name].values)
    assert moved > 0  # GPTQ chose codes other than the nearest ones
    data = encode_tensors(t, mode="agreed")
    assert inspect(data, into=make_encoder()).total_bits == 8 * len(data) == s.total_bits


def test_latent_error_counts_flips_and_refuses_bad_calibration(trained):
    x, held, enc = trained
    assert A.latent_error(enc, enc, held, 7) == {"rms": 0.0, "flip_rate": 0.0}
    shifted = share(enc, "float32").encoder
    with torch.no_grad():
        shifted[2].bias += 0.05  # about three 7-bit latent cells before the tanh
    e = A.latent_error(enc, shifted, held, 7)
    assert e["flip_rate"] > 0.5 and e["rms"] > 0.005
    with pytest.raises(SpecError, match="calibration"):
        gptq_encoder(enc, x[0])

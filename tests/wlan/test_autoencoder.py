import numpy as np
import pytest
import torch

from nnshare.format.errors import SpecError
from nnshare.wlan import autoencoder as ae
from nnshare.wlan import beamforming as bf
from nnshare.wlan.experiment import training_features


def test_encoder_has_exactly_3256_coefficients():
    enc = ae.make_encoder()
    sd = enc.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    weights = sum(v.numel() for k, v in sd.items() if k.endswith("weight"))
    biases = sum(v.numel() for k, v in sd.items() if k.endswith("bias"))
    assert (weights, biases, weights + biases) == (3200, 56, 3256)
    assert sum(p.numel() for p in ae.make_decoder().parameters()) == 26944


def test_features_and_orthonormal_decoder_output():
    v = bf.svd_v(np.random.default_rng(0).standard_normal((3, 64, 2, 4)) + 0j)
    x = ae.to_features(v)
    assert x.shape == (48, 64) and x.dtype == np.float32
    back = ae.features_to_v(torch.from_numpy(x)).numpy().reshape(3, 64, 4, 2)
    assert np.allclose(back, v, atol=1e-6)
    out = ae.to_v(torch.randn(5, 64)).numpy()
    assert np.allclose(out.conj().swapaxes(-1, -2) @ out, np.eye(2), atol=1e-5)
    with pytest.raises(SpecError):
        ae.to_features(v[:, :63])


def test_latent_quantizer():
    z = torch.linspace(-1, 1, 101)
    for b in (2, 3, 4):
        q = ae.quantize_latent(z, b)
        assert len(torch.unique(q)) == 2**b
        assert torch.all((q - z).abs() <= 1 / 2**b + 1e-6)
    zz = z.clone().requires_grad_(True)
    ae.quantize_latent(zz, 2, ste=True).sum().backward()
    assert torch.all(zz.grad == 1)


def test_short_training_reduces_loss_and_is_deterministic():
    x = training_features(60, "D", (20.0, 30.0), seed=3)
    cfg = ae.TrainConfig(epochs=3, batch=128, seed=1)
    enc, dec, hist = ae.train(x, cfg)
    assert hist[-1] < hist[0] - 0.05
    enc2, _, hist2 = ae.train(x, cfg)
    assert hist == hist2
    v = bf.svd_v(np.random.default_rng(1).standard_normal((2, 64, 2, 4)) + 0j)
    assert ae.feedback(enc, dec, v, 4).shape == v.shape

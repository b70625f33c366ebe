import numpy as np
import pytest
import torch

from nnshare import QuantSpec
from nnshare.mixed.output import EMBEDDING_PRIOR
from nnshare.mixed.sensitivity import estimate_sensitivity
from nnshare.mixed.tensors import fake_quantize_rows

BASE = QuantSpec(granularity="channel")
CANDS = (2, 3, 4, 8)


def test_single_linear_layer_split_is_exact():
    torch.manual_seed(0)
    lin = torch.nn.Linear(7, 5, bias=False)
    x = torch.randn(40, 7)
    calib = [x[:25], x[25:]]
    s = estimate_sensitivity(lin, "output", calib, CANDS, BASE)
    w = lin.weight.detach().numpy().astype(np.float64)
    for k, b in enumerate(CANDS):
        d = fake_quantize_rows(w.astype(np.float32), BASE, b).astype(np.float64) - w
        # Measured: the mean squared output change over all output elements.
        meas = np.sum([((c.numpy().astype(np.float64) @ d.T) ** 2).sum() for c in calib]) / 200
        assert s.tensor_loss["weight"][k] == pytest.approx(meas, rel=1e-3)
        # Split over channels by d_c Sigma d_c^T; rows add up to the measurement.
        sig = x.numpy().astype(np.float64).T @ x.numpy().astype(np.float64) / 40
        loc = np.einsum("ij,jk,ik->i", d, sig, d)
        np.testing.assert_allclose(s.channel_loss["weight"][:, k], loc / loc.sum() * meas, rtol=1e-3)
    assert np.all(np.diff(s.tensor_loss["weight"]) < 0)


def test_model_is_restored_and_outputs_power_reported():
    torch.manual_seed(1)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 5 * 5, 3),
    )
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.randn(6, 2, 5, 5)
    s = estimate_sensitivity(m, "output", [x], CANDS, BASE)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])
    assert s.info["output_power"] > 0
    for name in ("0.weight", "3.weight"):
        np.testing.assert_allclose(s.channel_loss[name].sum(0), s.tensor_loss[name], rtol=1e-9)
        assert s.channel_loss[name].shape == (m.state_dict()[name].shape[0], len(CANDS))


def test_embedding_rows_weighted_by_frequency_with_prior():
    torch.manual_seed(2)
    emb = torch.nn.Embedding(6, 4)
    ids = torch.tensor([[0, 0, 0, 1]])  # rows 2..5 never seen
    s = estimate_sensitivity(emb, "output", [ids], (2,), BASE)
    w = emb.weight.detach().numpy()
    err = ((fake_quantize_rows(w, BASE, 2) - w) ** 2).sum(1)
    freq = np.array([3, 1, 0, 0, 0, 0]) / 4
    weight = freq + EMBEDDING_PRIOR * freq.mean()
    expect = weight * err
    got = s.channel_loss["weight"][:, 0]
    np.testing.assert_allclose(got / got.sum(), expect / expect.sum(), rtol=1e-5)
    assert got[5] > 0

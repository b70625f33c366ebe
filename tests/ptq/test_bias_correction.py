import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnshare import QuantSpec, SpecError
from nnshare.ptq import bias_correction, bias_correction_analytic, fold_batchnorm, nearest
from nnshare.ptq.bias_correction import expected_relu

from .ptq_nets import images, mobile_cnn


def test_expected_relu_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mu, sd = np.array([-1.0, 0.3, 2.0]), np.array([0.5, 1.0, 1.5])
    u = rng.normal(mu, sd, size=(200_000, 3))
    assert np.allclose(expected_relu(mu, sd), np.maximum(u, 0).mean(0), atol=5e-3)
    assert np.allclose(expected_relu(mu, sd, np.full(3, 1.0)), np.clip(u, 0, 1).mean(0), atol=5e-3)


def _setup(seed=0):
    net, x = mobile_cnn(seed=seed), images(128, seed)
    fold_batchnorm(net)
    fp = copy.deepcopy(net)
    spec = QuantSpec(bits=3, granularity="channel")
    q = nearest(copy.deepcopy(net), spec)
    return net, fp, q, x


def test_empirical_bias_correction_zeroes_mean_output_error():
    net, fp, q, x = _setup()
    plain = copy.deepcopy(net)
    for k, t in q.items():
        plain.state_dict()[k].copy_(torch.from_numpy(t.dequantize()))
    corr = bias_correction(net, fp, q, [x])
    assert set(corr) == {"0", "3", "6", "11"}
    mean_err = lambda m: float((m(x) - fp(x)).mean(0).abs().mean().detach())  # noqa: E731
    assert mean_err(net) < 1e-5 < mean_err(plain)


def test_analytic_bias_correction_reduces_mean_shift():
    net, fp, q, x = _setup(1)
    plain = copy.deepcopy(net)
    for k, t in q.items():
        plain.state_dict()[k].copy_(torch.from_numpy(t.dequantize()))
    corr, skipped = bias_correction_analytic(net, q)
    assert set(corr) == {"3", "6"} and set(skipped) == {"0", "11"}  # 11 sits behind the pool
    for name in ("3", "6"):
        assert torch.equal(net.get_submodule(name).weight, plain.get_submodule(name).weight)
    # layer 3's own mean output shift, on inputs that follow the folded BN's statistics
    bn = fp[0]._nnshare_bn
    g = torch.Generator().manual_seed(0)
    u = torch.randn(4000, 8, 8, 8, generator=g).double()
    u = u * torch.from_numpy(abs(bn["gamma"]))[:, None, None] + torch.from_numpy(bn["beta"])[:, None, None]
    xin = torch.relu(u).float()
    inner = lambda m: m[3](xin)[:, :, 1:-1, 1:-1].mean((0, 2, 3))  # noqa: E731  (no padding taps)
    ref = inner(fp)
    assert (inner(net) - ref).abs().max() < 0.2 * (inner(plain) - ref).abs().max()


def test_bias_correction_needs_biases():
    net = nn.Sequential(nn.Linear(4, 3, bias=False))
    q = nearest(copy.deepcopy(net), QuantSpec(bits=4))
    with pytest.raises(SpecError, match="no bias"):
        bias_correction(net, copy.deepcopy(net), q, [torch.randn(5, 4)])

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnshare import QuantSpec, SpecError
from nnshare.ptq import ClippedReLU, absorb_bias, chains, equalize, fold_batchnorm, nearest

from .ptq_nets import images, mlp, mobile_cnn


def _ranges(w, axis):
    return w.detach().abs().movedim(axis, 0).reshape(w.shape[axis], -1).amax(1)


@pytest.mark.parametrize("act", [nn.ReLU, nn.ReLU6])
def test_cle_keeps_float_function_on_depthwise_blocks(act):
    net, x = mobile_cnn(seed=2, act=act), images(64)
    ref = net(x)
    fold_batchnorm(net)
    found = equalize(net)
    assert [(c.first, c.second) for c in found] == [("0", "3"), ("3", "6")]
    assert torch.allclose(net(x), ref, atol=1e-5, rtol=1e-4)
    if act is nn.ReLU6:
        assert isinstance(net[2], ClippedReLU) and isinstance(net[5], ClippedReLU)
    # converged: output range of layer 1 equals input range of layer 2 per channel
    r1, r2 = _ranges(net[3].weight, 0), _ranges(net[6].weight, 1)
    assert torch.allclose(r1, r2, rtol=1e-3)


def test_cle_mlp_identity_and_relu6_chain():
    net = mlp()
    net = nn.Sequential(*list(net)[:2], nn.Identity(), *list(net)[2:])
    x = torch.randn(50, 16)
    ref = net(x)
    equalize(net)
    assert torch.allclose(net(x), ref, atol=1e-5, rtol=1e-4)


def test_cle_helps_per_tensor_quantization():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).eval()
    with torch.no_grad():  # output channel ranges spread over two decades
        s = 10 ** (torch.rand(32) * 2 - 1)
        net[0].weight.mul_(s[:, None])
        net[0].bias.mul_(s)
        net[2].weight.div_(s[None, :])
    x = torch.randn(256, 16)
    ref = net(x)
    spec = QuantSpec(bits=6)
    plain = copy.deepcopy(net)
    nearest(plain, spec)
    eq = copy.deepcopy(net)
    equalize(eq)
    assert torch.allclose(eq(x), ref, atol=1e-5)
    nearest(eq, spec)
    assert (eq(x) - ref).pow(2).mean() < 0.5 * (plain(x) - ref).pow(2).mean()


def test_bias_absorption_identity_exact_and_relu_close():
    net, x = mobile_cnn(seed=5), images(64)
    ref = net(x)
    fold_batchnorm(net)
    equalize(net)
    c = absorb_bias(net)
    assert set(c) <= {"0", "3"}
    assert all(np.all(v >= 0) for v in c.values())
    # ReLU(x) = ReLU(x - c) + c wherever x >= c: at 3 sigma below the mean the output barely moves
    assert torch.allclose(net(x), ref, atol=5e-2)
    lin = nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Linear(6, 3)).eval()
    lin[1].running_mean.uniform_(-1, 1)
    lin[1].bias.data.uniform_(2, 3)
    z = torch.randn(20, 8)
    r = lin(z)
    beta = lin[1].bias.detach().clone()
    fold_batchnorm(lin)
    b0 = lin[0].bias.detach().clone()
    c = absorb_bias(lin)
    assert torch.allclose(lin(z), r, atol=1e-5)
    assert np.allclose(c["0"], beta.numpy())  # through an identity the whole BN mean moves on
    assert torch.allclose(lin[0].bias, b0 - beta, atol=1e-6)


def test_cle_refuses_unfolded_bn_and_other_activations():
    net = mobile_cnn()
    with pytest.raises(SpecError, match="fold it first"):
        equalize(net)
    tanh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert chains(tanh) == []  # not scale-equivariant: no chain found
    from nnshare.ptq import Chain

    with pytest.raises(SpecError, match="not ReLU"):
        equalize(tanh, [Chain("0", "2", act="1")])
    with pytest.raises(SpecError, match="outputs"):
        equalize(nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), [Chain("0", "1")])

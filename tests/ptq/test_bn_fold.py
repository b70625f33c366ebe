import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnshare import QuantSpec, SpecError, quantize
from nnshare.ptq import bn_pairs, fold_batchnorm, unfold_batchnorm

from .ptq_nets import images, mobile_cnn


def test_fold_keeps_float_output_and_removes_bn():
    net, x = mobile_cnn(), images()
    ref = net(x)
    folds = fold_batchnorm(net)
    assert [f.bn for f in folds] == ["1", "4", "7"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert torch.allclose(net(x), ref, atol=1e-5, rtol=1e-5)
    assert all(net[i].bias is not None for i in (0, 3, 6))


def test_unfold_restores_layout_and_function():
    net, x = mobile_cnn(seed=3), images()
    ref_state = {k: v.clone() for k, v in net.state_dict().items()}
    ref = net(x)
    folds = fold_batchnorm(net)
    unfold_batchnorm(net, folds)
    state = net.state_dict()
    assert list(state) == list(ref_state)
    for k in ref_state:
        assert torch.allclose(state[k].float(), ref_state[k].float(), atol=1e-5), k
    assert torch.allclose(net(x), ref, atol=1e-5)


def test_unfold_keeps_quantized_codes_with_rescaled_scales():
    net, x = mobile_cnn(seed=1), images()
    folds = fold_batchnorm(net)
    spec = QuantSpec(bits=4, granularity="channel", symmetric=False)
    q = {"0.weight": quantize(net[0].weight, spec)}
    net[0].weight.data.copy_(torch.from_numpy(q["0.weight"].dequantize()))
    out_folded = net(x)
    back = unfold_batchnorm(net, folds, q)
    # same codes up to the sign flip of negative-gamma channels, scales divided by |k|
    k = folds[0].k
    neg = k < 0
    assert np.array_equal(back["0.weight"].codes[~neg], q["0.weight"].codes[~neg])
    assert np.array_equal(back["0.weight"].codes[neg], spec.qmax - q["0.weight"].codes[neg])
    assert np.allclose(back["0.weight"].params["scale"], q["0.weight"].params["scale"] / np.abs(k), rtol=1e-6)
    assert isinstance(net[1], nn.BatchNorm2d)
    assert torch.allclose(net(x), out_folded, atol=1e-4)


def test_bad_pairs_are_refused():
    net = mobile_cnn()
    with pytest.raises(SpecError, match="not a BatchNorm"):
        fold_batchnorm(net, [("0", "2")])
    with pytest.raises(SpecError, match="no module"):
        fold_batchnorm(net, [("0", "nope")])
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.BatchNorm2d(4))
    with pytest.raises(SpecError, match="grouped convolution"):
        fold_batchnorm(grouped)
    wrong = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    fold_batchnorm(copy.deepcopy(wrong), [("0", "1")])  # fine
    with pytest.raises(SpecError, match="channels"):
        fold_batchnorm(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.BatchNorm1d(5)), [("0", "2")])
    assert bn_pairs(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4))) == []

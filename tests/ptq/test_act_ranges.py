import copy

import numpy as np
import pytest
import torch

from nnshare import FormatError, QuantSpec, SpecError, decode, encode_tensors
from nnshare.format import act_ranges as fmt
from nnshare.ptq import act_ranges, fold_batchnorm, nearest
from nnshare.ptq.weights import model_tensors

from .ptq_nets import images, mobile_cnn


def _sim(method, bits=8, symmetric=False):
    net, x = mobile_cnn(seed=2), images(64)
    fold_batchnorm(net)
    q = nearest(net, QuantSpec(bits=4, granularity="channel"))
    ranges = act_ranges.calibrate(net, [x[:32], x[32:]], bits=bits, method=method, symmetric=symmetric)
    act_ranges.attach(net, ranges)
    return net, q, ranges, x


@pytest.mark.parametrize("method", act_ranges.METHODS)
def test_receiver_reproduces_simulated_outputs_bit_for_bit(method):
    net, q, ranges, x = _sim(method)
    assert set(ranges) == {"0:in", "3:in", "6:in", "11:in"}
    y_sim = net(x)
    stream = encode_tensors({**model_tensors(net, q), **fmt.to_tensors(ranges)})
    rest, got = fmt.split(decode(stream))
    assert got == ranges  # the ranges round-trip exactly
    fresh = mobile_cnn(seed=9)  # the receiver's own copy of the architecture
    fold_batchnorm(fresh)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in rest.items()})
    act_ranges.attach(fresh, got)
    assert torch.equal(fresh(x), y_sim)
    act_ranges.detach(fresh)
    assert not torch.equal(fresh(x), y_sim)  # the quantizers did something


def test_numpy_receiver_quantizer_matches_torch_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(10_000, generator=g) * 3, torch.tensor([0.0, -0.0, 1e-30, 1e30, -1e30])])
    for r in (
        fmt.ActRange(0.0371, 17, 0, 255),
        fmt.ActRange(1 / 127, 0, -128, 127),
        fmt.ActRange(0.5, 3, 0, 15),
    ):
        t = act_ranges.fake_quant(x, r)
        n = fmt.fake_quantize(x.numpy(), r)
        assert np.array_equal(t.numpy().view(np.uint32), n.view(np.uint32))
        codes = np.rint(n / np.float32(r.scale)) + r.zero_point
        assert codes.min() >= r.qmin and codes.max() <= r.qmax


def test_range_methods_order_and_quality():
    torch.manual_seed(1)
    x = torch.distributions.Laplace(0.0, 1.0).sample((50_000,))  # long tails: clipping pays at 4 bits
    net = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(1, 1))
    err = {}
    for m in act_ranges.METHODS:
        r = act_ranges.calibrate(net, [x[:, None]], bits=4, method=m, symmetric=True)["1:in"]
        err[m] = float((act_ranges.fake_quant(x, r) - x).pow(2).mean())
        if m == "minmax":
            assert r.scale == pytest.approx(float(x.abs().max()) / 7, rel=1e-6)
    assert err["mse"] == min(err.values())  # MSE is what it minimises
    assert err["entropy"] < 0.5 * err["minmax"] and err["percentile"] < err["minmax"]


def test_bad_records_and_options():
    with pytest.raises(FormatError, match="scale"):
        fmt.ActRange(0.0, 0, 0, 255)
    with pytest.raises(FormatError, match="integer"):
        fmt.ActRange(1.0, 0.5, 0, 255)
    with pytest.raises(FormatError, match="empty"):
        fmt.ActRange(1.0, 0, 3, 3)
    with pytest.raises(FormatError, match="4 float32"):
        fmt.split({fmt.PREFIX + "0:in": np.zeros(3, np.float32)})
    with pytest.raises(FormatError, match="scale"):
        fmt.split({fmt.PREFIX + "0:in": np.array([np.nan, 0, 0, 255], np.float32)})
    net = mobile_cnn()
    with pytest.raises(SpecError, match="method"):
        act_ranges.calibrate(net, [images(2)], method="kl")
    with pytest.raises(SpecError, match="':in' or ':out'"):
        act_ranges.calibrate(net, [images(2)], sites=["0"])
    with pytest.raises(SpecError, match="never ran"):
        act_ranges.calibrate(copy.deepcopy(net), [images(2)], sites=["0:in"], forward=lambda m, b: b)

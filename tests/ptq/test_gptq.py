import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnshare import QuantSpec, SpecError, decode, encode_tensors, quantize
from nnshare.ptq import GPTQConfig, fold_batchnorm, gptq
from nnshare.ptq.gptq import gptq_tensor, hessian

from .ptq_nets import images, mobile_cnn

SPECS = [
    QuantSpec(bits=3, granularity="channel"),
    QuantSpec(bits=4, granularity="channel", symmetric=False),
    QuantSpec(bits=4, granularity="group", group_size=16, axis=1, symmetric=False),
    QuantSpec(bits=2, granularity="tensor", symmetric=False),
]


def _correlated(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d)
    return torch.randn(n, d, generator=g) @ mix * (torch.rand(d, generator=g) * 3 + 0.1)


@pytest.mark.parametrize(
    "spec", SPECS, ids=lambda s: f"{s.bits}b-{s.granularity}-{'sym' if s.symmetric else 'asym'}"
)
@pytest.mark.parametrize("act_order", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_gptq_never_worse_than_nearest_on_calibration_data(spec, act_order, seed):
    lin = nn.Linear(48, 20)
    torch.manual_seed(seed)
    x = _correlated(200, 48, seed)
    w = lin.weight.detach().numpy()
    q = gptq_tensor(w, hessian(lin, [x]), spec, GPTQConfig(act_order=act_order))
    near = quantize(w, spec)
    # the same grid: only the codes differ
    for k in near.params:
        assert np.array_equal(q.params[k], near.params[k])
    assert q.codes.dtype == np.int32 and q.codes.min() >= spec.qmin and q.codes.max() <= spec.qmax

    def out_err(t):
        return float(((x @ torch.from_numpy(t.dequantize() - w).T) ** 2).sum())

    assert out_err(q) <= out_err(near) * (1 + 1e-9)
    if spec.bits <= 4 and seed < 2:
        assert out_err(q) < 0.8 * out_err(near)  # and usually clearly better


def test_gptq_unguarded_beats_nearest_on_correlated_inputs():
    lin = nn.Linear(64, 32)
    x = _correlated(400, 64, 7)
    w = lin.weight.detach().numpy()
    spec = QuantSpec(bits=3, granularity="channel")
    q = gptq_tensor(w, hessian(lin, [x]), spec, GPTQConfig(guard=False))
    near = quantize(w, spec)
    e = lambda t: float(((x @ torch.from_numpy(t.dequantize() - w).T) ** 2).sum())  # noqa: E731
    assert e(q) < 0.7 * e(near)


def test_gptq_model_tensors_travel_in_ordinary_and_entropy_coded_records():
    net, x = mobile_cnn(seed=1), images(64)
    fold_batchnorm(net)
    ref_q = copy.deepcopy(net)
    spec = QuantSpec(bits=4, granularity="channel")
    out = gptq(net, spec, [x[:32], x[32:]])
    assert set(out) == {"0.weight", "3.weight", "6.weight", "11.weight"}
    for name, t in out.items():
        assert torch.equal(net.state_dict()[name], torch.from_numpy(t.dequantize()))
    for entropy in ("none", "auto"):
        arrays = decode(encode_tensors(out, entropy=entropy))
        for name, t in out.items():
            assert np.array_equal(arrays[name], t.dequantize())
    # the whole model does better than nearest on its calibration data
    from nnshare.ptq import nearest

    nearest(ref_q, spec)
    fp = mobile_cnn(seed=1)
    assert (net(x) - fp(x)).pow(2).mean() < (ref_q(x) - fp(x)).pow(2).mean()


def test_gptq_refusals():
    lin = nn.Linear(8, 4)
    with pytest.raises(SpecError, match="rounding"):
        gptq_tensor(lin.weight.detach().numpy(), np.eye(8), QuantSpec(bits=4, rounding="stochastic"))
    with pytest.raises(SpecError, match="damp"):
        GPTQConfig(damp=2.0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    with pytest.raises(SpecError, match="never ran"):
        gptq(net, QuantSpec(bits=4), [torch.randn(3, 4)], forward=lambda m, b: m[0](b))


def _mlp3(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(24, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 8)).eval()


def test_float_target_reduces_the_drifted_output_error():
    """With the float model's inputs as the target, the last layer's output error against the
    float model's output on the calibration data is below plain in-order GPTQ's."""
    x = _correlated(512, 24, 3)
    fp = _mlp3(3)
    with torch.no_grad():
        ref = fp(x)
    errs = {}
    for ft in (False, True):
        net = _mlp3(3)
        gptq(net, QuantSpec(bits=3, granularity="channel"), [x[:256], x[256:]],
             config=GPTQConfig(float_target=ft, bias_correct=ft, damp=0.1))
        with torch.no_grad():
            errs[ft] = float((net(x) - ref).pow(2).mean())
    assert errs[True] < 0.9 * errs[False]


def test_float_target_needs_in_order():
    with pytest.raises(SpecError, match="in_order"):
        gptq(nn.Linear(4, 2), QuantSpec(bits=4), [torch.randn(8, 4)],
             config=GPTQConfig(float_target=True, in_order=False))

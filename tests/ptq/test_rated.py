import numpy as np
import pytest
import torch
from torch import nn

from nnshare import SpecError, decode, encode_tensors
from nnshare.ptq import AdaRoundConfig, GPTQConfig
from nnshare.ptq.rated import rated_rounding
from nnshare.ptq.weights import capture


def _net(seed):
    """An MLP with Gaussian weights (as trained weights are, rather than uniform at init)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 32)).eval()
    for m in (net[0], net[2]):
        nn.init.normal_(m.weight, std=m.in_features**-0.5)
    return net


def _inputs(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d)
    return torch.randn(n, d, generator=g) @ mix * (torch.rand(d, generator=g) * 3 + 0.1)


def _layer_errors(fp, tensors, batches):
    """{weight name: sum over the float model's calibration inputs of ||(W_hat - W) x||^2}."""
    names = ["0", "2"]
    cap = capture(fp, names, batches)
    out = {}
    for n in names:
        x = torch.cat(cap.inputs[n]).double()
        w = fp.get_submodule(n).weight.detach().double()
        d = torch.from_numpy(tensors[f"{n}.weight"].dequantize()).double() - w
        out[n] = float(((x @ d.T) ** 2).sum())
    return out


@pytest.mark.parametrize("bpp", [2.5, 4.0])
@pytest.mark.parametrize("seed", range(2))
def test_gptq_at_rate_control_steps_never_worse_than_nearest(bpp, seed):
    fp = _net(seed)
    x = _inputs(256, 64, seed)
    batches = [x[:128], x[128:]]
    net = _net(seed)
    r = rated_rounding(net, batches, bits_per_param=bpp, config=GPTQConfig(in_order=False))
    assert r.rate.bits <= bpp * r.numel  # the nearest codes meet the target
    assert r.numel == 64 * 96 + 96 * 32
    for k, q in r.tensors.items():
        near = r.nearest[k]
        assert np.array_equal(q.params["scale"], near.params["scale"])  # the same steps
        assert q.spec == near.spec and q.codes.dtype == np.int32
        assert q.codes.min() >= q.spec.qmin and q.codes.max() <= q.spec.qmax
        assert torch.equal(net.state_dict()[k], torch.from_numpy(q.dequantize()))
    e_g, e_n = _layer_errors(fp, r.tensors, batches), _layer_errors(fp, r.nearest, batches)
    for n in e_g:
        assert e_g[n] <= e_n[n] * (1 + 1e-9)
    assert sum(e_g.values()) < 0.9 * sum(e_n.values())  # and clearly better over the model
    # entropy-coded records rebuild the GPTQ codes exactly; bits are close to the estimate
    data = encode_tensors(r.tensors, entropy="auto")
    arrays = decode(data)
    for k, q in r.tensors.items():
        assert np.array_equal(arrays[k], q.dequantize())
    assert abs(r.bits - r.nearest_bits) < 0.1 * r.nearest_bits


def test_adaround_and_nearest_at_rate_control_steps():
    x = _inputs(256, 64, 5)
    fp = _net(5)
    near_net, ada_net = _net(5), _net(5)
    near = rated_rounding(near_net, [x], bits_per_param=3.0, method="nearest")
    ada = rated_rounding(ada_net, [x], rate=near.rate, method="adaround",
                         config=AdaRoundConfig(iters=100, batch=64))
    assert ada.rate is near.rate
    for k in near.tensors:
        assert near.tensors[k] is near.nearest[k]
        assert np.array_equal(ada.tensors[k].params["scale"], near.tensors[k].params["scale"])
        assert np.array_equal(ada.nearest[k].codes, near.tensors[k].codes)  # same rate control
    assert near.bits == near.nearest_bits
    with torch.no_grad():
        ref = fp(x)
        err_ada = (ada_net(x) - ref).pow(2).mean()
        err_near = (near_net(x) - ref).pow(2).mean()
    assert err_ada < err_near


def test_rated_rounding_refusals():
    x = _inputs(16, 64, 0)
    with pytest.raises(SpecError, match="rounding method"):
        rated_rounding(_net(0), [x], bits_per_param=3.0, method="tcq")
    with pytest.raises(SpecError, match="GPTQConfig"):
        rated_rounding(_net(0), [x], bits_per_param=3.0, config=AdaRoundConfig())
    with pytest.raises(SpecError, match="exactly one target"):
        rated_rounding(_net(0), [x], method="nearest")
    r = rated_rounding(_net(0), [x], bits_per_param=3.0, method="nearest")
    with pytest.raises(SpecError, match="not both"):
        rated_rounding(_net(0), [x], bits_per_param=3.0, rate=r.rate)
    with pytest.raises(SpecError, match="other tensors"):
        rated_rounding(_net(0), [x], rate=r.rate, names=["0"])
    with pytest.raises(SpecError, match="no Linear"):
        rated_rounding(nn.Sequential(nn.ReLU()), [x], bits_per_param=3.0)

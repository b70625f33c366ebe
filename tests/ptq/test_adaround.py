import numpy as np
import pytest
import torch
from torch import nn

from nnshare import QuantSpec, SpecError, quantize
from nnshare.ptq import AdaRoundConfig, adaround
from nnshare.ptq.adaround import SoftRound, beta_at, h_of, optimize_layer
from nnshare.ptq.weights import grid

SPECS = [
    QuantSpec(bits=4, granularity="channel"),
    QuantSpec(bits=3, granularity="group", group_size=8, axis=1, symmetric=False),
    QuantSpec(bits=2, symmetric=False, range_method="mse"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.bits}b-{s.granularity}-{s.range_method}")
def test_initialisation_reproduces_nearest_rounding(spec):
    w = torch.randn(24, 40, generator=torch.Generator().manual_seed(1)).numpy()
    g = grid(w, spec)
    sr = SoftRound(w, g)
    u = torch.from_numpy(w) / torch.from_numpy(g.scale.astype(np.float32))  # float32, as SoftRound
    frac = (u - torch.floor(u)).numpy()
    assert np.allclose(h_of(sr.v).detach().numpy(), frac, atol=1e-5)  # h(V) = fractional part
    near = quantize(w, spec)
    tie = np.abs(frac - 0.5) < 1e-4
    assert not tie.all()
    assert np.array_equal(g.tensor(sr.codes()).codes[~tie], near.codes[~tie])
    assert np.allclose(sr.weight(hard=True).numpy()[~tie], near.dequantize()[~tie], atol=1e-6)


def test_beta_schedule():
    cfg = AdaRoundConfig(iters=100)
    assert beta_at(0, cfg) is None and beta_at(19, cfg) is None
    assert beta_at(20, cfg) == pytest.approx(20.0)
    assert beta_at(100, cfg) == pytest.approx(2.0)
    assert 2.0 < beta_at(60, cfg) < 20.0


def test_adaround_lowers_layer_reconstruction_error():
    torch.manual_seed(0)
    lin = nn.Linear(32, 16)
    g = torch.Generator().manual_seed(7)
    mix = torch.randn(32, 32, generator=g) / 32**0.5 + torch.eye(32)  # correlated inputs
    x = torch.randn(512, 32, generator=g) @ mix * (torch.rand(32, generator=g) * 3 + 0.1)
    spec = QuantSpec(bits=3, granularity="channel")
    q = optimize_layer(lin, spec, x, x, nn.ReLU(), AdaRoundConfig(iters=400, batch=128))
    near = quantize(lin.weight, spec)
    for k in near.params:
        assert np.array_equal(q.params[k], near.params[k])
    w = lin.weight.detach()

    def err(t):
        y = torch.relu(x @ torch.from_numpy(t.dequantize()).T + lin.bias)
        return float((y - torch.relu(x @ w.T + lin.bias)).pow(2).sum().detach())

    assert err(q) < 0.8 * err(near)
    # codes differ from floor by 0 or 1 only
    fl = np.floor(w.numpy() / near.params["scale"][:, None])
    assert set(np.unique(q.codes - fl)) <= {0.0, 1.0}


def test_adaround_on_a_model_and_refusals():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(64, 10)
    out = adaround(net, QuantSpec(bits=4, granularity="channel"), [x], config=AdaRoundConfig(iters=50))
    assert set(out) == {"0.weight", "2.weight"}
    assert torch.equal(net[2].weight, torch.from_numpy(out["2.weight"].dequantize()))
    with pytest.raises(SpecError):
        AdaRoundConfig(warm_start=1.0)
    with pytest.raises(SpecError, match="Linear"):
        adaround(net, QuantSpec(bits=4), [x], names=["1"])

import numpy as np
import pytest
import torch
from torch import nn

from nnshare import QuantSpec, SpecError
from nnshare.ptq import GPTQConfig, gptq
from nnshare.ptq.descent import descend
from nnshare.ptq.gptq import damped, gptq_codes, gptq_tensor, hessian, row_errors
from nnshare.ptq.weights import grid

SPEC = QuantSpec(bits=4, granularity="group", group_size=16, axis=1, symmetric=False, range_method="mse")


def _problem(seed, rows=24, cols=48, n=300):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cols)) @ (np.eye(cols) + rng.standard_normal((cols, cols)) / cols**0.5)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    return w, 2.0 * x.T @ x / n


@pytest.mark.parametrize("seed", range(4))
def test_descent_never_raises_any_rows_objective_and_lowers_gptqs(seed):
    w, h = _problem(seed)
    g = grid(w, SPEC)
    args = (g.scale, g.zero, g.qmin, g.qmax)
    hd = damped(h, 0.01)
    for start in (g.nearest(w), gptq_codes(w, h, *args, GPTQConfig(damp=0.01))):
        out = descend(start, w, hd, *args, sweeps=3)
        assert np.array_equal(out, np.rint(out)) and out.min() >= g.qmin.min() and out.max() <= g.qmax.max()
        before, after = row_errors(w, g.dequantize(start), hd), row_errors(w, g.dequantize(out), hd)
        assert np.all(after <= before * (1 + 1e-12))
        assert after.sum() < 0.97 * before.sum()  # correlated inputs: moves that help exist
    assert np.array_equal(descend(start, w, hd, *args, sweeps=0), start)


def test_descent_stops_at_a_local_minimum():
    w, h = _problem(9)
    g = grid(w, SPEC)
    args = (g.scale, g.zero, g.qmin, g.qmax)
    c = descend(g.nearest(w), w, h, *args, sweeps=50)
    assert np.array_equal(descend(c, w, h, *args, sweeps=1), c)
    e = row_errors(w, g.dequantize(c), h)
    for j in (0, 17, 47):  # no single +-1 move of a code lowers a row's objective
        for t in (-1.0, 1.0):
            c2 = c.copy()
            c2[:, j] = np.clip(c2[:, j] + t, g.qmin[:, j], g.qmax[:, j])
            assert np.all(row_errors(w, g.dequantize(c2), h) >= e * (1 - 1e-12))


def test_gptq_with_descent_and_clip_on_a_layer():
    torch.manual_seed(0)
    lin = nn.Linear(48, 24)
    w, _ = _problem(3)
    x = np.random.default_rng(3).standard_normal((300, 48)) @ np.diag(np.linspace(0.1, 3, 48))
    x = torch.from_numpy(x).float()
    h = hessian(lin, [x])
    err = lambda q: float(row_errors(w, q.dequantize(), h).sum())  # noqa: E731
    plain = gptq_tensor(w, h, SPEC, GPTQConfig())
    desc = gptq_tensor(w, h, SPEC, GPTQConfig(descent=2))
    assert err(desc) < err(plain)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
    m = nn.Sequential(lin)
    q = gptq(m, SPEC, [x], config=GPTQConfig(clip=True, descent=2))["0.weight"]
    assert err(q) < err(plain)  # diag(H)-weighted ranges + descent beat the spec's MSE range alone
    with pytest.raises(SpecError, match="fixed grids"):
        gptq(m, SPEC, [x], config=GPTQConfig(clip=True), grids={"0": grid(w, SPEC)})
    with pytest.raises(SpecError, match="descent"):
        GPTQConfig(descent=-1)
    with pytest.raises(SpecError, match="sweeps"):
        descend(np.zeros((1, 2)), np.zeros((1, 2)), np.eye(2), 1.0, 0.0, 0, 15, sweeps=-1)


def test_gptq_descent_on_depthwise_and_dense_convolutions():
    from nnshare.ptq import fold_batchnorm, nearest

    from .ptq_nets import images, mobile_cnn

    x = images(64)
    fp = mobile_cnn(seed=2)
    errs = {}
    for name, how in (("nearest", None), ("gptq", 0), ("descent", 2)):
        net = mobile_cnn(seed=2)
        fold_batchnorm(net)
        spec = QuantSpec(bits=3, granularity="channel")
        out = nearest(net, spec) if how is None else gptq(net, spec, [x], config=GPTQConfig(descent=how))
        assert set(out) == {"0.weight", "3.weight", "6.weight", "11.weight"}  # depthwise 3 included
        with torch.no_grad():
            errs[name] = float((net(x) - fp(x)).pow(2).mean())
    assert errs["descent"] < errs["nearest"] and errs["gptq"] < errs["nearest"]

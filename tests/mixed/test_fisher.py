import numpy as np
import pytest
import torch

from nnshare import QuantSpec
from nnshare.mixed.fisher import fisher_diagonal
from nnshare.mixed.sensitivity import estimate_sensitivity
from nnshare.mixed.tensors import channel_errors, select_tensors


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def batches():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 6, generator=g)
    y = torch.randint(0, 3, (20,), generator=g)
    return [(x[:12], y[:12]), (x[12:], y[12:])]


def test_fisher_is_mean_squared_per_sample_gradient():
    m = mlp()
    tensors, _ = select_tensors(m)
    loss_fn = torch.nn.functional.cross_entropy
    fast, n = fisher_diagonal(m, batches(), tensors, loss_fn, None, 100)  # torch.func path
    slow, _ = fisher_diagonal(m, batches(), tensors, loss_fn, lambda mod, x: mod(x), 100)  # loop
    assert n == 20
    # Reference by hand: one backward per sample.
    ref = [np.zeros(t.shape) for t in tensors]
    for x, y in batches():
        for i in range(len(y)):
            m.zero_grad()
            loss_fn(m(x[i : i + 1]), y[i : i + 1]).backward()
            for r, t in zip(ref, tensors, strict=True):
                r += dict(m.named_parameters())[t.name].grad.double().numpy() ** 2
    for f, s, r in zip(fast, slow, ref, strict=True):
        np.testing.assert_allclose(f, r / 20, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(s, r / 20, rtol=1e-5, atol=1e-12)


def test_fisher_sensitivity_weights_errors():
    m = mlp()
    base = QuantSpec(granularity="channel")
    s = estimate_sensitivity(m, "fisher", batches(), (2, 3, 8), base, max_per_sample=7)
    tensors, _ = select_tensors(m)
    f, n = fisher_diagonal(m, batches(), tensors, torch.nn.functional.cross_entropy, None, 7)
    assert n == 7
    w = m.state_dict()["0.weight"].numpy()
    expect = 0.5 * channel_errors(w, base, (2, 3, 8), weight=f[0])
    np.testing.assert_allclose(s.channel_loss["0.weight"], expect, rtol=1e-5)
    assert np.all(np.diff(s.tensor_loss["0.weight"]) < 0)  # more bits, less predicted loss
    assert s.info["n_samples"] == 7


def test_fisher_leaves_model_unchanged():
    m = mlp()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    estimate_sensitivity(m, "fisher", batches())
    assert m.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("method", ["hessian", "fisher"])
def test_buffers_are_not_parameters(method):
    from nnshare.mixed.tensors import select_tensors

    m = mlp()
    m.register_buffer("table", torch.ones(3, 3))
    quant, keep = select_tensors(m)  # a float buffer is role "buffer": never a weight
    assert "table" not in {t.name for t in quant} and "table" in {t.name for t in keep}
    sens = estimate_sensitivity(m, method, batches())
    assert "table" not in sens.tensor_loss

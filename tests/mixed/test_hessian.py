import numpy as np
import pytest
import torch

from nnshare import QuantSpec
from nnshare.format.errors import SpecError
from nnshare.mixed.hessian import hutchinson_diagonal
from nnshare.mixed.sensitivity import estimate_sensitivity
from nnshare.mixed.tensors import channel_errors


class Quadratic(torch.nn.Module):
    """Returns its parameters flattened; the loss 1/2 w^T A w is applied by loss_fn."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = torch.nn.Parameter(torch.randn(2, 3, generator=g, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.randn(4, 2, generator=g, dtype=torch.float64))

    def forward(self, x):
        return torch.cat([self.a.reshape(-1), self.b.reshape(-1)])


def quad_loss(matrix):
    return lambda out, _y: 0.5 * out @ matrix @ out


DATA = [(torch.zeros(1), torch.zeros(1))]


def test_diagonal_hessian_trace_is_exact_with_one_probe():
    m = Quadratic()
    d = torch.arange(1, 15, dtype=torch.float64)
    diag, traces = hutchinson_diagonal(m, DATA, [m.a, m.b], quad_loss(torch.diag(d)), None, n_samples=1)
    np.testing.assert_allclose(diag[0].reshape(-1), d[:6].numpy())
    np.testing.assert_allclose(diag[1].reshape(-1), d[6:].numpy())
    assert traces[0][0] == pytest.approx(21.0) and traces[1][0] == pytest.approx(84.0)


def test_dense_hessian_trace_converges():
    m = Quadratic()
    g = torch.Generator().manual_seed(1)
    r = torch.randn(14, 14, generator=g, dtype=torch.float64)
    a = r @ r.T + torch.eye(14, dtype=torch.float64)
    diag, traces = hutchinson_diagonal(m, DATA, [m.a, m.b], quad_loss(a), None, n_samples=400)
    for blk, sl in ((0, slice(0, 6)), (1, slice(6, 14))):
        true = float(torch.trace(a[sl, sl]))
        se = traces[blk].std(ddof=1) / np.sqrt(traces[blk].size)
        assert abs(diag[blk].sum() - true) < 5 * se + 1e-9


def test_hawq_sensitivity_formula():
    m = Quadratic()
    d = torch.arange(1, 15, dtype=torch.float64)
    base = QuantSpec(granularity="channel")
    s = estimate_sensitivity(m, "hessian", DATA, (2, 4), base, loss_fn=quad_loss(torch.diag(d)), n_samples=1)
    err_a = channel_errors(m.a.detach().numpy(), base, (2, 4))
    # Omega = 1/2 * Tr(H)/n * ||Q(W) - W||^2; per channel with the channel's own trace.
    np.testing.assert_allclose(s.tensor_loss["a"], 0.5 * 21 / 6 * err_a.sum(0), rtol=1e-6)
    ch_avg = np.array([(1 + 2 + 3) / 3, (4 + 5 + 6) / 3])
    np.testing.assert_allclose(s.channel_loss["a"], 0.5 * ch_avg[:, None] * err_a, rtol=1e-6)
    assert s.info["traces"]["b"]["trace"] == pytest.approx(84.0)


def test_hessian_needs_labelled_batches():
    m = Quadratic()
    with pytest.raises(SpecError):
        estimate_sensitivity(m, "hessian", [torch.zeros(1)], loss_fn=quad_loss(torch.eye(14)))
    with pytest.raises(SpecError):
        estimate_sensitivity(m, "hessian", None)
    with pytest.raises(SpecError):
        estimate_sensitivity(m, "curvature", DATA)


def test_channel_traces_shrink_towards_the_tensor_mean():
    from nnshare.mixed.hessian import shrink_channel_traces

    rng = np.random.default_rng(0)
    # Pure noise around one common trace: all channels move (almost) to the common mean.
    noise = 5.0 + rng.normal(0, 3, (32, 200))
    out = shrink_channel_traces(noise)
    assert np.ptp(out) < 0.2 * np.ptp(noise.mean(0))
    assert out.mean() == pytest.approx(noise.mean(), rel=1e-3)
    # Well-separated true traces with little noise are kept.
    sep = np.array([1.0, 10, 100, 1000])[None, :] + rng.normal(0, 0.01, (32, 4))
    np.testing.assert_allclose(shrink_channel_traces(sep), sep.mean(0), rtol=1e-3)

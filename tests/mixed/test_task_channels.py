"""Per-channel steps of the task budget: the Gauss-Newton diagonal, the predicted saving, the
channel quantizer and the search using them."""

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare.format.container import read_stream
from nnshare.mixed import compress
from nnshare.mixed.task_channels import SCALE_BITS, channel_gain, choose_channels, output_fisher_diag
from nnshare.mixed.task_rate import quantize_channels, write_steps
from nnshare.mixed.task_weights import TaskWeights
from nnshare.state import model_state


def test_fisher_diag_of_a_linear_layer_is_the_input_energy():
    """y = W x: d y_i / d W_ij = x_j, so diag(J^T J)[i, j] = sum_n x_nj^2 for every row i."""
    torch.manual_seed(0)
    lin = nn.Linear(5, 3, bias=False)
    x = torch.randn(40, 5) * torch.tensor([0.1, 1.0, 2.0, 0.5, 3.0])
    f = output_fisher_diag(lin, [x], probes=400)["weight"]
    expect = (x.double() ** 2).sum(0).numpy()
    assert f.shape == (3, 5)
    np.testing.assert_allclose(f.mean(0), expect, rtol=0.15)
    assert all(p.requires_grad for p in lin.parameters())  # flags restored


def test_channel_gain_is_the_high_rate_saving():
    f = np.array([[1.0] * 6, [4.0] * 6])  # row 1 four times as sensitive
    c = channel_gain(f, 0)
    np.testing.assert_allclose(c.rel, [0.4, 1.6])
    assert c.saving_bits == pytest.approx(-0.5 * 6 * (np.log2(0.4) + np.log2(1.6)))
    assert c.side_bits == 2 * SCALE_BITS
    assert channel_gain(f, 1).saving_bits == pytest.approx(0.0)  # columns all alike
    assert channel_gain(np.zeros((2, 3)), 0) is None
    # kept only where the saving pays for the scales (twice over), on the better axis
    arrays = {"w": np.ones((2, 60), np.float32), "v": np.ones((2, 6), np.float32),
              "b": np.ones(6, np.float32)}
    big = np.array([[1.0] * 60, [400.0] * 60])  # saves ~200 bits for 32 bits of scales
    got = choose_channels(arrays, {"w": big, "v": f, "b": np.ones(6)})
    assert set(got) == {"w"} and got["w"].axis == 0


@pytest.mark.parametrize("method", ["tcq", "nearest"])
def test_channel_steps_round_trip_exactly(method):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(12, 20)) * rng.uniform(0.01, 2.0, (12, 1))).astype(np.float32)
    steps = np.abs(x).max(axis=1) / 9
    for axis, s in ((0, steps), (1, np.full(20, 0.05))):
        q = quantize_channels(x, s, axis, method)
        assert q.spec.granularity == "channel" and q.spec.axis == axis and q.spec.scale_dtype == "bf16"
        assert q.params["scale"].shape == (x.shape[axis],)
        err = np.abs(q.dequantize() - x)
        step_of = q.params["scale"][:, None] if axis == 0 else q.params["scale"][None, :]
        assert np.all(err <= (0.5 if method == "nearest" else 1.5) * step_of + 1e-7)
        st = model_state({"w": x})
        data = write_steps(st, {"w": q})
        np.testing.assert_array_equal(read_stream(data).tensors["w"].dequantize(), q.dequantize())


def rows_apart(seed=0):
    """A layer whose output rows are read with weights 30 and 0.03: its rows differ in
    sensitivity by 10^6, which one step per tensor cannot follow."""
    torch.manual_seed(seed)
    lin = nn.Linear(32, 96)
    mix = nn.Linear(96, 4, bias=False)
    with torch.no_grad():
        mix.weight.copy_(torch.randn(4, 96) * torch.where(torch.arange(96) < 48, 30.0, 0.03))
    return nn.Sequential(lin, nn.Tanh(), mix).eval()


def test_compress_uses_channel_steps_where_rows_differ():
    model = rows_apart()
    x = torch.randn(128, 32, generator=torch.Generator().manual_seed(1))
    ref = model(x).detach().reshape(-1)

    def cos(m):
        with torch.no_grad():
            return float(nn.functional.cosine_similarity(m(x).reshape(-1), ref, dim=0))

    r = compress(model, cos, max_drop=1e-3, relative=False, calibration=[x])
    assert r.weights.channels["0.weight"].axis == 0
    assert r.family == "channel" and np.ndim(r.plan["0.weight"]) == 1
    assert cos(nnshare.decode(r.data, into=rows_apart())) == pytest.approx(r.metric)
    assert r.metric >= r.reference - 1e-3
    no_channels = TaskWeights("output", r.weights.weights)
    per_tensor = compress(model, cos, max_drop=1e-3, relative=False, sensitivity=no_channels)
    assert r.nbytes < 0.9 * per_tensor.nbytes


def test_embedding_rows_keep_one_step():
    """An embedding row the calibration never looks up has a zero diagonal: it is not thereby
    insensitive, so embedding tables keep one step per tensor."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(50, 16), nn.Flatten(), nn.Linear(4 * 16, 8)).eval()
    x = torch.randint(0, 10, (64, 4))  # rows 10..49 never used
    f = output_fisher_diag(model, [x])
    assert np.all(f["0.weight"][10:] == 0) and np.all(f["0.weight"][:10].sum(1) > 0)
    w = nnshare.mixed.task_weights(model, "output", [x])
    assert "0.weight" not in w.channels

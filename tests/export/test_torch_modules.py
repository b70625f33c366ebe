"""nnshare.torch.load_quantized: codes in memory, outputs equal to the dequantized float model."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare import QuantSpec
from nnshare.digits import accuracy, digits_cnn
from nnshare.format import FormatError
from nnshare.torch import QuantConv, QuantEmbedding, QuantLinear, load_quantized, resident_bytes

SPECS = [
    QuantSpec(bits=8, granularity="channel"),
    QuantSpec(bits=4, granularity="group", group_size=32, axis=1, symmetric=False),
    QuantSpec(bits=3, granularity="group", group_size=5, axis=1),  # ragged last group
    QuantSpec(bits=4, granularity="tensor", symmetric=False, scale_dtype="fp16"),
    QuantSpec(bits=6, granularity="channel", symmetric=False),
    QuantSpec(bits=12, granularity="channel"),
]


def _plan(model, spec):
    return {n: spec for n, p in model.state_dict().items() if p.ndim >= 2}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"b{s.bits}-{s.granularity}-{s.symmetric}")
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_outputs_equal_dequantized_model(request, digits, which, spec):
    model = request.getfixturevalue(f"trained_{which}")
    _, _, xte, yte = digits
    data = nnshare.encode(model, _plan(model, spec))
    ref = nnshare.decode(data, into=copy.deepcopy(model))
    q = load_quantized(copy.deepcopy(model), data)
    kinds = [type(m) for m in q.modules() if isinstance(m, QuantLinear | QuantConv)]
    assert len(kinds) == (3 if which == "mlp" else 4)
    with torch.no_grad():
        assert torch.equal(q(xte), ref(xte))
    if spec.bits >= 4:
        assert accuracy(q, xte, yte) > 0.85


def test_resident_memory_drops_with_the_stream(trained_mlp):
    spec = QuantSpec(bits=4, granularity="group", group_size=32, axis=1)
    q = load_quantized(copy.deepcopy(trained_mlp), nnshare.encode(trained_mlp, _plan(trained_mlp, spec)))
    want = 0
    for p in trained_mlp.parameters():
        if p.ndim == 2:
            rows, cols = p.shape
            g = min(32, cols)
            blocks = rows * math.ceil(cols / g)
            want += blocks * math.ceil(g / 2) + 4 * blocks  # nibbles + fp32 scale per block
        else:
            want += 4 * p.numel()
    assert resident_bytes(q) == want
    assert resident_bytes(q) < 0.2 * resident_bytes(trained_mlp)


EMB = [
    QuantSpec(bits=4, granularity="group", group_size=6, axis=1, symmetric=False),  # row gather
    QuantSpec(bits=8, granularity="channel", axis=0),  # row gather
    QuantSpec(bits=3, granularity="group", group_size=8, axis=0),  # whole table
    QuantSpec(bits=5, granularity="tensor", symmetric=False),
]


@pytest.mark.parametrize("spec", EMB, ids=lambda s: f"b{s.bits}-{s.granularity}-{s.axis}")
def test_meta_skeleton_and_embedding(spec):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 8), nn.LayerNorm(8))
    data = nnshare.encode(model, _plan(model, spec))
    ref = nnshare.decode(data, into=copy.deepcopy(model))
    with torch.device("meta"):
        skeleton = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 8), nn.LayerNorm(8))
    q = load_quantized(skeleton, data)
    assert isinstance(q[0], QuantEmbedding) and isinstance(q[1], QuantLinear)
    assert all(t.device.type == "cpu" for t in list(q.parameters()) + list(q.buffers()))
    idx = torch.tensor([[1, 7, 49], [0, 3, 3]])
    with torch.no_grad():
        assert torch.equal(q(idx), ref(idx))
    assert torch.equal(q[1].weight, ref[1].weight)
    assert torch.equal(q[0].qweight.dequantize_rows(idx), ref[0].weight[idx])
    with torch.device("meta"):
        skeleton = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 8), nn.LayerNorm(8))
    skeleton[2].register_buffer("pos", torch.zeros(3, device="meta"), persistent=False)
    with pytest.raises(FormatError, match=r"still on the meta device: \['2.pos'\]"):
        load_quantized(skeleton, data)


def test_agreed_mode_and_bad_streams(trained_cnn):
    spec = QuantSpec(bits=8, granularity="channel")
    data = nnshare.encode(trained_cnn, _plan(trained_cnn, spec), mode="agreed")
    q = load_quantized(digits_cnn(seed=5), data)
    x = torch.rand(3, 64)
    with torch.no_grad():
        assert torch.equal(q(x), nnshare.decode(data, into=digits_cnn(seed=7))(x))
    other = nn.Sequential(nn.Linear(64, 10))
    with pytest.raises(FormatError):
        load_quantized(other, data)
    part = nnshare.encode({"0.weight": torch.randn(10, 64)}, {"0.weight": spec})
    with pytest.raises(FormatError, match="lacks"):
        load_quantized(nn.Sequential(nn.Linear(64, 10)), part)
    wrong = nnshare.encode({"0.weight": torch.randn(10, 32), "0.bias": torch.randn(10)})
    with pytest.raises(FormatError, match="shape"):
        load_quantized(nn.Sequential(nn.Linear(64, 10)), wrong)
    with pytest.raises(FormatError):
        load_quantized(nn.Sequential(nn.Linear(64, 10)), b"garbage")
    assert np.isfinite(resident_bytes(q))

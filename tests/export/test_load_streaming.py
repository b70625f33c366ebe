"""load_quantized decodes one record at a time, packed codes straight into their storage."""

import copy
import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare import QuantSpec
from nnshare.format import read_stream, write_stream
from nnshare.format.lazy import LazyTensor
from nnshare.quant import quantize
from nnshare.torch import QuantLinear, QuantWeight, load_quantized

SPECS = [
    QuantSpec(bits=4, granularity="group", group_size=32, axis=1, symmetric=False),
    QuantSpec(bits=3, granularity="group", group_size=5, axis=1),  # ragged last group
    QuantSpec(bits=2, granularity="group", group_size=4, axis=0, symmetric=False),  # group axis 0
    QuantSpec(bits=4, granularity="group", group_size=7, axis=1),  # odd block length
    QuantSpec(bits=1, granularity="tensor", symmetric=False),
    QuantSpec(bits=4, granularity="channel", axis=1, restricted=True),
    QuantSpec(bits=8, granularity="channel"),
    QuantSpec(bits=6, granularity="channel", symmetric=False),
    QuantSpec(bits=12, granularity="tensor"),
    QuantSpec(bits=16, granularity="channel", symmetric=False),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"b{s.bits}-{s.granularity}{s.axis}-{s.symmetric}")
@pytest.mark.parametrize("chunk", [1, 50, 1 << 18])
def test_packed_codes_give_the_same_quantized_weight(spec, chunk):
    x = np.random.default_rng(spec.bits).normal(size=(23, 45)).astype(np.float32)
    data, _ = write_stream({"w": quantize(x, spec)})
    eager = QuantWeight(read_stream(data).tensors["w"])
    packed = read_stream(data, lazy=True).tensors["w"].packed
    streamed = QuantWeight(packed, chunk=chunk)
    assert streamed.codes.dtype == eager.codes.dtype
    assert torch.equal(streamed.codes, eager.codes)
    assert torch.equal(streamed.scale, eager.scale)
    assert torch.equal(streamed.dequantize(), eager.dequantize())
    want = torch.from_numpy(read_stream(data).tensors["w"].dequantize())
    assert torch.equal(streamed.dequantize(), want)


@pytest.mark.parametrize("entropy", ["none", "auto"])
def test_entropy_coded_and_float_records_load_like_decode(trained_mlp, digits, entropy):
    _, _, xte, _ = digits
    spec = QuantSpec(bits=4, granularity="channel")
    plan = {n: spec for n, p in trained_mlp.state_dict().items() if p.ndim == 2}
    data = nnshare.encode(trained_mlp, plan, entropy=entropy)
    lazy = [t for t in read_stream(data, lazy=True).tensors.values() if isinstance(t, LazyTensor)]
    coded = sum(t.packed is None for t in lazy)  # entropy-coded: decoded whole, one record at a time
    assert len(lazy) == 3 and (coded >= 1 if entropy == "auto" else coded == 0)
    ref = nnshare.decode(data, into=copy.deepcopy(trained_mlp))
    q = load_quantized(copy.deepcopy(trained_mlp), data)
    assert sum(isinstance(m, QuantLinear) for m in q.modules()) == 3
    with torch.no_grad():
        assert torch.equal(q(xte), ref(xte))


def test_loading_never_holds_the_codes_as_int32():
    """A 4M-weight layer at 4 bits: its int32 codes alone would take 16 MiB; loading it (stream
    already in memory) allocates at most half of that in numpy (tracemalloc sees numpy data)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1024, 4096, bias=False))
    spec = QuantSpec(bits=4, granularity="group", group_size=32, axis=1, symmetric=False)
    data = nnshare.encode(model, {"0.weight": spec})
    ref = nnshare.decode(data, into=copy.deepcopy(model))
    with torch.device("meta"):
        skeleton = nn.Sequential(nn.Linear(1024, 4096, bias=False))
    tracemalloc.start()
    try:
        q = load_quantized(skeleton, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = 4096 * 1024
    assert peak < 4 * n // 2
    assert peak > n // 2  # the packed nibbles themselves are numpy-allocated (a real measurement)
    x = torch.randn(3, 1024)
    with torch.no_grad():
        assert torch.equal(q(x), ref(x))

import dataclasses

import numpy as np
import pytest
import torch

from nnshare import QuantSpec, encode_tensors, quantize
from nnshare.format.errors import SpecError
from nnshare.format.spec import FloatTensor, RawTensor
from nnshare.mixed.cost import (
    float_record_bits,
    header_bits,
    quant_record_bits,
    raw_record_bits,
    size_model,
)
from nnshare.mixed.tensors import select_tensors

SPECS = [
    QuantSpec(bits=3),
    QuantSpec(bits=5, granularity="channel"),
    QuantSpec(bits=4, granularity="channel", symmetric=False, scale_dtype="fp16"),
    QuantSpec(bits=7, granularity="channel", channel_bits=(2, 7, 3, 3, 5)),
    QuantSpec(
        bits=6, granularity="channel", symmetric=False, channel_bits=(6, 2, 3, 4, 5), scale_dtype="bf16"
    ),
    QuantSpec(bits=4, granularity="group", group_size=4, axis=1),
]


@pytest.mark.parametrize("mode", ["self", "agreed"])
def test_exact_bits_match_the_encoder(mode):
    rng = np.random.default_rng(0)
    tensors = {}
    for i, spec in enumerate(SPECS):
        w = rng.normal(size=(5, 7)).astype(np.float32)
        tensors[f"layer{i}.weight"] = quantize(w, spec)
    tensors["bias"] = FloatTensor(rng.normal(size=11).astype(np.float32), "fp32")
    tensors["half"] = FloatTensor(rng.normal(size=3).astype(np.float32), "fp16")
    tensors["steps"] = RawTensor(np.arange(3, dtype=np.int64))
    data = encode_tensors(tensors, mode)
    layout = [(n, t.shape) for n, t in tensors.items()]
    ours = header_bits(layout, mode)
    for t in tensors.values():
        if isinstance(t, FloatTensor):
            ours += float_record_bits(t.values.size, t.dtype)
        elif isinstance(t, RawTensor):
            ours += raw_record_bits(t.values.size, t.values.dtype.itemsize)
        else:
            ours += quant_record_bits(t.shape, t.spec)
    assert ours == 8 * len(data)


def test_size_model_bounds_the_stream_within_padding():
    model = torch.nn.Sequential(torch.nn.Linear(13, 9), torch.nn.ReLU(), torch.nn.Linear(9, 3))
    quant, keep_info = select_tensors(model)
    keep = [(t.name, t.shape, "fp32") for t in keep_info]
    cands = (2, 3, 4, 6)
    rng = np.random.default_rng(1)
    for base in (
        QuantSpec(granularity="channel"),
        QuantSpec(granularity="channel", symmetric=False, scale_dtype="fp16"),
    ):
        sm = size_model(quant, keep, base, cands, "channel")
        assert sm.cost.shape == (12, 4)
        for _ in range(5):
            choice = rng.integers(0, 4, 12)
            widths = np.asarray(cands)[choice]
            tensors = {}
            for i, t in enumerate(quant):
                cb = tuple(int(x) for x in widths[sm.unit_tensor == i])
                spec = dataclasses.replace(base, bits=max(cb), channel_bits=cb)
                tensors[t.name] = quantize(model.state_dict()[t.name], spec)
            for name, _, _ in keep:
                tensors[name] = FloatTensor(model.state_dict()[name].numpy(), "fp32")
            order = list(model.state_dict())
            exact = 8 * len(encode_tensors({n: tensors[n] for n in order}, "self"))
            predicted = sm.fixed + sm.cost[np.arange(12), choice].sum()
            pad_fields = len(quant) * (2 if not base.symmetric else 1)
            assert exact <= predicted <= exact + 7 * pad_fields


def test_size_model_rejects_bad_requests():
    model = torch.nn.Linear(4, 2)
    quant, _ = select_tensors(model)
    with pytest.raises(SpecError):
        size_model(quant, [], QuantSpec(), (2, 4), "channel")  # per-tensor scales
    with pytest.raises(SpecError):
        size_model(quant, [], QuantSpec(granularity="channel"), (2, 4), "layer")
    with pytest.raises(SpecError):
        header_bits([], "compact")

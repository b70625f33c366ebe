"""Property: for any spec and learned range, export().dequantize() == the fake-quant forward."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnshare.format.spec import QuantSpec
from nnshare.qat.quantizer import RANGES, FloatRound, WeightFakeQuant


@st.composite
def cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=3)))
    gran = draw(st.sampled_from(["tensor", "channel", "group"]))
    symmetric = draw(st.booleans())
    spec = QuantSpec(
        bits=draw(st.integers(2, 9)),
        symmetric=symmetric,
        restricted=symmetric and draw(st.booleans()),
        granularity=gran,
        axis=draw(st.integers(0, len(shape) - 1)),
        group_size=draw(st.integers(1, 4)) if gran == "group" else 0,
        scale_dtype=draw(st.sampled_from(["fp32", "fp16", "bf16"])),
    )
    kind = draw(st.sampled_from(RANGES))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 30.0]))
    return shape, spec, kind, seed, scale


@settings(max_examples=120, deadline=None)
@given(cases())
def test_export_dequantizes_to_the_forward_value_bitwise(case):
    shape, spec, kind, seed, scale = case
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * scale
    fq = WeightFakeQuant(w, spec, kind)
    with torch.no_grad():  # a "learned" range: random multiplicative jitter
        for p in fq.range.parameters():
            p.mul_(1 + 0.3 * (torch.rand(p.shape, generator=g) - 0.5))
    w2 = w + 0.1 * scale * torch.randn(shape, generator=g)  # weights moved too
    fwd = fq(w2).detach().numpy()
    qt = fq.export(w2)
    assert qt.codes.min() >= spec.qmin and qt.codes.max() <= spec.qmax
    np.testing.assert_array_equal(qt.dequantize().view(np.uint32), fwd.view(np.uint32))


def test_float_round_matches_the_receivers_rounding():
    x = torch.randn(1000) * 10
    for dtype in ("fp16", "bf16"):
        fr = FloatRound(dtype)
        np.testing.assert_array_equal(
            fr(x).numpy().view(np.uint32), fr.export(x).dequantize().view(np.uint32)
        )

"""Granularity sane by shape: per-tensor fallback where a row holds one element, warnings for
short group axes and for side information above what it saves."""

import numpy as np
import pytest

import nnshare
from nnshare import QuantSpec
from nnshare.quant.granularity import effective_spec, side_info_bits


def test_gru_input_weight_falls_back_to_one_scale():
    spec, notes = effective_spec((384, 1), QuantSpec(bits=4, granularity="channel"), "w_ih")
    assert spec.granularity == "tensor" and not notes
    # what it would have cost: one fp32 scale per weight, 12,288 bits for 1,536 bits of codes
    assert side_info_bits((384, 1), QuantSpec(bits=4, granularity="channel")) == 384 * 32
    rng = np.random.default_rng(0)
    enc = nnshare.encode({"w": rng.normal(size=(384, 1)).astype(np.float32)}, "w4-channel")
    rec = nnshare.inspect(enc).rows[0]
    assert rec.scheme.startswith("affine s4") and "ch" not in rec.scheme
    assert rec.total_bits < 384 * 32  # smaller than the float tensor


def test_group_axis_shorter_than_the_group_warns():
    spec = QuantSpec(bits=4, granularity="group", group_size=32, axis=1)
    got, notes = effective_spec((16, 1, 3, 3), spec, "conv")
    assert got.granularity == "tensor" and "group axis 1 has 1 elements" in notes[0]
    got, notes = effective_spec((40, 16), spec, "fc")
    assert got.granularity == "group" and "fewer than the group size 32" in notes[0]
    rng = np.random.default_rng(0)
    with pytest.warns(nnshare.NNShareWarning, match="group axis 1 has 16 elements"):
        nnshare.encode({"fc.weight": rng.normal(size=(40, 16)).astype(np.float32)}, "w4-g32")


def test_side_info_above_its_saving_warns():
    spec = QuantSpec(bits=16, symmetric=False, granularity="channel")
    _, notes = effective_spec((4, 2), spec, "t")
    # 4 fp32 scales + 4 16-bit zero points = 192 bits > 8 x 16 bits saved
    assert any("side information (192 bits of scales) exceeds" in n for n in notes)
    with pytest.warns(nnshare.NNShareWarning, match="side information"):
        nnshare.encode({"t": np.arange(8, dtype=np.float32).reshape(4, 2)},
                       nnshare.Plan(rules=(nnshare.Rule(spec=spec),)))

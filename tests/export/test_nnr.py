"""NNR mapping: which nnshare tensors an NNR bitstream carries exactly, and with which qp.
(The round trip through NNCodec itself: test_nnr_roundtrip.py.)"""

import numpy as np
import pytest
import torch

import nnshare
from nnshare import QuantSpec
from nnshare.export import ExportError
from nnshare.export.nnr import QP_DENSITY, lattice_qp, nnr_plan, nnr_step, qp_of_step, to_nnr
from nnshare.format import read_stream
from nnshare.format.spec import FloatTensor, RawTensor, round_float


def test_step_grid_round_trips():
    for qp in range(-3000, 400, 7):
        assert qp_of_step(nnr_step(qp)) == qp
    assert nnr_step(0) == 1.0 and nnr_step(1 << QP_DENSITY) == 2.0 and nnr_step(-128) == 0.5
    assert nnr_step(1) == 1 + 1 / 128


def test_every_bf16_scale_is_on_the_grid_and_fp32_mostly_not():
    rng = np.random.default_rng(0)
    s = np.abs(rng.standard_normal(500).astype(np.float32)) * 10.0 ** rng.uniform(-6, 2, 500)
    bf = round_float(s.astype(np.float32), "bf16")
    assert all(qp_of_step(float(v)) is not None for v in bf)
    assert sum(qp_of_step(float(v)) is None for v in s) > 490
    assert qp_of_step(0.0) is None and qp_of_step(-1.0) is None and qp_of_step(float("inf")) is None


def test_lattice_of_half_precision_values():
    rng = np.random.default_rng(1)
    v = round_float(rng.standard_normal(300).astype(np.float32) * 0.05, "fp16")
    v[::17] = 0
    qp = lattice_qp(v)
    step = nnr_step(qp)
    levels = v.astype(np.float64) / step
    assert np.array_equal(levels, np.round(levels)) and np.abs(levels).max() < 2**31
    assert not np.array_equal(levels / 2, np.round(levels / 2))  # the coarsest such step
    assert lattice_qp(np.zeros(4, np.float32)) == 0
    wide = np.array([1e-30, 1e30], np.float32)
    assert lattice_qp(wide) is None


def _stream(spec, bias="bf16"):
    torch.manual_seed(0)
    state = {"fc.weight": torch.randn(8, 16), "fc.bias": torch.randn(8)}
    return read_stream(nnshare.encode(state, {"fc.weight": spec, "fc.bias": bias})).tensors


def test_representable_stream_plan():
    t = _stream(QuantSpec(bits=4, granularity="tensor", scale_dtype="bf16"))
    plan = nnr_plan(t)
    assert nnr_step(plan["fc.weight"]) == float(t["fc.weight"].params["scale"])
    q = t["fc.weight"]
    assert np.array_equal(np.asarray(q.codes, np.float64) * nnr_step(plan["fc.weight"]), q.dequantize())


@pytest.mark.parametrize(
    "spec, bias, needle",
    [
        (QuantSpec(bits=4, granularity="tensor", symmetric=False, scale_dtype="bf16"), "bf16",
         "no zero point"),
        (QuantSpec(bits=8, granularity="channel", scale_dtype="bf16"), "bf16", "one scale per channel"),
        (QuantSpec(bits=4, granularity="group", group_size=8, axis=1, scale_dtype="bf16"), "bf16",
         "one scale per group"),
        (QuantSpec(bits=8, granularity="tensor"), "bf16", "8-bit mantissa"),
    ],
)
def test_unrepresentable_layouts_are_named(spec, bias, needle):
    with pytest.raises(ExportError, match="tensor 'fc.weight'") as e:
        nnr_plan(_stream(spec, bias))
    assert needle in str(e.value)


def test_unrepresentable_float_and_raw_tensors():
    wide = {"b": FloatTensor(np.array([1e-30, 3.0, 1e30], np.float32))}
    with pytest.raises(ExportError, match="float tensor 'b'"):
        nnr_plan(wide)
    with pytest.raises(ExportError, match=r"tensor 'n' is integer \(int64\)"):
        nnr_plan({"n": RawTensor(np.array([3], np.int64))})


def test_missing_nncodec_python_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("NNSHARE_NNCODEC_PYTHON", raising=False)
    t = _stream(QuantSpec(bits=4, granularity="tensor", scale_dtype="bf16"))
    with pytest.raises(ExportError, match="NNSHARE_NNCODEC_PYTHON"):
        to_nnr(t)
    with pytest.raises(ExportError, match="does not exist"):
        to_nnr(t, python=tmp_path / "nope")

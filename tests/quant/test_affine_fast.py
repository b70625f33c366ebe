"""The compiled affine sender passes (nnshare.quant._affine_fast) give numpy's codes exactly and
the same quality report (issue 19)."""

import math

import numpy as np
import pytest

import nnshare
from nnshare.format import kernels
from nnshare.quant import _affine_fast
from nnshare.share.quality import assess

SPECS = [
    dict(bits=8),
    dict(bits=4, granularity="channel"),
    dict(bits=3, granularity="channel", axis=1, symmetric=False),
    dict(bits=6, granularity="group", group_size=8),
    dict(bits=5, restricted=True, scale_dtype="bf16"),
]


def _paths(fn, monkeypatch):
    monkeypatch.setattr(kernels, "MIN_ELEMENTS", 1)
    assert _affine_fast.fast(1) is not None, "numba missing: install the 'fast' extra"
    fast = fn()
    monkeypatch.setattr(_affine_fast, "_FAST", None)
    monkeypatch.setattr(kernels, "_FAST", None)
    return fast, fn()


@pytest.mark.parametrize("kw", SPECS, ids=[str(s) for s in SPECS])
def test_compiled_quantization_gives_numpy_codes(kw, monkeypatch):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((24, 40)) * rng.random((24, 1)) * 4).astype(np.float32)
    x[3, 5] = x[3].max() * 0.5 + 1e-3  # ties and edges: values landing on .5 steps
    x[0, :8] = np.float32(0.25) * np.arange(8, dtype=np.float32)
    spec = nnshare.QuantSpec(**kw)
    fast, slow = _paths(lambda: nnshare.quantize(x, spec), monkeypatch)
    np.testing.assert_array_equal(fast.codes, slow.codes)
    assert fast.codes.dtype == slow.codes.dtype == np.int32
    for k in slow.params:
        np.testing.assert_array_equal(fast.params[k], slow.params[k])


def test_compiled_quantization_clamps_to_given_scales(monkeypatch):
    x = np.linspace(-10, 10, 101, dtype=np.float32).reshape(1, -1)
    spec = nnshare.QuantSpec(bits=4)
    fast, slow = _paths(lambda: nnshare.quantize(x, spec, scale=np.float32(0.1)), monkeypatch)
    np.testing.assert_array_equal(fast.codes, slow.codes)
    assert fast.codes.min() == -8 and fast.codes.max() == 7


def test_quality_report_agrees_on_both_paths(monkeypatch):
    rng = np.random.default_rng(2)
    arrays = {
        "w": rng.standard_normal((16, 32)).astype(np.float32),
        "v": rng.standard_normal((8, 8)).astype(np.float32) * 1e-4,  # zeroed at a coarse scale
        "z": np.zeros((4, 4), np.float32),
        "e": np.full((2, 8), 0.5, np.float32),  # exact: inf dB
        "c": rng.standard_normal((6, 40)).astype(np.float32),  # per-channel widths
    }
    specs = {"w": nnshare.QuantSpec(bits=4, granularity="channel"),
             "v": nnshare.QuantSpec(bits=2), "z": nnshare.QuantSpec(bits=8),
             "e": nnshare.QuantSpec(bits=8, symmetric=False),
             "c": nnshare.QuantSpec(bits=6, granularity="channel", channel_bits=(2, 3, 6, 4, 2, 5))}
    tensors = {n: nnshare.quantize(a, specs[n], scale=np.float32(1.0)) if n == "v"
               else nnshare.quantize(a, specs[n]) for n, a in arrays.items()}

    def report():
        return assess(arrays, tensors, {n: "weight" for n in arrays})

    fast, slow = _paths(report, monkeypatch)
    ref = assess(arrays, {n: t.dequantize() for n, t in tensors.items()})
    for q in (fast, slow):
        by = {t.name: t for t in q.tensors}
        for t in ref.tensors:
            assert by[t.name].zeroed == t.zeroed
            if math.isinf(t.sqnr_db):
                assert by[t.name].sqnr_db == t.sqnr_db
            else:
                assert by[t.name].sqnr_db == pytest.approx(t.sqnr_db, rel=1e-9)
    assert fast.zeroed == ["v"] and math.isinf({t.name: t for t in fast.tensors}["e"].sqnr_db)

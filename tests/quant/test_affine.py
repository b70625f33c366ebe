import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnshare.format import SpecError
from nnshare.format.spec import QuantSpec, scale_shape, to_blocks
from nnshare.quant import quantize


def specs():
    return st.builds(
        lambda bits, sym, restricted, gran, g, rm, sd: QuantSpec(
            bits=bits,
            symmetric=sym and bits >= 2,
            restricted=restricted and sym and bits >= 2,
            granularity=gran,
            axis=-1 if gran != "tensor" else 0,
            group_size=g if gran == "group" else 0,
            range_method=rm,
            scale_dtype=sd,
        ),
        st.integers(1, 16),
        st.booleans(),
        st.booleans(),
        st.sampled_from(["tensor", "channel", "group"]),
        st.integers(1, 7),
        st.sampled_from(["minmax", "percentile"]),
        st.sampled_from(["fp32", "fp16", "bf16"]),
    )


arrays = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9),
    elements=st.floats(-1e3, 1e3, width=32),
)


@settings(max_examples=300, deadline=None)
@given(arrays, specs())
def test_codes_in_range_and_error_within_half_step(x, spec):
    q = quantize(x, spec)
    assert q.codes.shape == x.shape and q.codes.dtype == np.int32
    assert q.codes.min() >= spec.qmin and q.codes.max() <= spec.qmax
    assert q.params["scale"].shape == scale_shape(x.shape, spec)
    xhat = q.dequantize()
    assert xhat.dtype == np.float32 and xhat.shape == x.shape
    # inside the representable range of its block, the error is at most half a step
    blocks_x = to_blocks(x, spec)
    blocks_xh = to_blocks(xhat, spec)
    scale = q.params["scale"].reshape(-1, 1).astype(np.float64)
    zp = q.params.get("zero_point", np.zeros_like(q.params["scale"], np.int32)).reshape(-1, 1)
    lo = scale * (spec.qmin - zp)
    hi = scale * (spec.qmax - zp)
    inside = (blocks_x >= lo) & (blocks_x <= hi)
    if spec.range_method == "minmax" and spec.symmetric:  # scales round up: ranges covered
        slack = 2.0**-22 * np.abs(blocks_x)
        assert np.all((blocks_x >= lo - slack) & (blocks_x <= hi + slack))
    err = np.abs(blocks_x.astype(np.float64) - blocks_xh)
    # half a step, plus float32 rounding of x / s and of s * (x_int - z)
    step = scale.repeat(blocks_x.shape[1], 1)
    tol = step * 0.5 + 2.0**-22 * (np.abs(blocks_x) + step)
    assert np.all(err[inside] <= tol[inside])
    if spec.range_method == "minmax":  # asymmetric: the rounded zero point shifts by <= s/2
        assert np.all(err <= 2 * tol)


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("symmetric", [True, False])
def test_every_bit_width_uses_its_range(bits, symmetric):
    if symmetric and bits == 1:
        with pytest.raises(SpecError, match="symmetric 1-bit"):
            QuantSpec(bits=1, symmetric=True)
        return
    x = np.linspace(-3, 5, 4001, dtype=np.float32)
    q = quantize(x, QuantSpec(bits=bits, symmetric=symmetric))
    assert q.codes.max() == q.spec.qmax
    if not symmetric:
        assert q.codes.min() == 0
        # zero is exactly representable
        zq = quantize(
            np.array([0.0, -3, 5], np.float32),
            q.spec,
            scale=q.params["scale"],
            zero_point=q.params["zero_point"],
        )
        assert zq.dequantize()[0] == 0.0


def test_odd_shapes_scalar_single_and_noncontiguous():
    spec = QuantSpec(bits=5)
    assert quantize(np.float32(2.5), spec).dequantize().shape == ()
    assert np.allclose(quantize(np.array([-1.5], np.float32), spec).dequantize(), [-1.5])
    base = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    nc = base[:, ::3]  # non-contiguous view
    for sp in (
        QuantSpec(bits=4, granularity="channel", axis=1),
        QuantSpec(bits=4, granularity="group", group_size=3, axis=0),
    ):
        assert np.array_equal(quantize(nc, sp).codes, quantize(np.ascontiguousarray(nc), sp).codes)
    t = torch.from_numpy(base).t()  # non-contiguous torch tensor
    assert np.array_equal(quantize(t, spec).codes, quantize(base.T.copy(), spec).codes)


def test_group_size_not_dividing_axis():
    x = np.arange(14, dtype=np.float32).reshape(2, 7) - 5
    spec = QuantSpec(bits=3, symmetric=False, granularity="group", group_size=3, axis=1)
    q = quantize(x, spec)
    assert q.params["scale"].shape == (2, 3)
    # the last group of each row holds one element: it is exact
    assert np.allclose(q.dequantize()[:, 6], x[:, 6], atol=1e-6)


def test_per_channel_scales_follow_channel_ranges():
    x = np.stack([np.linspace(-1, 1, 50), np.linspace(-100, 100, 50)]).astype(np.float32)
    q = quantize(x, QuantSpec(bits=8, granularity="channel", axis=0))
    assert np.allclose(q.params["scale"], [1 / 127, 100 / 127], rtol=1e-6)


def test_mse_range_no_worse_than_minmax_on_heavy_tails():
    x = np.random.default_rng(1).standard_t(2, 20000).astype(np.float32)
    e = {
        m: np.mean((quantize(x, QuantSpec(bits=4, range_method=m)).dequantize() - x) ** 2)
        for m in ("minmax", "mse", "percentile")
    }
    assert e["mse"] < 0.75 * e["minmax"]
    assert e["mse"] <= e["percentile"]
    assert e["percentile"] < e["minmax"]


def test_stochastic_rounding_is_unbiased_and_seeded():
    x = np.full(200_000, 0.3, np.float32)
    spec = QuantSpec(bits=4, rounding="stochastic", seed=7)
    q = quantize(x, spec, scale=np.float32(1.0))
    assert abs(q.dequantize().mean() - 0.3) < 0.005
    assert set(np.unique(q.codes)) == {0, 1}
    assert np.array_equal(q.codes, quantize(x, spec, scale=np.float32(1.0)).codes)
    other = quantize(x, QuantSpec(bits=4, rounding="stochastic", seed=8), scale=np.float32(1.0))
    assert not np.array_equal(q.codes, other.codes)


def test_scale_rounded_to_its_transmission_precision():
    x = np.random.default_rng(2).standard_normal(100).astype(np.float32)
    for sd, dt in (("fp16", np.float16),):
        s = quantize(x, QuantSpec(bits=8, scale_dtype=sd)).params["scale"]
        assert s == s.astype(dt).astype(np.float32)
    s = quantize(x, QuantSpec(bits=8, scale_dtype="bf16")).params["scale"]
    assert (s.view(np.uint32) & 0xFFFF) == 0


def test_all_zero_tensor():
    q = quantize(np.zeros((3, 4), np.float32), QuantSpec(bits=3, symmetric=False))
    assert np.array_equal(q.dequantize(), np.zeros((3, 4), np.float32))


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"bits": 0}, "bits must be in 1..16"),
        ({"bits": 17}, "bits must be in 1..16"),
        ({"bits": 4.0}, "integer"),
        ({"granularity": "row"}, "granularity"),
        ({"granularity": "group"}, "group_size"),
        ({"restricted": True, "symmetric": False}, "restricted"),
        ({"scheme": "nope"}, "unknown scheme"),
        ({"scale_dtype": "fp8"}, "scale_dtype"),
        ({"channel_bits": (4, 2)}, "granularity 'channel'"),
    ],
)
def test_bad_specs(kw, msg):
    with pytest.raises(SpecError, match=msg):
        QuantSpec(**kw)


def test_bad_inputs():
    with pytest.raises(SpecError, match="NaN or Inf"):
        quantize(np.array([1.0, np.nan], np.float32), QuantSpec())
    with pytest.raises(SpecError, match="axis 2 out of range"):
        quantize(np.ones((2, 2), np.float32), QuantSpec(granularity="channel", axis=2))
    with pytest.raises(SpecError, match="dtype"):
        quantize(np.array(["a"]), QuantSpec())
    with pytest.raises(SpecError, match="channel_bits has 2 entries"):
        quantize(
            np.ones((3, 2), np.float32),
            QuantSpec(bits=4, granularity="channel", channel_bits=(4, 2)),
        )


def test_per_channel_bit_widths():
    x = np.random.default_rng(3).standard_normal((4, 30)).astype(np.float32)
    spec = QuantSpec(bits=8, granularity="channel", channel_bits=(2, 8, 3, 5), symmetric=False)
    q = quantize(x, spec)
    for c, b in enumerate(spec.channel_bits):
        assert q.codes[c].min() >= 0 and q.codes[c].max() <= 2**b - 1
        assert q.codes[c].max() == 2**b - 1
    err = np.abs(q.dequantize() - x).max(axis=1)
    assert err[1] < err[3] < err[2] < err[0]


def test_half_precision_scales_still_cover_the_range():
    x = np.array([1.0195, -0.3], np.float32)
    for sd in ("fp16", "bf16"):
        q = quantize(x, QuantSpec(bits=16, scale_dtype=sd))
        s = float(q.params["scale"])
        assert np.abs(q.dequantize() - x).max() <= s / 2 * 1.0001, sd


def test_extreme_ranges_give_finite_scales():
    x = np.array([[3e38, -3e38]], np.float32)
    q = quantize(x, QuantSpec(bits=8, symmetric=False))
    assert np.isfinite(q.params["scale"]).all()
    assert np.all(np.abs(q.dequantize() - x) <= q.params["scale"])
    q = quantize(np.array([3.4e38, 1], np.float32), QuantSpec(bits=2, scale_dtype="bf16"))
    assert np.isfinite(q.params["scale"]).all()


def test_zero_length_axes():
    for spec in (QuantSpec(bits=4, granularity="channel", axis=1),
                 QuantSpec(bits=4, granularity="group", group_size=3, axis=1),
                 QuantSpec(bits=4, granularity="channel", axis=0)):
        q = quantize(np.zeros((3, 0), np.float32), spec)
        assert q.dequantize().shape == (3, 0)


def test_group_larger_than_axis_costs_no_padding_memory():
    import tracemalloc

    x = np.random.default_rng(0).standard_normal((4, 1000)).astype(np.float32)
    tracemalloc.start()
    q = quantize(x, QuantSpec(bits=4, granularity="group", group_size=2**30, axis=1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert q.params["scale"].shape == (4, 1)
    assert peak < 50 * x.nbytes
    assert np.array_equal(q.codes, quantize(x, QuantSpec(bits=4, granularity="channel")).codes)

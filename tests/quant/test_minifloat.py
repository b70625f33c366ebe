"""Scaled minifloat, OCP MX and NVFP4 quantizers: definitions checked against ml_dtypes casts,
error bounds, exact side-info sizes, bad input."""

import ml_dtypes
import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.format.floats import FORMATS
from nnshare.quant.minifloat import (
    MinifloatConfig,
    MXConfig,
    NVFP4Config,
    dequantize_minifloat,
    dequantize_mx_tensor,
    dequantize_nvfp4_tensor,
    element_bits,
    quantize_minifloat,
    quantize_mx,
    quantize_nvfp4,
)

MLD = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn,
       "e2m3": ml_dtypes.float6_e2m3fn, "e2m1": ml_dtypes.float4_e2m1fn}


def sqnr(x, xh):
    return 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((x - xh).astype(np.float64) ** 2))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_per_tensor_absmax_maps_amax_to_max_and_bounds_error(fmt):
    f = FORMATS[fmt]
    x = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    cfg = MinifloatConfig(fmt=fmt)
    codes, p = quantize_minifloat(x, cfg)
    assert codes.shape == x.shape and codes.dtype == np.uint8 and p["scale"].shape == ()
    s = np.float32(np.abs(x).max() / np.float32(f.max))
    assert p["scale"] == s
    xh = dequantize_minifloat(codes, p, cfg)
    assert xh.dtype == np.float32
    assert np.abs(xh).max() <= np.abs(x).max() * (1 + 1e-6)
    # round to nearest: error <= half a step of the element's binade (subnormal step at the bottom)
    half = np.maximum(np.abs(x) * 2.0 ** -(f.mbits + 1), s * 2.0 ** (f.emin - f.mbits - 1))
    assert np.all(np.abs(xh - x) <= half * (1 + 1e-5))
    # independent reference: ml_dtypes cast of x / s, times s
    ref = (x / s).astype(MLD[fmt]).astype(np.float32) * s
    assert np.array_equal(xh, ref)


def test_per_channel_scales_and_mse():
    rng = np.random.default_rng(1)
    gains = np.geomspace(1e-3, 10, 8)[:, None].astype(np.float32)
    x = rng.standard_normal((8, 200)).astype(np.float32) * gains
    cfg = MinifloatConfig(fmt="e2m1", granularity="channel", axis=0)
    codes, p = quantize_minifloat(x, cfg)
    assert p["scale"].shape == (8,)
    assert np.allclose(p["scale"], np.abs(x).max(axis=1) / 6.0, rtol=1e-6)
    xh = dequantize_minifloat(codes, p, cfg)
    one = MinifloatConfig(fmt="e2m1")
    per_tensor = dequantize_minifloat(*quantize_minifloat(x, one), one)
    worst = lambda a: min(sqnr(x[i], a[i]) for i in range(8))  # noqa: E731
    assert worst(xh) > 15 and worst(per_tensor) <= 0  # small channels vanish with one scale
    mse_cfg = MinifloatConfig(fmt="e2m1", granularity="channel", axis=0, scale_method="mse")
    xm = dequantize_minifloat(*quantize_minifloat(x, mse_cfg), mse_cfg)
    err = lambda a: ((a - x).astype(np.float64) ** 2).sum(axis=1)  # noqa: E731
    assert np.all(err(xm) <= err(xh))  # the absmax scale is a candidate
    assert sqnr(x, xm) > sqnr(x, xh) + 0.3  # clipping pays at 4 bits on a Gaussian
    # channel axis 1 and fp16 scales
    c1 = MinifloatConfig(fmt="e4m3", granularity="channel", axis=1, scale_dtype="fp16")
    codes, p = quantize_minifloat(x, c1)
    assert p["scale"].shape == (200,) and np.array_equal(p["scale"], p["scale"].astype(np.float16))
    assert sqnr(x, dequantize_minifloat(codes, p, c1)) > 28


def test_fp8_gaussian_sqnr_matches_reference_values():
    x = np.random.default_rng(2).standard_normal(200_000).astype(np.float32)
    for fmt, want in (("e4m3", 31.56), ("e5m2", 25.59)):  # MSE-optimal scale, unit Gaussian
        cfg = MinifloatConfig(fmt=fmt, scale_method="mse")
        got = sqnr(x, dequantize_minifloat(*quantize_minifloat(x, cfg), cfg))
        assert abs(got - want) < 0.15, (fmt, got)


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"])
def test_mx_matches_the_ocp_definition(name):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 100)) * np.exp(rng.normal(0, 3, (5, 1)))).astype(np.float32)
    x[2, 32:64] = 0.0  # an all-zero block
    cfg = MXConfig.named(name)
    f = FORMATS[cfg.fmt]
    codes, p = quantize_mx(x, cfg)
    assert codes.shape == x.shape and p["scale"].shape == (5, 4) and p["scale"].dtype == np.uint8
    xh = dequantize_mx_tensor(codes, p, cfg)
    pad = np.pad(x, ((0, 0), (0, 28))).reshape(5, 4, 32)
    amax = np.abs(pad).max(axis=2)
    with np.errstate(divide="ignore"):
        shared = np.where(amax > 0, np.floor(np.log2(amax)) - f.emax, -127)
    assert np.array_equal(p["scale"].astype(np.int64) - 127, shared)
    scale = 2.0 ** shared[:, :, None]
    y = np.clip(pad / scale, -f.max, f.max)  # MX elements saturate
    ref = (y.astype(MLD[cfg.fmt]).astype(np.float64) * scale).reshape(5, 128)[:, :100].astype(np.float32)
    assert np.array_equal(xh, ref)
    assert np.all(xh[2, 32:64] == 0)


def test_mx_along_axis0_and_ragged_and_sizes():
    x = np.random.default_rng(4).standard_normal((70, 3)).astype(np.float32)
    cfg = MXConfig(fmt="e2m1", axis=0)
    codes, p = quantize_mx(x, cfg)
    assert p["scale"].shape == (3, 3)
    xt = dequantize_mx_tensor(*quantize_mx(x.T.copy(), MXConfig(fmt="e2m1")), MXConfig(fmt="e2m1"))
    assert np.array_equal(dequantize_mx_tensor(codes, p, cfg), xt.T)
    assert element_bits(cfg, x.shape) == (4 * 210, 8 * 9)
    assert element_bits(MXConfig.named("mxfp8_e4m3"), (64, 64)) == (8 * 4096, 8 * 128)
    assert element_bits(NVFP4Config(), (64, 64)) == (4 * 4096, 8 * 256 + 32)
    assert element_bits(MinifloatConfig(granularity="channel"), (10, 7)) == (8 * 70, 32 * 10)
    assert element_bits(MinifloatConfig(fmt="e3m2", scale_dtype="bf16"), (10, 7)) == (6 * 70, 16)


def test_nvfp4_matches_definition_and_beats_mxfp4_on_gaussian():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((32, 256)).astype(np.float32)
    codes, p = quantize_nvfp4(x, NVFP4Config())
    assert p["scale"].shape == (32, 16) and p["tensor_scale"].dtype == np.float32
    ts = np.float32(np.abs(x).max() / np.float32(6 * 448))
    assert p["tensor_scale"] == ts
    xb = x.reshape(32, 16, 16).astype(np.float64)
    bs = (np.abs(xb).max(axis=2) / (6 * float(ts))).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    assert np.array_equal(p["scale"].view(ml_dtypes.float8_e4m3fn).astype(np.float64), bs)
    s = bs[:, :, None] * float(ts)
    elem = np.clip(xb / s, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float32)
    ref = ((elem * bs[:, :, None].astype(np.float32)) * ts).reshape(32, 256)
    xh = dequantize_nvfp4_tensor(codes, p, NVFP4Config())
    assert np.array_equal(xh, ref)
    mx = dequantize_mx_tensor(*quantize_mx(x, MXConfig()), MXConfig())
    assert sqnr(x, xh) > sqnr(x, mx) + 1.0  # finer (E4M3) and smaller blocks
    assert 18 < sqnr(x, xh) < 22


def test_zero_and_tiny_tensors():
    z = np.zeros((4, 40), np.float32)
    for q, dq, cfg in ((quantize_minifloat, dequantize_minifloat, MinifloatConfig()),
                       (quantize_mx, dequantize_mx_tensor, MXConfig()),
                       (quantize_nvfp4, dequantize_nvfp4_tensor, NVFP4Config())):
        assert np.array_equal(dq(*q(z, cfg), cfg), z)
    tiny = np.full((1, 16), 1e-42, np.float32)  # float32 subnormals
    xh = dequantize_nvfp4_tensor(*quantize_nvfp4(tiny, NVFP4Config()), NVFP4Config())
    assert np.all(np.isfinite(xh))


def test_bad_input():
    with pytest.raises(SpecError, match="NaN or Inf"):
        quantize_minifloat(np.array([1.0, np.nan]), MinifloatConfig())
    with pytest.raises(SpecError, match="NaN or Inf"):
        quantize_mx(np.array([[1.0, np.inf]]), MXConfig())
    with pytest.raises(SpecError, match="unknown float format"):
        MinifloatConfig(fmt="e9m9")
    with pytest.raises(SpecError, match="granularity"):
        MinifloatConfig(granularity="group")
    with pytest.raises(SpecError, match="scale_method"):
        MinifloatConfig(scale_method="percentile")
    with pytest.raises(SpecError, match="block"):
        MXConfig(block=0)
    with pytest.raises(SpecError, match="unknown MX format"):
        MXConfig.named("mxint8")
    with pytest.raises(SpecError, match="axis"):
        quantize_minifloat(np.zeros((2, 2)), MinifloatConfig(granularity="channel", axis=3))

"""The minifloat scheme's sender side: scaled FP8 / FP6 / FP4, OCP MX and NVFP4 checked against
their definitions with ml_dtypes casts; error bounds; exact record sizes; streams; bad input."""

import ml_dtypes
import numpy as np
import pytest

from nnshare.format import FormatError, SpecError, read_stream, write_stream
from nnshare.format.floats import FORMATS
from nnshare.format.records import encode_record, record_bits
from nnshare.quant import MinifloatConfig, config_from_dict, quantize

MLD = {
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
}


def sqnr(x, xh):
    return 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((x - xh).astype(np.float64) ** 2))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_per_tensor_absmax_maps_amax_to_max_and_matches_ml_dtypes(fmt):
    f = FORMATS[fmt]
    x = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    q = quantize(x, MinifloatConfig(fmt=fmt))
    assert q.codes.shape == x.shape and q.params["scale"].shape == ()
    s = np.float32(np.abs(x).max() / np.float32(f.max))
    assert q.params["scale"] == s
    xh = q.dequantize()
    assert xh.dtype == np.float32 and np.abs(xh).max() <= np.abs(x).max() * (1 + 1e-6)
    half = np.maximum(np.abs(x) * 2.0 ** -(f.mbits + 1), s * 2.0 ** (f.emin - f.mbits - 1))
    assert np.all(np.abs(xh - x) <= half * (1 + 1e-5))  # round to nearest
    assert np.array_equal(xh, (x / s).astype(MLD[fmt]).astype(np.float32) * s)


def test_per_channel_scales_and_mse():
    rng = np.random.default_rng(1)
    gains = np.geomspace(1e-3, 10, 8)[:, None].astype(np.float32)
    x = rng.standard_normal((8, 200)).astype(np.float32) * gains
    q = quantize(x, MinifloatConfig(fmt="e2m1", granularity="channel"))
    assert q.params["scale"].shape == (8,)
    assert np.allclose(q.params["scale"], np.abs(x).max(axis=1) / 6.0, rtol=1e-6)
    xh = q.dequantize()
    per_tensor = quantize(x, MinifloatConfig(fmt="e2m1")).dequantize()
    worst = lambda a: min(sqnr(x[i], a[i]) for i in range(8))  # noqa: E731
    assert worst(xh) > 15 and worst(per_tensor) <= 0  # small channels vanish with one scale
    xm = quantize(x, MinifloatConfig(fmt="e2m1", granularity="channel", scale_method="mse")).dequantize()
    err = lambda a: ((a - x).astype(np.float64) ** 2).sum(axis=1)  # noqa: E731
    assert np.all(err(xm) <= err(xh))  # the absmax scale is a candidate
    assert sqnr(x, xm) > sqnr(x, xh) + 0.3  # clipping pays at 4 bits on a Gaussian
    q1 = quantize(x, MinifloatConfig(fmt="e4m3", granularity="channel", axis=1, scale_dtype="fp16"))
    sc = q1.params["scale"]
    assert sc.shape == (200,) and np.array_equal(sc, sc.astype(np.float16).astype(np.float32))
    assert sqnr(x, q1.dequantize()) > 28


def test_fp8_gaussian_sqnr_matches_reference_values():
    x = np.random.default_rng(2).standard_normal(200_000).astype(np.float32)
    for fmt, want in (("e4m3", 31.56), ("e5m2", 25.59)):  # MSE-optimal scale, unit Gaussian
        got = sqnr(x, quantize(x, MinifloatConfig(fmt=fmt, scale_method="mse")).dequantize())
        assert abs(got - want) < 0.15, (fmt, got)


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"])
def test_mx_matches_the_ocp_definition(name):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 100)) * np.exp(rng.normal(0, 3, (5, 1)))).astype(np.float32)
    x[2, 32:64] = 0.0  # an all-zero block
    cfg = MinifloatConfig.mx(name)
    f = FORMATS[cfg.fmt]
    q = quantize(x, cfg)
    assert q.params["scale"].shape == (5, 4) and q.params["scale"].dtype == np.uint8
    pad = np.pad(x, ((0, 0), (0, 28))).reshape(5, 4, 32)
    amax = np.abs(pad).max(axis=2)
    with np.errstate(divide="ignore"):
        shared = np.where(amax > 0, np.floor(np.log2(amax)) - f.emax, -127)
    assert np.array_equal(q.params["scale"].astype(np.int64) - 127, shared)
    scale = 2.0 ** shared[:, :, None]
    y = np.clip(pad / scale, -f.max, f.max)  # MX elements saturate
    ref = (y.astype(MLD[cfg.fmt]).astype(np.float64) * scale).reshape(5, 128)[:, :100].astype(np.float32)
    assert np.array_equal(q.dequantize(), ref)


def test_mx_along_axis0_equals_transpose():
    x = np.random.default_rng(4).standard_normal((70, 3)).astype(np.float32)
    q = quantize(x, MinifloatConfig.mx("mxfp4", axis=0))
    assert q.params["scale"].shape == (3, 3)
    qt = quantize(x.T.copy(), MinifloatConfig.mx("mxfp4"))
    assert np.array_equal(q.dequantize(), qt.dequantize().T)


def test_nvfp4_matches_definition_and_beats_mxfp4_on_gaussian():
    x = np.random.default_rng(5).standard_normal((32, 256)).astype(np.float32)
    q = quantize(x, MinifloatConfig.nvfp4())
    assert q.params["scale"].shape == (32, 16) and q.params["tensor_scale"].dtype == np.float32
    ts = np.float32(np.abs(x).max() / np.float32(6 * 448))
    assert q.params["tensor_scale"] == ts
    xb = x.reshape(32, 16, 16).astype(np.float64)
    bs = (np.abs(xb).max(axis=2) / (6 * float(ts))).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    assert np.array_equal(q.params["scale"].view(ml_dtypes.float8_e4m3fn).astype(np.float64), bs)
    elem = (
        np.clip(xb / (bs[:, :, None] * float(ts)), -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float32)
    )
    ref = ((elem * bs[:, :, None].astype(np.float32)) * ts).reshape(32, 256)
    assert np.array_equal(q.dequantize(), ref)
    mx = quantize(x, MinifloatConfig.mx("mxfp4")).dequantize()
    assert sqnr(x, q.dequantize()) > sqnr(x, mx) + 1.0  # finer (E4M3) and smaller blocks
    assert 18 < sqnr(x, q.dequantize()) < 22


@pytest.mark.parametrize(
    "cfg,side",
    [
        (MinifloatConfig(), 32),
        (MinifloatConfig(fmt="e3m2", granularity="channel", scale_dtype="bf16"), 16 * 64),
        (MinifloatConfig.mx("mxfp8_e4m3"), 8 * 64 * 2),
        (MinifloatConfig.mx("mxfp4"), 8 * 64 * 2),
        (MinifloatConfig.nvfp4(), 8 * 64 * 4 + 32),
    ],
)
def test_record_sizes_are_analytic(cfg, side):
    x = np.random.default_rng(6).standard_normal((64, 64)).astype(np.float32)
    q = quantize(x, cfg)
    rec, secs = encode_record("w", q)
    head = (
        2 + (0 if cfg.wire().granularity == "tensor" else 1) + (1 if cfg.wire().granularity == "group" else 0)
    )
    assert 8 * len(rec) == record_bits((64, 64), cfg) == 8 * (1 + head + 4) + side + 4096 * cfg.bits
    assert sum(s.bits for s in secs if s.kind == "side") == side
    assert sum(s.bits for s in secs if s.kind == "payload") == 4096 * cfg.bits


def test_stream_round_trip_entropy_and_json():
    rng = np.random.default_rng(8)
    tensors = {
        "a": quantize(rng.standard_normal((16, 40)).astype(np.float32), MinifloatConfig.nvfp4()),
        "b": quantize(rng.laplace(size=(3, 50)).astype(np.float32), MinifloatConfig.mx("mxfp6_e2m3")),
        "c": quantize(rng.standard_normal(100).astype(np.float32) * 1e-30, MinifloatConfig(fmt="e5m2")),
    }
    for entropy in ("none", "auto"):
        data, _ = write_stream(tensors, entropy=entropy)
        got = read_stream(data).tensors
        for k, q in tensors.items():
            assert got[k].spec == q.spec and np.array_equal(got[k].dequantize(), q.dequantize())
    # FP8 codes of a Gaussian are far from uniform: entropy coding pays
    big = quantize(rng.standard_normal((64, 256)).astype(np.float32), MinifloatConfig())
    assert len(encode_record("w", big, "auto")[0]) < 0.9 * len(encode_record("w", big)[0])
    for cfg in (MinifloatConfig.nvfp4(), MinifloatConfig(fmt="e2m3", granularity="channel", axis=-1)):
        assert config_from_dict(cfg.to_dict()) == cfg
    assert MinifloatConfig().at_bits(4).fmt == "e2m1" and MinifloatConfig.mx("mxfp4").at_bits(8).fmt == "e4m3"


def test_receiver_refuses_nan_codes_and_bad_scales():
    x = np.random.default_rng(9).standard_normal((4, 32)).astype(np.float32)
    q = quantize(x, MinifloatConfig())
    bad = type(q)(codes=np.full(q.codes.shape, 0x7F), params=q.params, spec=q.spec, shape=q.shape)
    with pytest.raises(SpecError, match="finite"):
        write_stream({"t": bad})
    data, _ = write_stream({"t": q})
    # hand-craft: patch one code byte to E4M3 NaN and fix the CRCs is covered by the registry
    # fuzz test; here: a scale of zero is refused on both sides
    zero = type(q)(codes=q.codes, params={"scale": np.float32(0.0)}, spec=q.spec, shape=q.shape)
    with pytest.raises(SpecError, match="scale"):
        write_stream({"t": zero})
    assert read_stream(data).tensors["t"].spec == q.spec
    with pytest.raises(FormatError):
        read_stream(data[:-3])


def test_bad_configs():
    with pytest.raises(SpecError, match="NaN or Inf"):
        quantize(np.array([1.0, np.nan]), MinifloatConfig())
    for kw, msg in (
        ({"fmt": "e9m9"}, "unknown float format"),
        ({"granularity": "group"}, "blocks"),
        ({"scale_method": "percentile"}, "scale_method"),
        ({"scaling": "mx", "block": -1}, "block"),
        ({"block": 32}, "block applies"),
        ({"scaling": "nv", "fmt": "e4m3"}, "e2m1"),
        ({"scaling": "mx", "scale_dtype": "fp16"}, "scale_dtype"),
        ({"scheme": "affine"}, "minifloat"),
    ):
        with pytest.raises(SpecError, match=msg):
            MinifloatConfig(**kw)
    with pytest.raises(SpecError, match="unknown MX format"):
        MinifloatConfig.mx("mxint8")
    with pytest.raises(SpecError, match="axis"):
        quantize(np.zeros((2, 2)), MinifloatConfig(granularity="channel", axis=3))
    with pytest.raises(SpecError, match="4, 6 and 8"):
        MinifloatConfig().at_bits(5)

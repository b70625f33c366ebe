"""Lloyd-Max / k-means codebooks: convergence to the known optimal Gaussian levels, weighted
k-means, per-channel codebooks, assignment, bad input."""

import numpy as np
import pytest

from nnshare.format import read_stream, write_stream
from nnshare.format.errors import SpecError
from nnshare.format.records import encode_record, record_bits
from nnshare.quant import ChannelCodebookConfig, CodebookConfig, config_from_dict, densities
from nnshare.quant import codebook as per_tensor
from nnshare.quant.lloyd import assign, lloyd, lloyd_levels, quantize

# Max (1960): optimal Gaussian levels (positive half) and MSE at 1, 2, 3 bits
MAX_LEVELS = {
    1: ([0.7979], 0.3634),
    2: ([0.4528, 1.5104], 0.1175),
    3: ([0.2451, 0.7560, 1.3440, 2.1520], 0.03454),
}


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_density_lloyd_max_converges_to_max_levels(bits):
    levels, mse = densities.lloyd_max("gaussian", 2**bits)
    pos, want_mse = MAX_LEVELS[bits]
    assert np.allclose(levels[2 ** (bits - 1) :], pos, rtol=0, atol=1e-4)  # table rounded to 4 digits
    assert np.allclose(levels, -levels[::-1], atol=1e-12)
    assert mse == pytest.approx(want_mse, abs=6e-5)


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("init", ["quantile", "uniform", "laplacian"])
def test_data_lloyd_converges_to_max_levels_from_any_start(bits, init):
    x = densities.sample("gaussian", 400_000, seed=bits)
    book = lloyd_levels(x, 2**bits, init, iters=500)
    pos, want_mse = MAX_LEVELS[bits]
    assert np.allclose(book[2 ** (bits - 1) :], pos, rtol=0, atol=0.02)  # sampling moves the flat middle
    # through the per-tensor codebook scheme: levels as designed, codes nearest, MSE as Max's
    q = per_tensor.quantize(x, CodebookConfig(levels=2**bits), levels=book)
    assert np.mean((x - q.dequantize()) ** 2) == pytest.approx(want_mse, rel=0.01)


def test_each_lloyd_pass_lowers_the_weighted_error():
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, 20000)
    w = rng.uniform(0.1, 5, x.size)
    y = np.quantile(x, [0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999])

    def err(levels):
        idx = assign(x[None], np.sort(levels)[None])[0]
        return np.sum(w * (x - np.sort(levels)[idx]) ** 2)

    errs = [err(y)]
    for _ in range(10):
        y = lloyd(x, y, w, iters=1)
        errs.append(err(y))
    assert all(b <= a + 1e-9 for a, b in zip(errs, errs[1:], strict=False)) and errs[-1] < 0.8 * errs[0]
    # weighted: heavy weights pull levels toward their elements
    heavy = np.where(np.abs(x - 2.0) < 0.5, 1000.0, 1.0)
    y_w = lloyd(x, np.linspace(-3, 3, 4), heavy, iters=100)
    y_u = lloyd(x, np.linspace(-3, 3, 4), None, iters=100)
    err_near = lambda y: np.mean(np.min((x[np.abs(x - 2) < 0.5, None] - y) ** 2, axis=1))  # noqa: E731
    assert err_near(y_w) < 0.2 * err_near(y_u)


def test_per_channel_codebooks_and_fp16_levels():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 300)) * np.arange(1, 7)[:, None]).astype(np.float32)
    q = quantize(x, ChannelCodebookConfig(levels=8))
    book = q.params["levels"]
    assert book.shape == (6, 8) and q.codes.shape == x.shape and q.codes.max() < 8
    assert np.array_equal(book, book.astype(np.float16).astype(np.float32))
    assert np.all(np.diff(book, axis=1) >= 0)
    xh = q.dequantize()
    dist = np.abs(x[:, :, None] - book[:, None, :])  # nearest level for the levels as sent
    assert np.allclose(np.abs(x - xh), dist.min(axis=2))
    rel = np.mean((x - xh) ** 2, axis=1) / np.var(x, axis=1)
    assert np.all(rel < 0.05)
    q1 = quantize(x, ChannelCodebookConfig(levels=4, axis=1))
    assert q1.params["levels"].shape == (300, 4) and q1.dequantize().shape == x.shape


def test_hessian_weighted_codebook_lowers_the_weighted_error():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 500)).astype(np.float32)
    h = np.where(np.abs(x) > 1.5, 50.0, 1.0)  # the tails matter most
    plain = quantize(x, ChannelCodebookConfig(levels=4))
    weighted = quantize(x, ChannelCodebookConfig(levels=4), weights=h)
    werr = lambda q: float(np.sum(h * (x - q.dequantize()) ** 2))  # noqa: E731
    assert werr(weighted) < 0.7 * werr(plain)
    with pytest.raises(SpecError, match="weights"):
        quantize(x, ChannelCodebookConfig(), weights=h[:2])


def test_stream_round_trip_sizes_and_entropy():
    rng = np.random.default_rng(3)
    x = rng.laplace(size=(16, 64)).astype(np.float32)
    cfg = ChannelCodebookConfig(levels=16, level_dtype="bf16")
    q = quantize(x, cfg)
    rec, secs = encode_record("w", q)
    assert 8 * len(rec) == record_bits(x.shape, cfg) == 8 + 24 + 16 * 16 * 16 + 1024 * 4 + 32
    assert sum(s.bits for s in secs if s.kind == "side") == 16 * 16 * 16
    for entropy in ("none", "auto"):
        data, _ = write_stream({"w": q}, entropy=entropy)
        got = read_stream(data).tensors["w"]
        assert got.spec == cfg.wire(x.shape) and np.array_equal(got.dequantize(), q.dequantize())
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.at_bits(3).levels == 8


def test_bad_configs():
    for kw, msg in (
        ({"levels": 1}, "levels"),
        ({"levels": 257}, "levels"),
        ({"init": "kmeans++"}, "init"),
        ({"iters": -1}, "iters"),
        ({"level_dtype": "fp8"}, "level_dtype"),
        ({"scheme": "codebook"}, "channel_codebook"),
    ):
        with pytest.raises(SpecError, match=msg):
            ChannelCodebookConfig(**kw)
    with pytest.raises(SpecError, match="NaN"):
        quantize(np.array([[1.0, np.nan]]), ChannelCodebookConfig())
    with pytest.raises(SpecError, match="NaN"):
        lloyd_levels(np.array([1.0, np.nan]), 4)
    with pytest.raises(SpecError, match="weights"):
        lloyd(np.zeros(3), np.zeros(2), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(SpecError, match="levels must be"):
        quantize(np.zeros((2, 3)), ChannelCodebookConfig(levels=4), levels=np.zeros(3))

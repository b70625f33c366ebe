"""Lloyd-Max / k-means codebooks: convergence to the known optimal Gaussian levels, weighted
k-means, per-channel codebooks, assignment, bad input."""

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.quant import densities
from nnshare.quant.lloyd import CodebookConfig, assign, dequantize_codebook, lloyd, quantize_codebook

# Max (1960): optimal Gaussian levels (positive half) and MSE at 1, 2, 3 bits
MAX_LEVELS = {1: ([0.7979], 0.3634), 2: ([0.4528, 1.5104], 0.1175),
              3: ([0.2451, 0.7560, 1.3440, 2.1520], 0.03454)}


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_density_lloyd_max_converges_to_max_levels(bits):
    levels, mse = densities.lloyd_max("gaussian", 2**bits)
    pos, want_mse = MAX_LEVELS[bits]
    assert np.allclose(levels[2 ** (bits - 1):], pos, rtol=0, atol=1e-4)  # table rounded to 4 digits
    assert np.allclose(levels, -levels[::-1], atol=1e-12)
    assert mse == pytest.approx(want_mse, abs=6e-5)


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("init", ["quantile", "uniform", "laplacian"])
def test_data_lloyd_converges_to_max_levels_from_any_start(bits, init):
    x = densities.sample("gaussian", 400_000, seed=bits)
    cfg = CodebookConfig(bits=bits, init=init, iters=500, levels_dtype="fp32")
    codes, p = quantize_codebook(x, cfg)
    book = p["codebook"][0]
    pos, want_mse = MAX_LEVELS[bits]
    assert np.allclose(book[2 ** (bits - 1):], pos, rtol=0, atol=0.02)  # sampling moves the flat middle
    xh = dequantize_codebook(codes, p, cfg)
    assert np.mean((x - xh) ** 2) == pytest.approx(want_mse, rel=0.01)


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
    cfg = CodebookConfig(bits=3, granularity="channel", axis=0)
    codes, p = quantize_codebook(x, cfg)
    assert p["codebook"].shape == (6, 8) and codes.shape == x.shape and codes.max() < 8
    assert np.array_equal(p["codebook"], p["codebook"].astype(np.float16).astype(np.float32))
    assert np.all(np.diff(p["codebook"], axis=1) >= 0)
    xh = dequantize_codebook(codes, p, cfg)
    # assignment is nearest-level for the levels as sent
    dist = np.abs(x[:, :, None] - p["codebook"][:, None, :])
    assert np.allclose(np.abs(x - xh), dist.min(axis=2))
    rel = np.mean((x - xh) ** 2, axis=1) / np.var(x, axis=1)
    assert np.all(rel < 0.05)
    # axis 1, codebook per column
    c1 = CodebookConfig(bits=2, granularity="channel", axis=1)
    codes1, p1 = quantize_codebook(x, c1)
    assert p1["codebook"].shape == (300, 4)
    assert dequantize_codebook(codes1, p1, c1).shape == x.shape


def test_bad_configs():
    for kw, msg in (({"bits": 0}, "bits"), ({"bits": 9}, "bits"), ({"granularity": "group"}, "granularity"),
                    ({"init": "kmeans++"}, "init"), ({"iters": -1}, "iters"),
                    ({"levels_dtype": "fp8"}, "levels")):
        with pytest.raises(SpecError, match=msg):
            CodebookConfig(**kw)
    with pytest.raises(SpecError, match="NaN"):
        quantize_codebook(np.array([1.0, np.nan]), CodebookConfig())
    with pytest.raises(SpecError, match="weights"):
        lloyd(np.zeros(3), np.zeros(2), np.array([1.0, -1.0, 1.0]))

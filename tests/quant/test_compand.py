"""Companders: mu-law / A-law shapes, the optimal compressor (Panter-Dite), the spline compander
with an optimised segment threshold, histogram-fitted compressors."""

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.quant import CodebookConfig, compand, densities
from nnshare.quant.codebook import quantize


def test_mu_and_a_law_shapes():
    y = compand.mu_law_levels(256, 1.0)
    assert np.allclose(y, -y[::-1]) and np.all(np.diff(y) > 0) and y[-1] < 1.0
    u = np.log1p(255 * np.abs(y)) / np.log1p(255) * np.sign(y)  # c(levels) are the cell centres
    assert np.allclose(u, -1 + (2 * np.arange(256) + 1) / 256)
    a = compand.a_law_levels(256, 1.0)
    assert np.allclose(a, -a[::-1]) and np.all(np.diff(a) > 0)
    small = np.abs(a) < 1 / 87.6  # linear segment: equal spacing
    assert np.allclose(np.diff(a[small]), np.diff(a[small])[0])
    # mu-law at its best loading, 8 bits: ~37.9 dB for both sources, nearly source-independent
    for source in densities.SOURCES:
        _, _, mse = compand.best_mu_law(source, 256)
        assert densities.sqnr_db(mse) == pytest.approx(37.9, abs=0.15)


def test_optimal_compander_approaches_panter_dite():
    mse = densities.quantizer_mse("gaussian", compand.optimal_levels("gaussian", 256))
    assert densities.sqnr_db(mse) == pytest.approx(43.83, abs=0.01)
    # Panter-Dite high-rate: D = (sqrt(3) pi / 2) 2^-2R
    panter_dite = -10 * np.log10(np.sqrt(3) * np.pi / 2 * 2.0**-16)
    assert densities.sqnr_db(mse) == pytest.approx(panter_dite, abs=0.02)
    mse = densities.quantizer_mse("laplacian", compand.optimal_levels("laplacian", 256))
    assert densities.sqnr_db(mse) == pytest.approx(41.65, abs=0.01)


def test_spline_compander_with_optimised_threshold_is_close_to_optimal():
    for source, segments, gap in (("gaussian", 16, 0.07), ("laplacian", 16, 0.2)):
        t, levels, mse = compand.best_spline(source, 256, segments)
        opt = densities.quantizer_mse(source, compand.optimal_levels(source, 256))
        assert 0 <= densities.sqnr_db(opt) - densities.sqnr_db(mse) < gap
        fixed = densities.quantizer_mse(source, compand.spline_levels(source, 256, 1.5 * t, segments))
        assert mse < fixed  # the threshold matters
        assert levels.size == 256 and np.all(np.diff(levels) > 0)
    with pytest.raises(SpecError, match="spline"):
        compand.spline_levels("gaussian", 8, 3.0, segments=5)


def test_histogram_compander_as_codebook_start():
    x = densities.sample("laplacian", 200_000, seed=2)
    start = compand.histogram_levels(x, 64)
    par = compand.optimal_levels("laplacian", 64, scale=float(x.std()))
    assert np.all(np.diff(start) >= 0)
    sq = {}
    for name, lv in (("hist", start), ("param", par)):
        xh = quantize(x, CodebookConfig(levels=64), levels=lv).dequantize()
        sq[name] = 10 * np.log10(np.mean(x**2) / np.mean((x - xh) ** 2))
    assert sq["hist"] > sq["param"] - 0.1 and sq["param"] > 29.5
    with pytest.raises(SpecError, match="finite"):
        compand.histogram_levels(np.array([np.nan]), 4)

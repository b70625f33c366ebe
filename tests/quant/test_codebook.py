"""Codebook quantizer: Lloyd fitting, exact agreement with the receiver, configs."""

import numpy as np
import pytest

from nnshare.format import SpecError
from nnshare.format.spec import round_float
from nnshare.quant import CodebookConfig, QuantSpec, config_from_dict, quantize
from nnshare.quant.codebook import lloyd, nearest


def _mse(q, x):
    return float(((q.dequantize().astype(np.float64) - x) ** 2).mean())


def test_lloyd_beats_uniform_levels_and_affine_at_equal_bits():
    x = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    fitted = _mse(quantize(x, CodebookConfig(levels=8)), x)
    start = _mse(quantize(x, CodebookConfig(levels=8, iters=0, init="uniform")), x)
    affine = _mse(quantize(x, QuantSpec(bits=3, symmetric=False)), x)
    # Lloyd-Max for a unit Gaussian at 8 levels: D = 0.03455 (Max 1960)
    assert fitted < 0.037 and fitted < 0.5 * start and fitted < 0.5 * affine


def test_codes_are_nearest_rounded_levels():
    x = np.random.default_rng(1).laplace(size=(7, 11)).astype(np.float32)
    for dt in ("fp32", "fp16", "bf16"):
        q = quantize(x, CodebookConfig(levels=6, level_dtype=dt))
        lv = q.params["levels"]
        assert np.array_equal(lv, round_float(lv, dt)) and np.all(np.diff(lv) >= 0)
        err = np.abs(x[..., None] - lv.astype(np.float64))
        best = err.min(axis=-1)
        assert np.allclose(np.take_along_axis(err, q.codes[..., None], -1)[..., 0], best)


def test_lloyd_edge_cases():
    assert np.array_equal(lloyd(np.zeros(0), 4), np.zeros(4))
    lv = lloyd(np.full(10, 3.0), 4)
    assert np.all(lv == 3.0)
    assert np.array_equal(nearest([-5.0, 0.4, 0.6, 9.0], np.array([0.0, 1.0])), [0, 0, 1, 1])


def test_given_levels_and_bad_inputs():
    x = np.linspace(-1, 1, 50, dtype=np.float32)
    q = quantize(x, CodebookConfig(levels=3), levels=[-1.0, 0.0, 1.0])
    assert set(np.unique(q.dequantize())) <= {-1.0, 0.0, 1.0}
    with pytest.raises(SpecError, match="3 finite"):
        quantize(x, CodebookConfig(levels=3), levels=[0.0, 1.0])
    with pytest.raises(SpecError, match="NaN"):
        quantize(np.array([np.nan], np.float32), CodebookConfig())
    for kw in ({"levels": 1}, {"levels": 257}, {"level_dtype": "fp8"}, {"iters": -1}, {"init": "x"},
               {"scheme": "affine"}):
        with pytest.raises(SpecError):
            CodebookConfig(**kw)


def test_config_json_and_bits():
    c = CodebookConfig(levels=33, level_dtype="bf16", iters=3)
    assert c.bits == 6 and c.at_bits(2).levels == 4
    assert config_from_dict(c.to_dict()) == c
    assert config_from_dict({"bits": 3}) == QuantSpec(bits=3)
    with pytest.raises(SpecError, match="unknown CodebookConfig"):
        config_from_dict({"scheme": "codebook", "bits": 3})
    with pytest.raises(SpecError, match="no quantizer"):
        config_from_dict({"scheme": "nope"})

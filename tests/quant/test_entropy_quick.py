"""The quick model estimate from one histogram per family (entropy_quick.marginal) equals each
model's estimate from its own contexts, for every model and trellis variant."""

import numpy as np
import pytest

from nnshare.format.entropy import MODELS
from nnshare.quant import entropy_model as em
from nnshare.quant import entropy_quick as quick
from nnshare.quant import entropy_setup as es
from nnshare.quant._entropy_fast import span
from nnshare.quant.tcq import tcq_codes


def _codes(states: int, n: int = 1 << 15, row_len: int = 256):
    rng = np.random.default_rng(states)
    scale = np.repeat(rng.random(n // row_len) + 0.2, row_len) * np.tile(rng.random(row_len) + 0.5,
                                                                           n // row_len)
    u = rng.laplace(size=n) * 5 * scale
    return (tcq_codes(u, 0.0, states) if states else np.rint(u)).astype(np.int64)


@pytest.mark.parametrize("states", [0, 4, 8])
def test_marginal_estimates_equal_own_histograms(states):
    codes = _codes(states)
    lo, hi = int(codes.min()), int(codes.max())
    fast = {em.MODEL_NAMES[s.flags]: (s.bits, s.hist) for s in
            em._candidates(codes, lo, hi, "auto", 256, quick=True)}
    names = [m for m in MODELS if "temporal" not in m]
    assert set(fast) >= {m for m in names if ("tcq8" in m) == (states == 8)
                         and ("tcq" in m) == (states > 0)}
    for m in fast:
        own = em._candidates(codes, lo, hi, [m], 256, quick=True)[0]  # a family of one model
        ref = es.setup(codes, MODELS[m], 256, *[_tcq(codes, em.MODELS[m])], None)
        ref = es.estimate(ref)  # its own contexts and histogram
        np.testing.assert_array_equal(fast[m][1], ref.hist)
        assert fast[m][0] == ref.bits == own.bits


def _tcq(codes, flags):
    if not flags & em.TCQ:
        return None
    from nnshare.quant._entropy_fast import tcq_levels

    return (*tcq_levels(codes, 0, 8 if flags & em.TCQ8 else 4), 0)


def test_marginal_sums_out_missing_components():
    h = np.arange(2 * 3 * 16 * 5).reshape(-1, 5)
    fine = em.TCQ | em.NEIGHBOUR | em.ROWCOL
    np.testing.assert_array_equal(quick.marginal(h, fine, em.TCQ, es.K_ROW * es.K_COL),
                                  h.reshape(2, 48, 5).sum(axis=1))
    np.testing.assert_array_equal(quick.marginal(h, fine, em.TCQ | em.ROWCOL, es.K_ROW * es.K_COL),
                                  h.reshape(2, 3, 16, 5).sum(axis=1).reshape(32, 5))
    assert quick.finest(em.TCQ, rowcol_ok=False) == em.TCQ | em.NEIGHBOUR


def test_span_is_min_and_max():
    v = np.random.default_rng(0).integers(-900, 700, size=10_000)
    assert span(v) == (int(v.min()), int(v.max()))
    assert span(v[:5]) == (int(v[:5].min()), int(v[:5].max()))


@pytest.fixture(scope="module")
def tcq8_payloads():
    """A TCQ8 array big enough for the quick choice, its int64 payload (compiled path)."""
    codes = _codes(8, n=1 << 16)
    return codes, em.encode_codes(codes, -128, 127, row_len=256)


def test_int32_codes_give_the_int64_bytes(tcq8_payloads):
    codes, ref = tcq8_payloads
    assert em.encode_codes(codes.astype(np.int32), -128, 127, row_len=256) == ref
    assert em.encode_codes(codes.astype(np.int16), -128, 127, row_len=256) == ref


def test_int32_codes_numpy_path(tcq8_payloads, numpy_path):
    codes, ref = tcq8_payloads
    assert span(codes) == (int(codes.min()), int(codes.max()))
    assert em.encode_codes(codes.astype(np.int32), -128, 127, row_len=256) == ref


def test_compiled_kmeans_gives_the_numpy_classes(monkeypatch):
    from nnshare.quant import _entropy_fast
    from nnshare.quant.entropy_fit import scale_classes

    rng = np.random.default_rng(3)
    cases = [rng.random(384) * 5, rng.lognormal(size=1536), np.full(50, 2.0),
             np.repeat([0.1, 3.0], 20), rng.integers(0, 3, 200).astype(float)]
    fast = [scale_classes(c, k) for c in cases for k in (1, 2, 4)]
    assert any(f.max() == 3 for f in fast)  # four classes do occur
    monkeypatch.setattr(_entropy_fast, "_kmeans_fast", None)
    slow = [scale_classes(c, k) for c in cases for k in (1, 2, 4)]
    for f, s in zip(fast, slow, strict=True):
        assert f.dtype == s.dtype == np.int8
        np.testing.assert_array_equal(f, s)


def test_linear_quantiles_equal_numpy_bit_for_bit():
    from nnshare.quant.entropy_fit import linear_quantiles

    rng = np.random.default_rng(5)
    for t in range(3000):
        n, k = int(rng.integers(1, 200)), int(rng.integers(2, 9))
        v = [rng.normal(size=n), np.full(n, rng.normal()),
             np.log2(np.sqrt(rng.integers(0, 5, n) / rng.integers(1, 7)) + 0.5)][t % 3]
        qs = (np.arange(k) + 0.5) / k
        want = np.quantile(v, qs)
        got = linear_quantiles(v, qs)
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))
    assert linear_quantiles(np.array([1.0, 2.0]), np.array([0.0, 1.0])).tolist() == [1.0, 2.0]

import numpy as np
import pytest

from nnshare import QuantSpec, SpecError, quantize
from nnshare.format.spec import to_blocks
from nnshare.ptq.clip import block_errors, clip_grid
from nnshare.ptq.weights import grid

SPECS = [
    QuantSpec(bits=4, granularity="group", group_size=32, axis=1, symmetric=False),
    QuantSpec(bits=3, granularity="channel", symmetric=False),
    QuantSpec(bits=4, granularity="channel"),
    QuantSpec(bits=2, granularity="tensor", symmetric=False),
]


def _weighted(w, wt, g):
    return float((wt * (g.dequantize(g.nearest(w)) - w) ** 2).sum())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.bits}b-{s.granularity}-{s.symmetric}")
@pytest.mark.parametrize("seed", range(3))
def test_clip_search_never_worse_than_minmax_or_mse_on_its_objective(spec, seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_t(3, (24, 96)) * rng.uniform(0.1, 2, (24, 1))).astype(np.float32)
    wt = np.broadcast_to(rng.gamma(0.5, 1.0, (1, 96)), w.shape)  # e.g. diag(H) of a Linear's inputs
    g = clip_grid(w, spec, wt[:1])
    mm = grid(w, spec)
    mse = grid(w, QuantSpec(**{**spec.to_dict(), "range_method": "mse"}))
    e = _weighted(w, wt, g)
    assert e <= _weighted(w, wt, mm) * (1 + 1e-9)
    assert e <= _weighted(w, wt, mse) * (1 + 1e-9)
    # per block too: each block's chosen range is at most min-max's error
    blocks, wb = to_blocks(w, spec), to_blocks(np.ascontiguousarray(wt, np.float32), spec)
    chosen = (wb * (to_blocks(g.dequantize(g.nearest(w)).astype(np.float32), spec) - blocks) ** 2).sum(1)
    assert np.all(chosen <= block_errors(blocks, wb, blocks.min(1), blocks.max(1), spec) * (1 + 1e-5) + 1e-9)
    q = g.tensor(g.nearest(w))
    ref = quantize(w, spec)
    assert q.codes.shape == ref.codes.shape and {k: v.shape for k, v in q.params.items()} == {
        k: v.shape for k, v in ref.params.items()}
    assert np.allclose(q.dequantize(), g.dequantize(g.nearest(w)), atol=1e-6)


def test_clip_search_uniform_weights_matches_or_beats_the_mse_range():
    rng = np.random.default_rng(5)
    w = rng.standard_t(2.5, (16, 128)).astype(np.float32)
    spec = QuantSpec(bits=4, granularity="group", group_size=64, axis=1, symmetric=False)
    ones = np.ones_like(w)
    e_clip = _weighted(w, ones, clip_grid(w, spec))
    e_mse = _weighted(w, ones, grid(w, QuantSpec(**{**spec.to_dict(), "range_method": "mse"})))
    assert e_clip <= e_mse * (1 + 1e-9)
    assert e_clip < 0.99 * e_mse  # the one-end refinement finds better asymmetric ranges here


def test_clip_search_weights_move_the_range_toward_heavy_columns():
    # one outlier column per block: heavily weighted it is kept, weightless it is clipped
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 32)).astype(np.float32) * 0.1
    w[:, 0] = 3.0
    spec = QuantSpec(bits=3, granularity="channel", symmetric=False)
    heavy = np.ones((1, 32))
    heavy[0, 0] = 1e4
    light = np.ones((1, 32))
    light[0, 0] = 0.0
    g_heavy, g_light = clip_grid(w, spec, heavy), clip_grid(w, spec, light)
    assert np.all(g_light.scale_rows < 0.5 * g_heavy.scale_rows)
    err0 = lambda g: np.abs(g.dequantize(g.nearest(w))[:, 0] - 3.0).mean()  # noqa: E731
    assert err0(g_heavy) < 0.25 * err0(g_light)


def test_clip_search_refusals():
    w = np.ones((4, 8), np.float32)
    spec = QuantSpec(bits=4, granularity="channel")
    with pytest.raises(SpecError, match="NaN or Inf"):
        clip_grid(np.full((4, 8), np.nan, np.float32), spec)
    with pytest.raises(SpecError, match=">= 0"):
        clip_grid(w, spec, -np.ones((1, 8)))
    with pytest.raises(SpecError, match="rounding"):
        clip_grid(w, QuantSpec(bits=4, granularity="channel", rounding="stochastic"))

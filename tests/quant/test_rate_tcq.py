"""Trellis-coded quantization: the compiled and numpy Viterbi searches agree."""

import numpy as np
import pytest

from nnshare.format.entropy.contexts import tcq_levels
from nnshare.quant import tcq


@pytest.mark.skipif(tcq._viterbi_fast is None, reason="numba (extra 'fast') not installed")
@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("states", [4, 8])
def test_compiled_and_numpy_viterbi_find_equally_good_paths(monkeypatch, lam, states):
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.standard_normal(3000) * 5, rng.laplace(size=1001) * 0.7])
    fast = tcq.tcq_codes(u, lam, states)
    monkeypatch.setattr(tcq, "_viterbi_fast", None)
    monkeypatch.setattr(tcq, "_levels_fast", None)
    slow = tcq.tcq_codes(u, lam, states)
    assert tcq_levels(fast, states) is not None and tcq_levels(slow, states) is not None
    # same search: identical paths up to floating-point ties (float32 vs float64 costs)
    assert (fast == slow).mean() > 0.99
    d_fast, d_slow = ((u - fast) ** 2).sum(), ((u - slow) ** 2).sum()
    if lam == 0:
        assert abs(d_fast - d_slow) <= 1e-3 * d_slow


@pytest.mark.parametrize("states", [4, 8])
def test_distortion_only_tcq_beats_nearest_rounding_at_double_step(states):
    # TCQ with step d switches between two quantizers of step 2d; its MSE must be well below
    # plain rounding at 2d (same number of levels per quantizer) and above rounding at d.
    u = np.random.default_rng(1).standard_normal(20000) * 8
    r = tcq.tcq_codes(u, states=states)
    mse = ((u - r) ** 2).mean()
    assert 1 / 12 < mse < 0.8 * (4 / 12)  # ~1 dB granular gain of the trellis


def test_eight_states_beat_four_at_equal_rate():
    from nnshare.format.entropy import cost_bits

    g = np.random.default_rng(2).standard_normal(100000)
    gaps = {}
    for states in (4, 8):
        r = tcq.tcq_codes(g / 0.1, 0.4, states)
        mse = ((g - 0.1 * r) ** 2).mean()
        gaps[states] = cost_bits(r.astype(np.int32), -512, 511) / g.size - 0.5 * np.log2(1 / mse)
    assert gaps[8] < gaps[4] - 0.004 and gaps[8] < 0.12  # ECSQ alone: ~0.25 above R(D)

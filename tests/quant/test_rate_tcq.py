"""Trellis-coded quantization: the compiled and numpy Viterbi searches agree."""

import numpy as np
import pytest

from nnshare.format.entropy.contexts import tcq_levels
from nnshare.quant import tcq


@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("states", [4, 8])
def test_compiled_and_numpy_viterbi_agree_bit_for_bit(monkeypatch, lam, states):
    """Same candidates, float64 costs and tie rule: the same path, not merely an equally good
    one. Runs in CI (make test installs numba); fails without it rather than skipping."""
    assert tcq._viterbi_fast is not None, "numba missing: install the 'fast' extra"
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.standard_normal(3000) * 5, rng.laplace(size=1001) * 0.7,
                        np.arange(-40, 40) * 0.5])  # exact half-step values: rounding ties
    fast = tcq.tcq_codes(u, lam, states)
    monkeypatch.setattr(tcq, "_viterbi_fast", None)
    monkeypatch.setattr(tcq, "_levels_fast", None)
    slow = tcq.tcq_codes(u, lam, states)
    assert tcq_levels(fast, states) is not None
    np.testing.assert_array_equal(fast, slow)


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

"""The trellis search a block of stripes at a time (issue 19, memory) gives the codes of the
whole-array search: stripes restart in state 0 and the rate tables come from the same sample."""

import numpy as np
import pytest

from nnshare.quant import rate, tcq
from nnshare.quant.rate import LAMBDA_HIGH_RATE, quantize_tensor


@pytest.mark.parametrize("numba_on", [True, False])
@pytest.mark.parametrize("states", [4, 8])
def test_blocks_give_the_whole_array_codes(numba_on, states, monkeypatch):
    if not numba_on:
        monkeypatch.setattr(tcq, "_viterbi_fast", None)
        monkeypatch.setattr(tcq, "_levels_fast", None)
    rng = np.random.default_rng(states)
    # 1 value, one short stripe, a short last stripe, and > 2 x 256 stripes (sampled rates)
    for n in (1, 40, 64 * 7 + 5, 64 * (2 * tcq._RATE_SAMPLE + 37) + 19):
        u = rng.laplace(size=n) * 3
        for lam in (0.0, 0.4):
            ref = tcq.tcq_codes(u, lam, states)
            assert ref.dtype == np.int64
            for block in (1, 64, 64 * 9, 10**9) if numba_on else (64 * 37, 10**9):
                got = tcq.tcq_codes_blocks(lambda a, b, u=u: u[a:b], n, lam, states, block=block)
                assert got.dtype == np.int32
                np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError, match="5 states"):
        tcq.tcq_codes_blocks(lambda a, b: np.zeros(b - a), 10, 0.0, 5)


def test_quantize_tensor_in_blocks_is_the_whole_array_result(monkeypatch):
    rng = np.random.default_rng(1)
    x = (rng.laplace(size=(300, 128)) * 0.02).astype(np.float32)
    lam = 3.5 * LAMBDA_HIGH_RATE
    whole = {m: quantize_tensor(x, 0.004, method=m, lam=lam) for m in ("tcq", "tcq4")}
    monkeypatch.setattr(tcq, "BLOCK", 64 * 11)  # 55 blocks, the path of tensors over 1M values
    for m, ref in whole.items():
        got = quantize_tensor(x, 0.004, method=m, lam=lam)
        assert got.codes.dtype == ref.codes.dtype == np.int32
        np.testing.assert_array_equal(got.codes, ref.codes)
        assert got.spec == ref.spec and got.shape == ref.shape
        np.testing.assert_array_equal(got.params["scale"], ref.params["scale"])
    # codes that could pass 2**30 (int32) take the whole-array path, which refuses them
    assert rate._tcq_blocks(x, np.float32([1e-12]), "tcq", lam) is None

"""The lane-stepped TCQ level extraction (nnshare/quant/tcq_levels.py) gives the stripe loop's
levels, quantizer ids and validity: valid paths of both trellises with partial blocks and a
short last stripe, a zero offset, and codes that are not a path (early in a block, in the tail)."""

import numpy as np
import pytest

from nnshare.format.entropy import contexts as cx
from nnshare.quant import _entropy_fast as ef
from nnshare.quant import tcq_levels
from nnshare.quant.tcq import tcq_codes

numba = pytest.importorskip("numba")
_loop = numba.njit(tcq_levels.levels_into)


def _both(r, zero, states):
    """(k, q, ok) of the shipped path (lane blocks, then the stripe loop) and of the stripe loop
    over the whole array."""
    trans, quant = (t.astype(np.int64) for t in cx.TRELLISES[states])
    k0, q0 = np.empty(r.size, np.int32), np.empty(r.size, np.int8)
    ok0 = _loop(r, zero, cx.stripes(r.size)[1], trans, quant, k0, q0)
    got = ef.tcq_levels(r, zero, states)
    return ((*got, True) if got is not None else (None, None, False)), (k0, q0, ok0)


@pytest.mark.parametrize("states", [4, 8])
@pytest.mark.parametrize("n", [1, 63, 64 * 32, 64 * 32 * 3 + 64 * 5 + 17])
def test_valid_paths_match_the_stripe_loop(states, n):
    rng = np.random.default_rng(n)
    u = rng.laplace(size=n) * 5
    u[::5] = 0.0
    for zero in (0, 7):
        r = (tcq_codes(u, 0.0, states) + zero).astype(np.int32)
        (k, q, ok), (k0, q0, ok0) = _both(r, zero, states)
        assert ok and ok0
        np.testing.assert_array_equal(k, k0)
        np.testing.assert_array_equal(q, q0)


@pytest.mark.parametrize("at", [5, 64 * 32 + 100, 64 * 32 * 3 + 64 * 5 + 3])
def test_invalid_codes_are_rejected(at):
    n = 64 * 32 * 3 + 64 * 5 + 17
    r = tcq_codes(np.random.default_rng(1).laplace(size=n) * 5, 0.0, 8).astype(np.int32)
    r[at] += 1  # the wrong parity for its quantizer
    (_k, _q, ok), (_k0, _q0, ok0) = _both(r, 0, 8)
    assert not ok and not ok0
    assert ef.tcq_levels(r, 0, 8) is None

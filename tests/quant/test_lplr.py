"""LPLR on low-rank-plus-noise matrices: beats plain quantization and direct SVD quantization at
equal bits; budgets and bad input."""

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.quant.lplr import direct_svd_quant, lplr, lplr_bits, minmax_quantize, rank_for_budget


def low_rank(n=256, d=192, k=16, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)) @ rng.standard_normal((k, d)) + noise * rng.standard_normal((n, d))


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(a)


def test_minmax_quantizer():
    a = np.array([[-1.0, 0.2], [0.5, 2.0]])
    q = minmax_quantize(a, 2)  # points -1, 0, 1, 2
    assert q.tolist() == [[-1.0, 0.0], [1.0, 2.0]]
    assert np.array_equal(minmax_quantize(np.ones((2, 2)), 3), np.ones((2, 2)))


@pytest.mark.parametrize("bits_per_coord", [1, 2])
def test_lplr_beats_plain_and_direct_svd_at_equal_bits(bits_per_coord):
    a = low_rank()
    n, d = a.shape
    budget = n * d * bits_per_coord
    plain = rel(a, minmax_quantize(a, bits_per_coord))
    for b in (3, 4):
        m = rank_for_budget(n, d, budget, b, b)
        r = lplr(a, m, b, b)
        assert r.bits == lplr_bits(n, d, m, b, b) <= budget
        assert rel(a, r.approx) < 0.5 * plain
        assert rel(a, r.approx) <= rel(a, direct_svd_quant(a, m, b, b).approx) + 1e-9
        assert rel(a, lplr(a, m, b, b, iters=3).approx) <= rel(a, r.approx) * 1.05  # alternating refits


def test_budget_and_bad_input():
    assert rank_for_budget(100, 50, 100 * 4 + 50 * 4 + 128, 4, 4) == 1
    assert rank_for_budget(100, 50, 10, 4, 4) == 0
    with pytest.raises(SpecError, match="rank"):
        lplr(np.ones((4, 3)), 4, 2, 2)
    with pytest.raises(SpecError, match="finite"):
        lplr(np.array([[np.nan, 1.0]]), 1, 2, 2)
    with pytest.raises(SpecError, match="bits"):
        minmax_quantize(np.ones(3), 0)

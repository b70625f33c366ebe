"""The lower bound that lets the model choice skip fits: never above a fitted model's bits, and
the pruned choice is the full one's."""

import numpy as np
import pytest

from nnshare.quant import entropy_memo
from nnshare.quant import entropy_model as em
from nnshare.quant.entropy_bound import lower_bound


@pytest.mark.parametrize("seed", range(6))
def test_bound_never_above_a_fit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(16, 5000))
    x = rng.laplace(size=n) * rng.uniform(0.3, 20) if seed % 2 else rng.uniform(-30, 30, n)
    codes = np.rint(x).astype(np.int64)
    lo, hi = int(codes.min()) - 1, int(codes.max()) + 2
    row = 16 if n % 16 == 0 else None
    entropy_memo.clear()
    for s in em._candidates(codes, lo, hi, "auto", row):
        assert em._bound(s) <= s.bits + 1e-6 * s.bits
    assert lower_bound(np.zeros((2, 3), np.int64), -1, 5.0) == 5.0 + 2 * 16  # two empty contexts


@pytest.mark.parametrize("seed", range(6))
def test_pruned_choice_is_the_full_choice(seed):
    rng = np.random.default_rng(100 + seed)
    codes = np.rint(rng.normal(size=(64, 48)) * np.linspace(0.5, 6, 48) * (1 + seed)).astype(np.int64)
    c, q = codes.reshape(-1), int(np.abs(codes).max()) + 1
    entropy_memo.clear()
    full = em.model_costs(c, -q, q, row_len=48)
    entropy_memo.clear()
    assert em.cost_bits(c, -q, q, row_len=48) == min(full.values())
    entropy_memo.clear()
    pruned = em._candidates(c, -q, q, "auto", 48, prune=True)
    assert min(pruned, key=lambda s: s.bits).flags == em.MODELS[min(full, key=full.__getitem__)]

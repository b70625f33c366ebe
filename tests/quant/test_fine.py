"""nnshare.quant.fine: max |x| without copies equals numpy's, and the step cap from it."""

import math

import numpy as np
import pytest

from nnshare.quant.fine import abs_max, step_cap


@pytest.mark.parametrize("x", [
    np.array([-3.5, 1.0, 2.0], np.float32),
    np.array([0.5, 7.25], np.float32),
    np.array([-1e-30, -2e-30], np.float32),
    np.zeros((3, 4), np.float32),
    np.random.default_rng(0).standard_normal((64, 33)).astype(np.float32),
    np.array([np.inf, -1.0], np.float32),
])
def test_abs_max_and_step_cap_equal_numpy(x):
    ref = float(np.abs(x.astype(np.float64)).max())
    assert abs_max(x) == ref
    assert step_cap(x) == (ref / 2 if ref > 0 else 1.0)


def test_abs_max_of_empty_and_nan():
    assert abs_max(np.zeros(0, np.float32)) == 0.0 and step_cap(np.zeros(0, np.float32)) == 1.0
    x = np.array([1.0, np.nan], np.float32)
    assert math.isnan(abs_max(x)) and step_cap(x) == 1.0

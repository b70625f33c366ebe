"""The entropy coder's contexts in one compiled pass (``_entropy_fast.contexts``, stripe step,
row and column counted along) equal the numpy composition component by component, for every
mix of quantizer id, neighbour and row/column classes, with partial stripes and rows."""

import itertools

import numpy as np
import pytest

from nnshare.quant import _entropy_fast as ef

pytest.importorskip("numba")


@pytest.mark.parametrize("n,row_len", [(1, 1), (63, 7), (64 * 37 + 5, 37), (384 * 300, 384)])
def test_compiled_contexts_equal_numpy(n, row_len):
    rng = np.random.default_rng(n)
    sym = rng.integers(-40, 41, size=n).astype(np.int32)
    q = rng.integers(0, 2, size=n).astype(np.int8)
    rows = rng.integers(0, 4, size=-(-n // row_len)).astype(np.int8)
    cols = rng.integers(0, 4, size=row_len).astype(np.int8)
    for use_q, use_nb, use_rc in itertools.product((False, True), repeat=3):
        if n % row_len and use_rc:
            continue  # row/column contexts need whole rows
        args = (q if use_q else None, sym, (2, 3, 9) if use_nb else None,
                (rows, cols, row_len, 4, 4) if use_rc else None)
        np.testing.assert_array_equal(ef.contexts(*args, compiled=True),
                                      ef.contexts(*args, compiled=False))

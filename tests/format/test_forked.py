"""Records encoded in forked processes: the same bytes and accounting as in one process."""

import os

import numpy as np
import pytest

from nnshare.format import SpecError, write_stream
from nnshare.format.forked import assign, forked_map
from nnshare.quant.rate import quantize_tensor
from nnshare.share.rated import encode_rate

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")  # Linux CI has it


def _arrays():
    rng = np.random.default_rng(5)
    return {"a.weight": (rng.standard_normal((300, 200)) * 0.05).astype(np.float32),
            "a.bias": (rng.standard_normal(300) * 0.01).astype(np.float32),
            "b.weight": rng.laplace(size=(64, 500)).astype(np.float32) * 0.02,
            "c.weight": (rng.standard_normal((10, 64)) * 0.3).astype(np.float32)}


@pytest.mark.parametrize("method", ["tcq", "nearest"])
def test_two_processes_write_the_same_stream(method):
    arrays = _arrays()

    def prep(_name, a):
        return quantize_tensor(a, 0.004, method=method)

    one = write_stream(arrays, entropy="auto", prepare=prep)
    two = write_stream(arrays, entropy="auto", prepare=prep, processes=2)
    assert two[0] == one[0] and two[1] == one[1]
    qs = {k: prep(k, a) for k, a in arrays.items()}
    assert write_stream(qs, entropy="auto", processes=2)[0] == one[0]
    assert sum(s.bits for s in one[1]) == 8 * len(one[0])


def test_rate_controlled_model_same_bytes_with_two_processes():
    arrays = _arrays()
    a = encode_rate(arrays, bits_per_param=2.0, method="tcq", warn=False)
    b = encode_rate(arrays, bits_per_param=2.0, method="tcq", warn=False, processes=2)
    assert a.data == b.data


def test_a_failing_item_raises_its_own_error_in_the_parent():
    def fn(i):
        if i == 2:
            raise SpecError(f"item {i} is bad")
        return bytes([i]) * (i + 1)

    with pytest.raises(SpecError, match="item 2 is bad"):
        forked_map(fn, [1, 1, 1, 1], processes=2)
    assert forked_map(lambda i: b"x" * i, [3, 1, 2], processes=2) == [b"", b"x", b"xx"]


def test_assign_balances_by_weight_deterministically():
    assert assign([5, 1, 1, 1, 4], 2) == [[0, 2], [1, 3, 4]]  # loads 6 and 6
    assert assign([1, 1], 3) == [[0], [1], []]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_process_counts_are_refused(bad):
    with pytest.raises(SpecError, match="processes"):
        write_stream({"w": quantize_tensor(np.ones((4, 4), np.float32), 0.1)}, processes=bad)

"""Speed never changes the stream: the compiled and numpy back ends, the model-choice memo and
the rate search give the same bytes for the same input and settings."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from nnshare.format import write_stream
from nnshare.quant import entropy_memo, tcq
from nnshare.quant.rate import rate_control, tensor_bits
from nnshare.quant.rate_search import search
from nnshare.share.rated import encode_rate


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return {"fc1.weight": (rng.standard_normal((48, 64)) * 0.1).astype(np.float32),
            "fc1.bias": (rng.standard_normal(48) * 0.01).astype(np.float32),
            "fc2.weight": (rng.laplace(size=(10, 48)) * 0.05).astype(np.float32)}


@pytest.mark.parametrize("states", [4, 8])
def test_sampled_rate_tables_agree_between_compiled_and_numpy(monkeypatch, states):
    # > 2 * _RATE_SAMPLE stripes: the first pass runs on every k-th whole stripe
    assert tcq._viterbi_fast is not None, "numba missing: install the 'fast' extra"
    rng = np.random.default_rng(4)
    u = rng.laplace(size=tcq.STRIPE * (2 * tcq._RATE_SAMPLE + 37) + 19) * 3
    fast = tcq.tcq_codes(u, 0.4, states)
    monkeypatch.setattr(tcq, "_viterbi_fast", None)
    monkeypatch.setattr(tcq, "_levels_fast", None)
    np.testing.assert_array_equal(fast, tcq.tcq_codes(u, 0.4, states))


def test_lane_blocked_viterbi_gives_the_stripe_loops_codes():
    # 3 blocks of 32 full stripes, 5 stripes after them and a short tail; zeros of both signs
    from nnshare.quant import tcq_kernels

    assert tcq_kernels.KERNELS, "numba missing: install the 'fast' extra"
    rng = np.random.default_rng(9)
    u = rng.laplace(size=tcq.STRIPE * (3 * tcq_kernels._LANES + 5) + 17) * 3
    u[::7], u[::11] = 0.0, -0.0
    ties = np.rint(u * 2) / 2  # half-integers: rounding and cost ties (the vectorised floors)
    edges = tcq._edges(8)
    none = (np.zeros(1), np.zeros(1))
    for x in (u, ties):
        rates, kmin = tcq._rate_tables(tcq_kernels.KERNELS[8](x, 0.0, *none, 0, tcq.STRIPE, *edges), 8)
        for lam, tables, k0 in ((0.0, none, 0), (0.4, rates, kmin)):
            got = tcq_kernels.KERNELS[8](x, lam, *tables, k0, tcq.STRIPE, *edges)
            np.testing.assert_array_equal(got, tcq_kernels._viterbi8(x, lam, *tables, k0, tcq.STRIPE,
                                                                     *edges))


_CHILD = r"""
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
from quant.test_rate_speed_invariance import _model
from nnshare.share.rated import encode_rate
r = encode_rate(_model(), bits_per_param=3.0, method="tcq", warn=False)
print(hashlib.sha256(r.data).hexdigest(), r.result.iterations)
"""


def test_rate_controlled_stream_is_the_same_with_and_without_numba():
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def child(no_numba: bool) -> str:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("NNSHARE_NO_NUMBA", None)
        if no_numba:
            env["NNSHARE_NO_NUMBA"] = "1"
        r = subprocess.run([sys.executable, "-c", _CHILD.format(tests=tests)], capture_output=True,
                           text=True, env=env, check=True, timeout=600)
        return r.stdout.strip()

    a, b = child(False), child(True)
    here = encode_rate(_model(), bits_per_param=3.0, method="tcq", warn=False)
    assert a == b == f"{hashlib.sha256(here.data).hexdigest()} {here.result.iterations}"


def test_model_choice_memo_does_not_change_the_bytes():
    entropy_memo.clear()
    r = rate_control(_model(1), bits_per_param=2.5, method="tcq")
    tensors = dict(r.tensors)
    with_memo = write_stream(tensors, entropy="auto")[0]  # rate_control left its choices behind
    assert entropy_memo.held() > 0
    entropy_memo.clear()
    assert write_stream(tensors, entropy="auto")[0] == with_memo
    for q in tensors.values():  # and the memo a cost estimate leaves gives the same bytes again
        tensor_bits(q)
    assert write_stream(tensors, entropy="auto")[0] == with_memo


@pytest.mark.parametrize("target", [1.5, 3.0, 5.0])
def test_bit_target_met_within_tolerance_in_few_evaluations(target):
    m = _model(2)
    r = rate_control({k: v for k, v in m.items() if v.ndim == 2}, bits_per_param=target, method="tcq")
    assert target * r.numel * (1 - 0.003) <= r.bits <= target * r.numel
    assert r.iterations <= 12  # bisection needed 10-13 at tol 0.003


def test_search_finds_the_window_from_the_allowed_side():
    # y = 1000 * 2^-x falls with x: target 250 -> x = 2
    f = search(lambda x: (1000 * 2.0**-x, x), 250.0, -10, 10, 0.0, rising=False, tol=1e-3,
               max_iter=40)
    assert 250 * (1 - 1e-3) <= 1000 * 2.0**-f.result <= 250 and f.evaluations <= 6
    # a measure rising with x and an x too small raising: the search moves up
    def ev(x):
        if x < -3:
            from nnshare.format.errors import SpecError
            raise SpecError("codes too wide")
        return 4.0**x, x
    f = search(ev, 8.0, -20, 5, -10.0, rising=True, tol=1e-3, max_iter=60)
    assert 8 * (1 - 1e-3) <= 4.0**f.result <= 8
    # unreachable target: no allowed evaluation
    assert search(lambda x: (5.0, x), 1.0, 0, 1, 0.5, rising=True, tol=1e-3, max_iter=10).result is None


def test_shared_derivations_follow_the_codes_not_the_array():
    """What the candidates derive from codes is kept per digest of the codes (a read-only copy),
    so changing the caller's array in place and estimating again gives the fresh result."""
    from nnshare.quant.entropy_model import cost_bits, estimate_bits

    rng = np.random.default_rng(7)
    codes = np.clip(np.rint(rng.laplace(scale=3.0, size=(48, 64))), -31, 31).astype(np.int32).ravel()
    entropy_memo.clear()
    cold = (cost_bits(codes, -32, 31, row_len=64), estimate_bits(codes, -32, 31, row_len=64))
    assert (cost_bits(codes, -32, 31, row_len=64), estimate_bits(codes, -32, 31, row_len=64)) == cold
    other = codes.copy()
    codes[: codes.size // 2] //= 3  # the same array object, other codes
    entropy_memo.clear()
    fresh = (cost_bits(codes, -32, 31, row_len=64), estimate_bits(codes, -32, 31, row_len=64))
    entropy_memo.clear()
    cost_bits(other, -32, 31, row_len=64)
    codes2 = other.copy()
    codes2[: codes2.size // 2] //= 3
    assert (cost_bits(codes2, -32, 31, row_len=64), estimate_bits(codes2, -32, 31, row_len=64)) == fresh
    assert fresh != cold

"""Interleaved rANS lanes (payloads of >= 2**19 codes): the numba loops, the numpy lanes and the
plain-Python loops write and read the same bytes; the encoder gives the same stream with and
without numba (issues 11 and 19); a damaged lane fails the same way everywhere."""

import hashlib
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from nnshare.format.entropy import decode_codes, describe, encode_codes, rans
from nnshare.format.errors import FormatError
from nnshare.quant.tcq import tcq_codes

N = (1 << 19) + 4616  # 516 lanes; the last round and the last stripe (of 8 codes) are partial
ROW = 8  # a row length dividing N (row/column contexts)


@pytest.fixture(scope="module")
def payloads():
    rng = np.random.default_rng(7)
    prev = np.rint(rng.standard_normal(N) * 2).astype(np.int32)
    u = prev * 0.4 + rng.standard_normal(N) * 3
    lap = np.clip(np.rint(u), -128, 127).astype(np.int32)
    tcq = np.clip(tcq_codes(u, 0.0, 8), -128, 127).astype(np.int32)
    out = {}
    for model, x, ctx in (("iid", lap, None), ("tcq8+neighbour+temporal", tcq, prev),
                          ("rowcol+neighbour", lap, None)):
        p = encode_codes(x, -128, 127, models=model, row_len=ROW, context=ctx)
        out[model] = (x, ctx, p)
    return out


def test_large_payloads_interleave_lanes(payloads):
    assert rans.lanes(N) == 516
    for _, _, p in payloads.values():
        assert describe(p, N, -128, 127)["lanes"] == 516


@pytest.mark.parametrize("model", ["iid", "tcq8+neighbour+temporal", "rowcol+neighbour"])
def test_every_back_end_reads_and_writes_the_same_bytes(model, payloads, monkeypatch):
    x, ctx, p = payloads[model]
    np.testing.assert_array_equal(decode_codes(p, N, -128, 127, context=ctx), x)  # numba
    monkeypatch.setattr(rans, "_decode_fast", None)
    monkeypatch.setattr(rans, "_encode_fast", None)
    np.testing.assert_array_equal(decode_codes(p, N, -128, 127, context=ctx), x)  # numpy lanes
    assert encode_codes(x, -128, 127, models=model, row_len=ROW, context=ctx) == p
    monkeypatch.setattr(rans, "NUMPY_LANES", 10**9)  # plain Python over the lanes
    np.testing.assert_array_equal(decode_codes(p, N, -128, 127, context=ctx), x)


def test_plain_python_encoder_matches_numba(payloads, monkeypatch):
    x, ctx, p = payloads["iid"]
    monkeypatch.setattr(rans, "_encode_fast", None)
    monkeypatch.setattr(rans, "NUMPY_LANES", 10**9)
    assert encode_codes(x, -128, 127, models="iid") == p


def test_damaged_lanes_fail_alike_on_every_back_end(payloads, monkeypatch):
    x, ctx, p = payloads["tcq8+neighbour+temporal"]
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(6):
        b = bytearray(p[:-4])
        b[int(rng.integers(len(b) - 8 * 516 - 400, len(b)))] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(b) + zlib.crc32(b).to_bytes(4, "little"))
    cases.append(p[:-12] + zlib.crc32(p[:-12]).to_bytes(4, "little"))  # two words short

    def run():
        out = []
        for c in cases:
            try:
                out.append(hashlib.sha256(decode_codes(c, N, -128, 127, context=ctx)).hexdigest())
            except FormatError as e:
                out.append(str(e))
        return out

    fast = run()
    assert any("rANS" in r for r in fast)
    monkeypatch.setattr(rans, "_decode_fast", None)
    assert run() == fast



@pytest.mark.parametrize("short", [1, 37, 3000, 9000])
def test_short_words_are_exhausted_on_every_back_end(payloads, monkeypatch, short):
    """The compiled decoder reads padding past the words and checks once per round (of
    lanes x 64 codes): a payload cut by a word or by more than a round fails like the others."""
    x, ctx, p = payloads["tcq8+neighbour+temporal"]
    cut = p[: len(p) - 4 - 4 * short]
    c = cut + zlib.crc32(cut).to_bytes(4, "little")

    def run():
        try:
            return hashlib.sha256(decode_codes(c, N, -128, 127, context=ctx)).hexdigest()
        except FormatError as e:
            return str(e)

    fast = run()
    assert "rANS" in fast
    monkeypatch.setattr(rans, "_decode_fast", None)
    assert run() == fast

_CHILD = r"""
import hashlib, numpy as np
from nnshare.format import write_stream
from nnshare.quant import QuantSpec, quantize
rng = np.random.default_rng(3)
t = {"w": quantize(rng.laplace(size=(768, 700)).astype(np.float32), QuantSpec(bits=5)),
     "b": quantize(rng.standard_normal(3000).astype(np.float32), QuantSpec(bits=6))}
print(hashlib.sha256(write_stream(t, entropy="auto")[0]).hexdigest())
"""


def test_encoder_writes_the_same_bytes_with_and_without_numba():
    def child(no_numba: bool) -> str:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("NNSHARE_NO_NUMBA", None)
        if no_numba:
            env["NNSHARE_NO_NUMBA"] = "1"
        r = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                           env=env, check=True, timeout=600)
        return r.stdout.strip()

    a, b = child(False), child(True)
    assert len(a) == 64 and a == b

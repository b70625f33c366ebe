"""The fused dequantizing decode (issue 19): ``decode_values`` gives float32(code) * scale of
``decode_codes``' codes bit for bit, with the same errors, on the compiled and numpy paths; a
stream's one-scale symmetric entropy records dequantize through it to the values of
``finish().dequantize()``."""

import zlib

import numpy as np
import pytest

from nnshare.format import decode_arrays, read_stream, write_stream
from nnshare.format.entropy import decode_codes, decode_values, encode_codes, rans
from nnshare.format.errors import FormatError
from nnshare.quant.rate import quantize_tensor
from nnshare.quant.tcq import tcq_codes

SCALE = np.float32(0.0028768426)


@pytest.fixture(scope="module")
def payloads():
    rng = np.random.default_rng(11)
    out = {}
    for n in (5_000, (1 << 19) + 333):  # one rANS state; lanes
        u = rng.laplace(size=n) * 7
        tcq = np.clip(tcq_codes(u, 0.0, 8), -128, 127).astype(np.int32)
        lap = np.clip(np.rint(u), -128, 127).astype(np.int32)
        for model, x in (("tcq8+neighbour", tcq), ("iid", lap), ("neighbour", lap)):
            out[(model, n)] = (x, encode_codes(x, -128, 127, models=model))
    return out


def _both(fn, monkeypatch):
    fast = fn()
    monkeypatch.setattr(rans, "_decode_fast", None)
    return fast, fn()


def test_values_are_codes_times_scale_on_every_back_end(payloads, monkeypatch):
    def run():
        return {k: decode_values(p, x.size, -128, 127, SCALE) for k, (x, p) in payloads.items()}

    fast, slow = _both(run, monkeypatch)
    for k, (x, p) in payloads.items():
        want = x.astype(np.float32) * SCALE
        assert fast[k].dtype == slow[k].dtype == np.float32
        assert fast[k].tobytes() == slow[k].tobytes() == want.tobytes(), k
        np.testing.assert_array_equal(decode_codes(p, x.size, -128, 127), x)


def test_damaged_payloads_fail_alike(payloads, monkeypatch):
    x, p = payloads[("tcq8+neighbour", (1 << 19) + 333)]
    rng = np.random.default_rng(2)
    cases = []
    for _ in range(8):
        b = bytearray(p[:-4])
        b[int(rng.integers(len(b) - 9000, len(b)))] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(b) + zlib.crc32(b).to_bytes(4, "little"))
    cut = p[:-4 - 400]
    cases.append(cut + zlib.crc32(cut).to_bytes(4, "little"))

    def run():
        out = []
        for c in cases:
            for f in (lambda c=c: decode_codes(c, x.size, -40, 40),
                      lambda c=c: decode_values(c, x.size, -40, 40, SCALE)):
                try:
                    out.append(f().astype(np.float32).tobytes())
                except FormatError as e:
                    out.append(str(e))
        return out

    fast, slow = _both(run, monkeypatch)
    assert fast == slow
    assert any(isinstance(r, str) for r in fast)
    for a, b in zip(fast[0::2], fast[1::2], strict=True):  # codes vs values: same errors
        assert isinstance(a, str) == isinstance(b, str) and (not isinstance(a, str) or a == b)


@pytest.mark.parametrize("method", ["tcq", "nearest"])
def test_stream_values_equal_dequantized_records(method, monkeypatch):
    rng = np.random.default_rng(4)
    tensors = {"emb": rng.laplace(size=(700, 768)).astype(np.float32) * 0.05,
               "w": rng.standard_normal((64, 96)).astype(np.float32) * 0.02}
    data = write_stream(tensors, mode="self", entropy="auto",
                        prepare=lambda _k, v: quantize_tensor(v, 0.004, method=method))[0]

    import nnshare.format.entropy as ent

    seen = []
    real = ent.decode_values
    monkeypatch.setattr(ent, "decode_values", lambda *a, **k: seen.append(a[1]) or real(*a, **k))

    def run():
        vals = decode_arrays(data)
        ref = {k: t.dequantize() for k, t in read_stream(data).tensors.items()}
        return vals, ref

    for vals, ref in _both(run, monkeypatch):
        for k in tensors:
            assert vals[k].dtype == np.float32 and vals[k].shape == tensors[k].shape
            assert vals[k].tobytes() == np.asarray(ref[k], np.float32).tobytes(), k
    assert sorted(seen) == sorted([t.size for t in tensors.values()] * 2)  # the fused path

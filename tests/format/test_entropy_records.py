"""Entropy-coded records inside the container: round trips, never larger than packing, corruption."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnshare.format import FormatError, QuantSpec, read_stream, write_stream
from nnshare.quant import quantize


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 10),
    st.sampled_from(["tensor", "channel", "group"]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
    st.sampled_from([(1,), (7,), (5, 9), (64, 33), (3, 4, 5)]),
)
def test_entropy_records_round_trip_and_never_exceed_packing(bits, gran, sym, seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.laplace(0, 1, shape).astype(np.float32)
    spec = QuantSpec(bits=bits, symmetric=sym, granularity=gran, axis=-1 if gran == "group" else 0,
                     group_size=4 if gran == "group" else 0)
    q = quantize(x, spec)
    packed, _ = write_stream({"w": q})
    coded, secs = write_stream({"w": q}, entropy="auto")
    assert len(coded) <= len(packed)  # the cheaper coding is chosen per record
    got = read_stream(coded).tensors["w"]
    assert np.array_equal(got.codes, q.codes)
    assert np.array_equal(got.dequantize(), q.dequantize())
    assert sum(s.bits for s in read_stream(coded).sections) == 8 * len(coded)


def test_entropy_saves_on_peaked_codes():
    x = np.random.default_rng(0).laplace(0, 0.02, (128, 256)).astype(np.float32)
    q = quantize(x, QuantSpec(bits=8))
    packed, _ = write_stream({"w": q})
    coded, _ = write_stream({"w": q}, entropy="auto")
    assert len(coded) < 0.75 * len(packed)


def test_sparse_tensor_keeps_the_element_bound():
    x = np.zeros((1, 10**6), np.float32)
    x[0, 123] = 1.0
    coded, _ = write_stream({"w": quantize(x, QuantSpec(bits=8))}, entropy="auto")
    assert len(coded) >= 10**6 // 4096  # entropy payload padded to n / 4096 bytes
    assert read_stream(coded).tensors["w"].codes[0, 123] == 127


def test_corrupted_entropy_records_are_format_errors():
    x = np.random.default_rng(1).laplace(0, 1, (16, 16)).astype(np.float32)
    data, _ = write_stream({"w": quantize(x, QuantSpec(bits=5))}, entropy="auto")
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(FormatError):
            read_stream(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            read_stream(data[:n])

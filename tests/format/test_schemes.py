"""Scheme bodies beyond the registry's generic checks: affine per-channel widths with entropy
coding, and the codebook reader's own validations."""

import numpy as np
import pytest

from nnshare.format import FormatError, read_stream, write_stream
from nnshare.format.records import encode_record, record_bits
from nnshare.format.spec import QuantizedTensor
from nnshare.format.wire import crc32
from nnshare.quant import CodebookConfig, QuantSpec, quantize
from nnshare.share.inspect import inspect


@pytest.mark.parametrize("symmetric", [True, False])
def test_per_channel_widths_entropy_code_and_round_trip(symmetric):
    rng = np.random.default_rng(0)
    x = (rng.laplace(size=(6, 300)) * (rng.random((6, 300)) < 0.4)).astype(np.float32)
    widths = (2, 7, 3, 3, 5, 7)
    q = quantize(x, QuantSpec(bits=7, symmetric=symmetric, granularity="channel", channel_bits=widths))
    data, _ = write_stream({"w": q}, entropy="auto")
    packed, _ = write_stream({"w": q})
    assert len(data) < len(packed)
    row = inspect(data).rows[0]
    assert "ec:" in row.scheme and "mixed" in row.scheme
    got = read_stream(data).tensors["w"]
    assert got.spec == q.spec.wire(q.shape) and got.spec.channel_bits == widths
    assert np.array_equal(got.codes, q.codes) and np.array_equal(got.dequantize(), q.dequantize())


def test_entropy_coded_code_outside_its_channel_width_is_refused():
    spec = QuantSpec(bits=6, granularity="channel", channel_bits=(2, 6))
    codes = np.zeros((2, 500), np.int32)
    codes[0, 7] = 20  # fits 6 bits, not channel 0's 2 bits: only a forged stream has it
    q = QuantizedTensor(codes, {"scale": np.ones(2, np.float32)}, spec, (2, 500))
    rec, _ = encode_record("w", q, "auto")
    assert rec[2] >> 4 & 3 == 1  # the record is entropy-coded (coding field of spec byte 2)
    data, _ = write_stream({"w": q}, entropy="auto")
    with pytest.raises(FormatError, match="outside its channel"):
        read_stream(data)


def _recrc(rec: bytearray) -> bytes:
    rec[-4:] = crc32(rec[:-4]).to_bytes(4, "little")  # format v2: CRCs little-endian
    return bytes(rec)


def _codebook_stream(**kw):
    x = np.random.default_rng(1).standard_normal((4, 9)).astype(np.float32)
    q = quantize(x, CodebookConfig(**kw))
    data, _ = write_stream({"w": q})
    rec, _ = encode_record("w", q)
    return q, data, len(data) - len(rec)


def test_codebook_body_layout_and_size():
    q, data, at = _codebook_stream(levels=5, level_dtype="fp16")
    body = data[at:]
    assert body[0] == 2  # scheme id of the codebook
    assert body[1] == 1 << 6 and body[2] == 4  # fp16 levels, packed; k - 1
    levels = np.frombuffer(body[3 : 3 + 10], "<f2").astype(np.float32)
    assert np.array_equal(levels, q.params["levels"])
    assert 8 * (len(data) - at) == record_bits((4, 9), q.spec) == 8 * (3 + 10 + (36 * 3 + 7) // 8 + 4)


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda b: b.__setitem__(2, 0), "invalid codebook spec"),  # k = 1
        (lambda b: b.__setitem__(1, 3 << 6), "invalid codebook spec"),  # level dtype 3
        (lambda b: b.__setitem__(1, 1 << 2), "invalid codebook spec"),  # reserved bits
        (lambda b: b.__setitem__(slice(3, 7), np.float32(np.inf).tobytes()), "not finite"),
        (lambda b: b.__setitem__(slice(3, 7), np.float32(9.0).tobytes()), "non-decreasing"),
        (lambda b: b.__setitem__(23, 0xFF), "a code is larger than 4"),  # 3-bit index 7 >= k
    ],
)
def test_codebook_reader_refuses_forged_bodies_even_with_a_valid_crc(edit, msg):
    q, data, at = _codebook_stream(levels=5)
    rec = bytearray(data[at:])
    edit(rec)
    with pytest.raises(FormatError, match=msg):
        read_stream(data[:at] + _recrc(rec))

"""Every corruption and truncation gives FormatError: never another exception, hang or huge alloc."""

import tracemalloc

import numpy as np
import pytest

from nnshare.format import FloatTensor, FormatError, QuantSpec, read_stream, write_stream
from nnshare.quant import quantize


def sample_streams():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 6)).astype(np.float32)
    tensors = {
        "a.weight": quantize(w, QuantSpec(bits=3, symmetric=False, granularity="channel")),
        "a.bias": FloatTensor(rng.standard_normal(5).astype(np.float32), "fp16"),
        "b.weight": quantize(w, QuantSpec(bits=5, granularity="group", group_size=4, axis=1)),
        "c": quantize(w[:2], QuantSpec(bits=4, granularity="channel", channel_bits=(4, 2))),
    }
    self_data, _ = write_stream(tensors, "self")
    agreed, _ = write_stream(tensors, "agreed")
    layout = [(n, t.shape) for n, t in tensors.items()]
    return self_data, agreed, layout


SELF, AGREED, LAYOUT = sample_streams()


@pytest.mark.parametrize("data, layout", [(SELF, None), (AGREED, LAYOUT)], ids=["self", "agreed"])
def test_every_single_byte_change_is_detected(data, layout):
    read_stream(data, layout)
    for i in range(len(data)):
        for delta in (1, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] = (bad[i] + delta) & 0xFF
            with pytest.raises(FormatError):
                read_stream(bytes(bad), layout)


@pytest.mark.parametrize("data, layout", [(SELF, None), (AGREED, LAYOUT)], ids=["self", "agreed"])
def test_every_truncation_is_detected(data, layout):
    for n in range(len(data)):
        with pytest.raises(FormatError):
            read_stream(data[:n], layout)


def test_random_and_mutated_inputs():
    rng = np.random.default_rng(1)
    for k in range(10_000):
        if k % 3 == 0:
            data = rng.integers(0, 256, rng.integers(0, 64)).astype(np.uint8).tobytes()
            if k % 2:
                data = b"NNSH\x01" + data
        else:
            bad = bytearray(SELF if k % 2 else AGREED)
            for _ in range(rng.integers(1, 6)):
                op = rng.integers(0, 3)
                pos = int(rng.integers(0, len(bad)))
                if op == 0:
                    bad[pos] = int(rng.integers(0, 256))
                elif op == 1:
                    del bad[pos]
                else:
                    bad.insert(pos, int(rng.integers(0, 256)))
            data = bytes(bad)
        layout = LAYOUT if k % 2 == 0 else None
        try:
            read_stream(data, layout)
        except FormatError:
            pass


def test_forged_huge_shapes_are_refused_before_allocating():
    # self-describing header claiming a 1.25e11-element tensor in a 30-byte stream
    from nnshare.format.wire import varint

    head = b"NNSH\x01\x00" + varint(1) + varint(1) + b"x" + b"\x03" + varint(5000) * 3
    import struct
    import zlib

    data = head + struct.pack(">I", zlib.crc32(head)) + b"\x00\x00"
    with pytest.raises(FormatError, match="more than a"):
        read_stream(data)


def test_decoder_memory_is_a_small_multiple_of_input():
    x = np.random.default_rng(2).standard_normal(400_000).astype(np.float32)
    data, _ = write_stream({"w": quantize(x, QuantSpec(bits=2))})
    tracemalloc.start()
    read_stream(data).tensors["w"].dequantize()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100 * len(data)  # 2-bit codes: 4 elements per byte, float32 output = 16x


def _recrc(data: bytes, start: int) -> bytes:
    """Recompute the CRC of the record that starts at ``start`` and ends the stream."""
    import struct
    import zlib

    body = data[start:-4]
    return data[:start] + body + struct.pack(">I", zlib.crc32(body))


def test_crafted_values_behind_valid_crcs_are_refused():
    from nnshare.format import QuantizedTensor, RawTensor

    # a bool raw record holding 2 (format v1: big-endian CRCs)
    data, secs = write_stream({"m": RawTensor(np.array([True, False]))}, version=1)
    start = len(data) - 4 - 2 - 2
    bad = bytearray(data)
    bad[-6] = 2
    with pytest.raises(FormatError, match="bool"):
        read_stream(_recrc(bytes(bad), start))
    # a restricted 4-bit record whose offset 15 would decode to +8
    q = quantize(np.array([1.0, -1.0], np.float32), QuantSpec(bits=4, restricted=True))
    data, _ = write_stream({"w": q}, version=1)
    start = data.index(b"\x01", 10)
    bad = bytearray(data)
    bad[-5] = 0xFF
    with pytest.raises(FormatError, match="restricted"):
        read_stream(_recrc(bytes(bad), start))
    # a negative scale
    q = QuantizedTensor(np.zeros(2, np.int32), {"scale": np.float32(1.0)}, QuantSpec(bits=4), (2,))
    data, _ = write_stream({"w": q}, version=1)
    bad = bytearray(data)
    bad[start_scale := data.index(b"\x00\x00\x80\x3f")] = 0
    bad[start_scale + 3] = 0xBF  # -1.0
    with pytest.raises(FormatError, match="finite positive"):
        read_stream(_recrc(bytes(bad), data.index(b"\x01", 10)))


def test_huge_group_size_stream_decodes_in_little_memory():
    from nnshare.format import QuantizedTensor, decode_arrays

    spec = QuantSpec(bits=8, granularity="group", group_size=2**31, axis=0)
    q = QuantizedTensor(np.zeros(4, np.int32), {"scale": np.ones((1, 1), np.float32)}, spec, (4,))
    data, _ = write_stream({"w": q})
    tracemalloc.start()
    out = decode_arrays(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out["w"].tolist() == [0, 0, 0, 0] and peak < 100_000

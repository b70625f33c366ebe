import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnshare.format import FloatTensor, FormatError, QuantSpec, RawTensor, read_stream, write_stream
from nnshare.format.container import fingerprint
from nnshare.format.spec import n_scales
from nnshare.format.wire import varint
from nnshare.quant import quantize


def analytic_record_bits(t) -> int:
    """Size of one record from docs/format.md: framing + side info + codes, byte aligned."""
    if isinstance(t, FloatTensor):
        return 8 * (2 + t.values.size * {"fp32": 4, "fp16": 2, "bf16": 2}[t.dtype] + 4)
    s = t.spec
    rows = n_scales(t.shape, s)
    head = 3 + (1 if s.granularity != "tensor" else 0)
    if s.granularity == "group":
        head += len(varint(s.group_size))
    widths = np.array(s.channel_bits) if s.channel_bits else np.full(rows, s.bits)
    side = (4 * rows + 7) // 8 if s.channel_bits else 0
    side += rows * (4 if s.scale_dtype == "fp32" else 2)
    if not s.symmetric:
        side += (int(widths.sum()) + 7) // 8
    if s.granularity == "group":
        codes = (t.numel * s.bits + 7) // 8
    else:
        codes = (int(widths.sum()) * (t.numel // rows if rows else 0) + 7) // 8
    return 8 * (head + side + codes + 4)


specs = st.builds(
    lambda bits, sym, gran, g, sd: QuantSpec(
        bits=bits,
        symmetric=sym and bits >= 2,
        granularity=gran,
        axis=0,
        group_size=g if gran == "group" else 0,
        scale_dtype=sd,
    ),
    st.integers(1, 16),
    st.booleans(),
    st.sampled_from(["tensor", "channel", "group"]),
    st.integers(1, 5),
    st.sampled_from(["fp32", "fp16", "bf16"]),
)
arrays = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=7),
    elements=st.floats(-50, 50, width=32),
)


@settings(max_examples=250, deadline=None)
@given(arrays, specs, st.sampled_from(["self", "agreed"]))
def test_round_trip_bit_exact_and_analytic_size(x, spec, mode):
    q = quantize(x, spec)
    f = FloatTensor(x.reshape(-1)[:3].copy(), "fp16")
    data, secs = write_stream({"w": q, "b": f}, mode)
    layout = [("w", x.shape), ("b", f.shape)]
    st_ = read_stream(data, layout)
    got = st_.tensors["w"]
    assert np.array_equal(got.codes, q.codes)
    for k in q.params:
        assert np.array_equal(got.params[k], q.params[k])
    assert np.array_equal(got.dequantize(), q.dequantize())
    assert np.array_equal(st_.tensors["b"].dequantize(), f.dequantize())
    assert sum(s.bits for s in st_.sections) == 8 * len(data)
    rec_bits = sum(s.bits for s in secs if s.name == "w")
    assert rec_bits == analytic_record_bits(q)


def test_per_channel_bit_widths_round_trip():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 11)).astype(np.float32)
    widths = tuple(int(b) for b in rng.integers(1, 9, 9))
    widths = (8,) + widths[1:]
    for sym in (True, False):
        if sym:
            widths = tuple(max(2, w) for w in widths)
        q = quantize(
            x, QuantSpec(bits=8, granularity="channel", channel_bits=widths, symmetric=sym)
        )
        data, secs = write_stream({"w": q})
        got = read_stream(data).tensors["w"]
        assert got.spec.channel_bits == widths
        assert np.array_equal(got.codes, q.codes)
        assert np.array_equal(got.dequantize(), q.dequantize())
        assert sum(s.bits for s in secs if s.name == "w") == analytic_record_bits(q)
        code_bits = sum(s.bits for s in secs if s.name == "w" and s.kind == "payload")
        assert code_bits == 11 * sum(widths)


def test_raw_and_float_dtypes_round_trip():
    t = {
        "count": RawTensor(np.array(7, np.int64)),
        "mask": RawTensor(np.array([True, False])),
        "h": FloatTensor(np.array([1.0, 1e-3, -2.5], np.float32), "bf16"),
        "e": FloatTensor(np.zeros((0, 3), np.float32)),
    }
    data, _ = write_stream(t)
    got = read_stream(data).tensors
    assert got["count"].values == 7 and got["count"].values.dtype == np.int64
    assert got["mask"].values.tolist() == [True, False]
    assert got["h"].dequantize().tolist() == t["h"].dequantize().tolist()
    assert got["e"].shape == (0, 3)


def test_agreed_mode_needs_matching_architecture():
    q = quantize(np.ones((2, 3), np.float32), QuantSpec(bits=4))
    data, _ = write_stream({"a": q}, "agreed")
    with pytest.raises(FormatError, match="agreed-architecture"):
        read_stream(data)
    with pytest.raises(FormatError, match="fingerprint mismatch"):
        read_stream(data, [("a", (3, 2))])
    with pytest.raises(FormatError, match="fingerprint mismatch"):
        read_stream(data, [("b", (2, 3))])
    assert read_stream(data, [("a", (2, 3))]).mode == "agreed"
    assert fingerprint([("a", (2, 3))]) != fingerprint([("a", (3, 2))])


def test_errors_name_the_problem():
    q = quantize(np.ones(4, np.float32), QuantSpec(bits=4))
    data, _ = write_stream({"w": q})
    with pytest.raises(FormatError, match="wrong magic"):
        read_stream(b"XXXX" + data[4:])
    with pytest.raises(FormatError, match="unsupported version 9"):
        read_stream(data[:4] + b"\x09" + data[5:])
    bad = bytearray(data)
    bad[-6] ^= 1
    with pytest.raises(FormatError, match="CRC mismatch in record 'w'"):
        read_stream(bytes(bad))
    with pytest.raises(FormatError, match="truncated at byte"):
        read_stream(data[:-1])
    with pytest.raises(FormatError, match="unexpected bytes"):
        read_stream(data + b"\x00")
    with pytest.raises(FormatError, match="expected bytes"):
        read_stream("not bytes")

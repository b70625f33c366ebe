"""read_stream(lazy=True): records checked but decoded one at a time; packed codes in chunks."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnshare.format import FormatError, QuantizedTensor, QuantSpec, read_stream, write_stream
from nnshare.format.grain import stream_order
from nnshare.format.lazy import LazyTensor, PackedCodes, stream_row_len
from nnshare.quant import CodebookConfig, MinifloatConfig, quantize

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = ["golden_v1_mixed", "golden_v1_entropy", "golden_v1_seed_ptq_t8", "golden_v2_model",
          "golden_v2_entropy"]


def _same(a, b) -> None:
    assert type(a) is type(b)
    np.testing.assert_array_equal(a.dequantize(), b.dequantize())
    if isinstance(a, QuantizedTensor):
        assert a.spec == b.spec and a.shape == b.shape
        np.testing.assert_array_equal(a.codes, b.codes)


@pytest.mark.parametrize("name", GOLDEN)
@pytest.mark.parametrize("mode", ["self", "agreed"])
def test_lazy_golden_streams_finish_to_the_eager_tensors(name, mode):
    data = (DATA / f"{name}_{mode}.nnsh").read_bytes()
    layout = None
    if mode == "agreed":
        lines = (DATA / f"{name}.layout").read_text().splitlines()
        layout = [(k, tuple(int(d) for d in dims.split(",") if d))
                  for k, _, dims in (ln.partition(" ") for ln in lines)]
    eager, lazy = read_stream(data, layout), read_stream(data, layout, lazy=True)
    assert lazy.sections == eager.sections and lazy.total_bits == eager.total_bits
    assert list(lazy.tensors) == list(eager.tensors)
    kinds = set()
    for k, t in lazy.tensors.items():
        if isinstance(t, LazyTensor):
            kinds.add("lazy" if t.packed is None else "packed")
            t = t.finish()
        _same(t, eager.tensors[k])
    assert "packed" in kinds or "lazy" in kinds


def _stream(x, cfg, entropy="none"):
    q = quantize(np.asarray(x, np.float32), cfg)
    data, _ = write_stream({"w": q}, entropy=entropy)
    return read_stream(data).tensors["w"], read_stream(data, lazy=True).tensors["w"]


SHAPES = [(7,), (5, 13), (4, 3, 10), (33, 9), (1, 1)]


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 16), sym=st.booleans(), gran=st.sampled_from(["tensor", "channel", "group"]),
       axis=st.integers(0, 2), g=st.integers(1, 12), shape=st.sampled_from(SHAPES),
       chunk=st.sampled_from([1, 9, 64, 1 << 18]), seed=st.integers(0, 2**16))
def test_packed_rows_are_the_codes_in_stream_order(bits, sym, gran, axis, g, shape, chunk, seed):
    sym = sym and bits >= 2
    axis = axis % len(shape)
    spec = QuantSpec(bits=bits, symmetric=sym, granularity=gran, axis=axis, group_size=g)
    x = np.random.default_rng(seed).normal(size=shape)
    eager, lazy = _stream(x, spec)
    p = lazy.packed
    assert isinstance(p, PackedCodes) and p.wire == eager.spec and p.shape == shape
    length = stream_row_len(shape, p.wire)
    want = stream_order(eager.codes, eager.spec).reshape(-1, length)
    got, nxt = [], 0
    for r0, rows in p.rows(chunk):
        assert r0 == nxt and rows.dtype == np.int32 and rows.shape[1] == length
        assert rows.size <= max(chunk, 8 * length)
        nxt += rows.shape[0]
        got.append(rows)
    np.testing.assert_array_equal(np.concatenate(got), want)
    for k, v in eager.params.items():
        np.testing.assert_array_equal(p.params[k], v)


def test_row_lengths():
    assert stream_row_len((4, 6), QuantSpec(granularity="tensor")) == 24
    assert stream_row_len((4, 6), QuantSpec(granularity="channel", axis=1)) == 4
    assert stream_row_len((4, 6), QuantSpec(granularity="group", axis=0, group_size=3)) == 4
    assert stream_row_len((0, 6), QuantSpec(granularity="group", axis=1, group_size=3)) == 0


def test_entropy_codes_channel_widths_and_other_schemes_are_not_packed():
    x = np.random.default_rng(0).normal(size=(16, 40))
    cases = [(QuantSpec(bits=4, granularity="channel"), "always"),
             (QuantSpec(bits=4, granularity="channel", channel_bits=tuple([3, 4] * 8)), "none"),
             (MinifloatConfig(), "none"), (CodebookConfig(levels=8), "none")]
    for cfg, entropy in cases:
        eager, lazy = _stream(x, cfg, entropy)
        assert lazy.packed is None
        _same(lazy.finish(), eager)


def _restricted_with_forbidden_code() -> bytes:
    """A restricted 4-bit record whose first code is 8 (outside [-7, 7]), CRC fixed up."""
    from nnshare.format.wire import crc32

    spec = QuantSpec(bits=4, restricted=True, granularity="tensor")
    q = quantize(np.linspace(-1, 1, 16, dtype=np.float32), spec)
    data = bytearray(write_stream({"w": q})[0])
    start = len(data) - 4 - 8  # 16 codes at 4 bits before the record CRC
    data[start] = (data[start] & 0x0F) | 0xF0  # first code's offset 15: x_int = -7 + 15 = 8
    rec = data.index(b"w") + 1 + 1 + 1 + 4  # kind byte after the header (name, rank, dim, CRC)
    body_end = len(data) - 4
    data[body_end:] = crc32(bytes(data[rec:body_end])).to_bytes(4, "little")
    return bytes(data)


def test_code_level_damage_is_found_by_finish_and_by_the_chunks():
    data = _restricted_with_forbidden_code()
    with pytest.raises(FormatError, match="restricted"):
        read_stream(data)
    lazy = read_stream(data, lazy=True).tensors["w"]  # framing and CRC are fine
    with pytest.raises(FormatError, match="restricted"):
        lazy.finish()
    with pytest.raises(FormatError, match="restricted"):
        list(lazy.packed.rows())


def test_lazy_still_checks_every_crc_up_front():
    q = quantize(np.ones((8, 8), np.float32), QuantSpec(bits=4))
    data = bytearray(write_stream({"a": q, "b": q})[0])
    data[-6] ^= 0x01  # inside the last record's codes
    with pytest.raises(FormatError, match="CRC mismatch in record 'b'"):
        read_stream(bytes(data), lazy=True)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnshare.format import FormatError
from nnshare.format.bitpack import pack, pack_varwidth, packed_nbytes, unpack, unpack_varwidth


def reference_pack(v: np.ndarray, bits: int) -> bytes:
    """Bit-by-bit MSB-first packing, the definition in docs/format.md."""
    if v.size == 0:
        return b""
    shifts = np.arange(bits - 1, -1, -1)
    return np.packbits(((v[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)).tobytes()


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 15, 17, 1000, 1003])
def test_pack_matches_definition_and_analytic_size(bits, n):
    rng = np.random.default_rng(bits * 1000 + n)
    v = rng.integers(0, 2**bits, n)
    data = pack(v, bits)
    assert len(data) == packed_nbytes(n, bits) == (n * bits + 7) // 8
    assert data == reference_pack(v, bits)
    assert np.array_equal(unpack(data, n, bits), v)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 16), st.lists(st.integers(0, 2**16 - 1), max_size=300))
def test_pack_round_trip(bits, values):
    v = np.array(values, np.int64) % (2**bits)
    assert np.array_equal(unpack(pack(v, bits), v.size, bits), v)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 16), st.integers(0, 2**16 - 1)), max_size=200))
def test_varwidth_round_trip_and_size(pairs):
    w = np.array([p[0] for p in pairs], np.int64)
    v = np.array([p[1] for p in pairs], np.int64) % (2**w) if pairs else np.zeros(0, np.int64)
    data = pack_varwidth(v, w)
    assert len(data) == (int(w.sum()) + 7) // 8
    assert np.array_equal(unpack_varwidth(data, w), v)


def test_unpack_short_buffer_is_format_error():
    with pytest.raises(FormatError, match="need 2 bytes"):
        unpack(b"\x00", 3, 5)
    with pytest.raises(FormatError):
        unpack_varwidth(b"", np.array([3, 4]))


def test_varwidth_chunks_carry_bits_across_chunk_boundaries(monkeypatch):
    """Packing in chunks (bounded memory) gives the bytes of one pass, whatever the chunk size
    and however the chunks split the values."""
    from nnshare.format import bitpack

    rng = np.random.default_rng(5)
    w = rng.integers(1, 17, 1001)
    v = rng.integers(0, 2**16, 1001) % (2**w)
    whole = pack_varwidth(v, w)
    assert len(whole) == (int(w.sum()) + 7) // 8
    for chunk in (1, 3, 8, 100):
        monkeypatch.setattr(bitpack, "VARWIDTH_CHUNK", chunk)
        assert pack_varwidth(v, w) == whole
        parts = [(v[a:b], w[a:b]) for a, b in ((0, 7), (7, 7), (7, 500), (500, 1001))]
        assert bitpack.pack_varwidth_chunks(parts) == whole
    assert np.array_equal(unpack_varwidth(whole, w), v)

"""The decoding budget: every crafted stream of issue 11 (valid CRCs throughout) fails fast with
FormatError or decodes within peak memory <= output + 16 x stream bytes + 4 MiB (traced)."""

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nnshare.format import FormatError, SpecError, read_stream, write_stream
from nnshare.format import budget as bud
from nnshare.format.entropy import decode_codes, describe

sys.path.insert(0, str(Path(__file__).parent))
import hostile as H  # noqa: E402

FIXED = 4 << 20


def _run(fn):
    try:
        return fn()
    except FormatError as e:
        return e


def traced(fn):
    """(result or the FormatError raised, peak traced bytes) of ``fn()``. ``fn`` runs once
    untraced first: numba compiles (or loads from its cache) a kernel on its first call in a
    process, and that one-time allocation is the process's, not the stream's; without the
    warm-up a test's peak depended on which tests ran before it. The decoder keeps no cache of
    anything a stream builds, so the traced run pays for all of its tables again."""
    _run(fn)
    tracemalloc.start()
    try:
        out = _run(fn)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zero_bit_record_decodes_like_a_constant_within_the_memory_bound():
    data, n = H.zero_bit_stream(600)
    assert n > 2_000_000 and len(data) > 8 * 1024  # 1024 lane states
    st, peak = traced(lambda: read_stream(data))
    codes = st.tensors["t0"].codes
    assert codes.shape == (n,) and not codes.any()
    assert peak <= codes.nbytes + 16 * len(data) + FIXED


def test_zero_bit_single_state_payload_is_refused_in_v2():
    data, n = H.zero_bit_stream(600, interleaved=False)
    assert len(data) < 700
    err, peak = traced(lambda: read_stream(data))
    assert isinstance(err, FormatError) and "must interleave 1024 lanes" in str(err)
    assert peak < FIXED
    payload = H.zero_bit_payload(n, interleaved=False)
    assert decode_codes(payload, n, -128, 127).shape == (n,)  # bare payloads (v1 records) still read


def test_a_megabyte_of_zero_bit_codes_is_refused_by_the_element_cap_before_allocating():
    n = 4096 * (1 << 20)  # what a 1 MiB stream may describe: 17 GB of output
    data = H.header([("t0", (n,))]) + H.affine_entropy_record(H.zero_bit_payload(1 << 20), n)
    assert len(data) > 1 << 20
    err, peak = traced(lambda: read_stream(data))
    assert isinstance(err, FormatError) and "max_elements" in str(err)
    assert peak < 16 * len(data) + FIXED


def test_caps_are_the_callers():
    rng = np.random.default_rng(0)
    from nnshare.quant import QuantSpec, quantize

    q = quantize(rng.standard_normal((40, 50)).astype(np.float32), QuantSpec(bits=4))
    data, _ = write_stream({"w": q})
    assert read_stream(data, max_elements=2000).tensors["w"].codes.shape == (40, 50)
    with pytest.raises(FormatError, match="max_elements=1999"):
        read_stream(data, max_elements=1999)
    with pytest.raises(FormatError, match="max_output_bytes=7999"):
        read_stream(data, max_output_bytes=7999)
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(SpecError):
            read_stream(data, max_elements=bad)
    assert bud.MAX_ELEMENTS == 1 << 28 and bud.MAX_OUTPUT_BYTES == 1 << 30


def test_slot_tables_are_not_built_for_a_few_codes():
    one = H.slot_table_stream(1)
    st, peak = traced(lambda: read_stream(one))
    assert st.tensors["t0"].codes.shape == (64,)
    assert peak < 3 << 20  # not the 16 MiB slot table (+ 32 MiB of dense tables before)
    assert not bud.slot_table_ok(1, 22, 296) and bud.slot_table_ok(48, 13, 700_000)
    assert bud.slot_table_ok(1, 12, 10)  # small tables always


def test_many_wide_tables_exhaust_the_streams_table_allowance():
    data = H.slot_table_stream(300)
    err, peak = traced(lambda: read_stream(data))
    assert isinstance(err, FormatError) and "probability tables" in str(err)
    assert peak < 16 * len(data) + FIXED


def test_range_coder_tables_are_charged_before_they_are_built():
    n = 3 * (1 << 20) // 256 * 256
    p = H.range_tables_payload(n)
    data = H.stream_of([p], n, bits=16)
    err, peak = traced(lambda: read_stream(data))
    assert isinstance(err, FormatError) and "probability tables of 16777216 entries" in str(err)
    assert peak < 16 * len(data) + FIXED


def test_range_coder_payload_must_end_cleanly():
    pytest.importorskip("constriction")
    x, clean, extra, none = H.range_payload_variants()
    np.testing.assert_array_equal(decode_codes(clean, x.size, -128, 127), x)
    with pytest.raises(FormatError, match="does not end cleanly"):
        decode_codes(extra, x.size, -128, 127)
    with pytest.raises(FormatError, match="does not end cleanly"):
        decode_codes(none, x.size, -128, 127)


def test_range_coded_symbols_are_capped_by_the_payload_length():
    from nnshare.format.entropy import range_coder as rcd

    dec = rcd.RangeDecoder(np.zeros(3, np.uint32), max_symbols=100)
    dec.charge(100)
    with pytest.raises(FormatError, match="101 range-coded symbols exceed the 100"):
        dec.charge(1)
    assert bud.range_symbol_allowance(1000) == (1 << 16) + 256 * 1000


def test_honest_stream_meets_the_memory_bound_and_reports_its_lanes():
    from nnshare.quant import QuantSpec, quantize

    rng = np.random.default_rng(3)
    q = quantize(rng.laplace(size=(256, 256)).astype(np.float32), QuantSpec(bits=6))
    data, _ = write_stream({"w": q}, entropy="always")
    st, peak = traced(lambda: read_stream(data))
    np.testing.assert_array_equal(st.tensors["w"].codes, q.codes)
    assert peak <= st.tensors["w"].codes.nbytes + 16 * len(data) + FIXED
    rec = next(s for s in st.sections if s.kind == "payload")
    assert rec.note.startswith("ec:")


def test_table_allowance_constants():
    assert bud.table_allowance(0) == 1 << 17
    assert bud.table_allowance(1000) == (1 << 17) + 8000
    from nnshare.format.entropy.header import alphabet_budget

    assert alphabet_budget(10**6, 1000) == bud.table_allowance(1000)  # n buys no tables


def test_entropy_describe_reports_table_entries():
    p = H.slot_table_payload(64)
    d = describe(p, 64, -32768, 32767)
    assert d["table_entries"] == 65536 and d["lanes"] == 1 and d["coder"] == "rans22"


def test_writer_keeps_every_stream_within_the_table_allowance():
    from nnshare.quant import QuantSpec, quantize

    rng = np.random.default_rng(0)  # 16-bit codes of few elements: wide tables, short payloads
    ts = {f"t{i}": quantize(rng.standard_normal(300).astype(np.float32), QuantSpec(bits=16))
          for i in range(60)}
    data, secs = write_stream(ts, entropy="auto")
    coded = {s.name for s in secs if s.note.startswith("ec:")}
    assert 0 < len(coded) < 60  # the first records entropy-coded, the rest packed
    st = read_stream(data)  # the reader accepts what the writer wrote
    for k, q in ts.items():
        np.testing.assert_array_equal(st.tensors[k].codes, q.codes)
    with pytest.raises(SpecError, match="entropy tables of"):
        write_stream(ts, entropy="always")


def test_lazy_records_are_charged_against_the_whole_streams_budget():
    """Records read with lazy=True spend the stream's budget (not one of their own payload):
    the table allowance is shared, the v2 checks and the caller's caps apply."""
    data = H.slot_table_stream(300)
    st = read_stream(data, lazy=True)  # framing and CRCs are fine
    finished = 0
    with pytest.raises(FormatError, match="probability tables of .* in all exceed"):
        for t in st.tensors.values():
            t.finish()
            finished += 1
    allowed = bud.table_allowance(len(data)) // 65536
    assert finished == allowed  # exactly the records the stream's allowance pays for
    one = H.slot_table_stream(1)
    assert read_stream(one, lazy=True).tensors["t0"].finish().codes.shape == (64,)
    single, _ = H.zero_bit_stream(600, interleaved=False)
    lazy = read_stream(single, lazy=True).tensors["t0"]
    with pytest.raises(FormatError, match="must interleave 1024 lanes"):
        lazy.finish()


def test_numpy_lanes_path_meets_the_memory_bound(monkeypatch):
    """An honest 1M-code stream (1,024 lanes, a 2**20-entry slot table) decoded without numba:
    output in element order, no step-major copies, the large slot table not expanded per slot
    -> within the bound numba meets (23.1 MB against 19.1 MB before)."""
    from nnshare.format.entropy import rans
    from nnshare.quant import QuantSpec, quantize

    w = np.random.default_rng(0).laplace(size=(1024, 1024)).astype(np.float32)
    q = quantize(w, QuantSpec(bits=8))
    data, _ = write_stream({"w": q}, entropy="always")
    monkeypatch.setattr(rans, "_decode_fast", None)
    st, peak = traced(lambda: read_stream(data))
    np.testing.assert_array_equal(st.tensors["w"].codes, q.codes)
    assert peak <= st.tensors["w"].codes.nbytes + 16 * len(data) + FIXED


@pytest.mark.parametrize("model", ["iid", "rowcol", "rowcol+neighbour"])
def test_single_state_python_path_meets_the_memory_bound(model, monkeypatch):
    """One rANS state (n < 2**19) without numba: the plain-Python loops (memoryviews, an int32
    index array; no lists of ints) stay within output + 16 x payload bytes + 4 MiB, and decode
    exactly: the i.i.d. loop with its slot table, row/column by binary search (no slot table
    for so short a payload), the general loop with the neighbour context."""
    from nnshare.format.entropy import encode_codes, rans

    x = np.rint(np.random.default_rng(6).laplace(size=60_000) * 6).clip(-128, 127).astype(np.int32)
    p = encode_codes(x, -128, 127, models=model, row_len=300)
    assert describe(p, x.size, -128, 127)["lanes"] == 1
    monkeypatch.setattr(rans, "_decode_fast", None)
    out, peak = traced(lambda: decode_codes(p, x.size, -128, 127))
    np.testing.assert_array_equal(out, x)
    assert peak <= out.nbytes + 16 * len(p) + FIXED

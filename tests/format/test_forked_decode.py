"""decode_arrays(processes=2): a forked child decodes part of the records into shared memory; the
same arrays, bit for bit, and the same errors as one process."""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nnshare.format import FloatTensor, FormatError, RawTensor, SpecError, decode_arrays, write_stream
from nnshare.format import budget as bud
from nnshare.format import forked_decode as fd
from nnshare.format.lazy import LazyTensor
from nnshare.quant.rate import quantize_tensor
from nnshare.share.receive import decode_model

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")  # Linux CI has it


def _tensors(big: bool = True):
    """Quantized records of 2**20 + 2**16 values in all (just above the fork threshold), the
    largest (the caller's) of 2**19, and a float and a raw record."""
    rng = np.random.default_rng(3)
    n0 = (1 << 19) if big else 4096
    shapes = {"emb": (n0 // 512, 512), "a.weight": (512, 512), "b.weight": (384, 512),
              "c.weight": (128, 512), "d.bias": (500,)}
    out = {}
    for i, (k, sh) in enumerate(shapes.items()):
        x = rng.standard_normal(sh).astype(np.float32) * 0.05
        out[k] = quantize_tensor(x, 0.01 + 0.002 * i, method="tcq" if k == "d.bias" else "nearest")
    out["norm"] = FloatTensor(rng.standard_normal(300).astype(np.float32), "fp16")
    out["steps"] = RawTensor(np.arange(7, dtype=np.int64))
    return out


@pytest.fixture(scope="module")
def streams():
    t = _tensors()
    assert sum(v.numel for v in t.values() if hasattr(v, "numel")) > fd.MIN_VALUES
    return {e: write_stream(t, entropy=e)[0] for e in ("auto", "none")}


@pytest.fixture
def forks(monkeypatch):
    calls = []
    real = os.fork

    def fork():
        pid = real()
        if pid:
            calls.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return calls


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("entropy", ["auto", "none"])
def test_two_processes_decode_the_same_arrays(streams, forks, entropy):
    data = streams[entropy]
    one = decode_arrays(data)
    two = decode_arrays(data, processes=2)
    assert len(forks) == 1  # the child took part of the records
    _same(one, two)
    assert two["steps"].dtype == np.int64 and two["norm"].dtype == np.float32
    two["a.weight"][0, 0] = 1.0  # arrays from the shared mapping are ordinary writable arrays
    _same(decode_arrays(data, processes=3), one)
    m1, m2 = decode_model(data), decode_model(data, processes=2)
    _same(m1.arrays, m2.arrays)
    assert m1.dtypes == m2.dtypes and m1.ties == m2.ties


def test_small_streams_decode_in_one_process(forks):
    data = write_stream(_tensors(big=False), entropy="auto")[0]
    _same(decode_arrays(data, processes=2), decode_arrays(data))
    assert forks == []


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2", None])
def test_bad_processes_values_are_refused(bad):
    with pytest.raises(SpecError, match="processes must be a positive integer"):
        decode_arrays(b"NNSH", processes=bad)


_VALUES = LazyTensor.values


def _failing(monkeypatch, where: dict):
    """Make LazyTensor.values raise ``where[name]`` for those records (in the child too)."""
    real = _VALUES

    def values(self, budget=None):
        if self.name in where:
            raise where[self.name]
        return real(self, budget)

    monkeypatch.setattr(LazyTensor, "values", values)


def test_a_format_error_in_the_child_is_raised_in_the_parent(streams, forks, monkeypatch):
    _failing(monkeypatch, {"b.weight": FormatError("record 'b.weight': forged payload")})
    with pytest.raises(FormatError, match="record 'b.weight': forged payload"):
        decode_arrays(streams["auto"], processes=2)
    assert len(forks) == 1


def test_the_first_failure_in_stream_order_wins(streams, monkeypatch):
    # emb (first record) is the caller's, c.weight the child's: the caller's error comes first
    _failing(monkeypatch, {"emb": FormatError("caller's"), "c.weight": FormatError("child's")})
    with pytest.raises(FormatError, match="caller's"):
        decode_arrays(streams["auto"], processes=2)
    # the other way round: the child's a.weight precedes the caller's d.bias
    _failing(monkeypatch, {"a.weight": FormatError("first"), "d.bias": FormatError("later")})
    with pytest.raises(FormatError, match="first"):
        decode_arrays(streams["auto"], processes=2)


def test_another_error_in_the_child_surfaces_with_its_own_type(streams, monkeypatch):
    _failing(monkeypatch, {"c.weight": MemoryError("no room for c.weight")})
    with pytest.raises(MemoryError, match="no room for c.weight"):  # re-raised by the parent
        decode_arrays(streams["auto"], processes=2)


def test_table_allowance_is_the_whole_streams(streams, monkeypatch):
    """Each process charges only its records' tables; the caller charges all of them to the
    stream's budget, so a stream over its allowance is refused as in one process."""
    from nnshare.format import read_stream

    data = streams["auto"]
    st = read_stream(data, lazy=True, dequantized=True)
    for t in st.tensors.values():
        if isinstance(t, LazyTensor):
            t.values()
    total = next(t for t in st.tensors.values() if isinstance(t, LazyTensor)).budget.table_entries
    assert total > 0
    monkeypatch.setattr(bud, "table_allowance", lambda nbytes: total - 1)
    with pytest.raises(FormatError, match="probability tables") as one:
        decode_arrays(data)
    with pytest.raises(FormatError, match="probability tables") as two:
        decode_arrays(data, processes=2)
    assert str(two.value) == str(one.value)
    monkeypatch.setattr(bud, "table_allowance", lambda nbytes: total)
    _same(decode_arrays(data, processes=2), decode_arrays(data))


def test_a_corrupted_record_is_refused_before_forking(streams, forks):
    data = bytearray(streams["auto"])
    data[len(data) // 2] ^= 0x10  # inside a record: its CRC fails while the stream is read
    with pytest.raises(FormatError, match="CRC mismatch"):
        decode_arrays(bytes(data), processes=2)
    assert forks == []


def _outcome(data: bytes, processes: int):
    try:
        return decode_arrays(data, processes=processes)
    except FormatError as e:
        return f"FormatError: {e}"


def _hostile():
    sys.path.insert(0, str(Path(__file__).parent))
    import hostile as H

    n = 1 << 18
    out = {"wide tables": H.slot_table_stream(300),  # refused: the stream's table allowance
           "zero-bit records": H.stream_of([H.zero_bit_payload(n)] * 3, n),
           "single-state": H.stream_of([H.zero_bit_payload(n, interleaved=False)] * 2, n)}
    if importlib.util.find_spec("constriction") is not None:
        x, clean, extra, _ = H.range_payload_variants()  # CRC right, payload words wrong
        out["bad payload"] = H.stream_of([clean, extra, clean], x.size)
        out["good payload"] = H.stream_of([clean] * 3, x.size)
    return out


@pytest.mark.parametrize("name", ["wide tables", "zero-bit records", "single-state",
                                  "bad payload", "good payload"])
def test_hostile_streams_end_as_in_one_process(name, forks, monkeypatch):
    """Crafted streams with valid CRCs (tests/format/hostile.py), every one forked (thresholds
    0): the same arrays, or the same FormatError message, as one process."""
    streams = _hostile()
    if name not in streams:
        pytest.skip("needs constriction")
    monkeypatch.setattr(fd, "MIN_VALUES", 0)
    monkeypatch.setattr(fd, "MIN_CHILD_VALUES", 0)
    one, two = _outcome(streams[name], 1), _outcome(streams[name], 2)
    assert len(forks) == 1
    if isinstance(one, str):
        assert two == one
    else:
        _same(one, two)
    if name == "bad payload":
        assert "does not end cleanly" in one
    if name == "wide tables":
        assert "probability tables" in one

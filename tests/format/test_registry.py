"""Every registered scheme, enumerated from the registries: round trip, exact accounting, analytic
size, and every corruption / truncation of a sample stream -> FormatError only.

A new scheme is covered here as soon as it is registered on both sides: its config class gives
``config_space()`` (values worth trying per field), nothing else is needed in this file.
"""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nnshare.format import FormatError, SpecError, read_stream, write_stream
from nnshare.format.records import encode_record, record_bits
from nnshare.format.schemes import all_schemes, get_scheme, register_scheme, scheme_by_id
from nnshare.format.schemes.affine import AffineScheme
from nnshare.format.wire import Reader
from nnshare.quant import QuantSpec, config_from_dict, quantize, sender_schemes
from nnshare.share.inspect import inspect

NAMES = [s.name for s in sender_schemes()]


def test_every_receiver_scheme_has_a_sender_side_and_ids_are_unique():
    receiver = {s.name for s in all_schemes()}
    assert receiver == set(NAMES)
    assert len(NAMES) >= 2  # not a registry of one
    ids = [s.scheme_id for s in all_schemes()]
    assert len(set(ids)) == len(ids) and all(1 <= i <= 199 for i in ids)
    for s in all_schemes():
        assert scheme_by_id(s.scheme_id) is s and get_scheme(s.name) is s


def test_registry_refuses_duplicates_and_unknown_ids():
    with pytest.raises(SpecError, match="already registered"):
        register_scheme(AffineScheme())
    with pytest.raises(FormatError, match="unknown scheme id"):
        scheme_by_id(199)
    with pytest.raises(SpecError, match="unknown scheme"):
        get_scheme("nope")


def test_lazy_schemes_load_on_first_use_and_reserve_their_ids():
    """A fresh receiver imports only affine; an id or name of a lazy scheme loads its module, and
    a lazy scheme's name and id are already taken."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from nnshare.format.schemes import scheme_by_id, get_scheme, register_lazy\n"
        "lazy = ['codebook', 'rotated', 'minifloat', 'channel_codebook', 'multipoint', "
        "'sigma_delta', 'lplr']\n"
        "print(sorted(n for n in lazy if 'nnshare.format.schemes.' + n in sys.modules))\n"
        "s = scheme_by_id(8); print(s.name, 'nnshare.format.schemes.lplr' in sys.modules)\n"
        "print(get_scheme('minifloat').scheme_id)\n"
        "from nnshare.format.schemes import MultipointWire; print(MultipointWire.__name__)\n"
        "try:\n"
        "    register_lazy('sigma_delta', 150, lambda: None)\n"
        "except Exception as e: print(type(e).__name__)\n"
        "try:\n"
        "    register_lazy('other', 7, lambda: None)\n"
        "except Exception as e: print(type(e).__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:6] == ["[]", "lplr True", "4", "MultipointWire", "SpecError",
                                         "SpecError"]


def configs(name):
    entry = next(e for e in sender_schemes() if e.name == name)
    space = entry.config.config_space()
    return st.fixed_dictionaries({k: st.sampled_from(v) for k, v in space.items()}).map(
        lambda d: (entry.config, d)
    )


shapes = st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)


def _data(shape, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "laplace":
        return (rng.laplace(size=shape) * 10.0 ** rng.integers(-3, 3)).astype(np.float32)
    return np.full(shape, np.float32(rng.integers(-2, 3)), np.float32)  # constant / zeros


def _make(name, cfg, shape, kind, seed):
    cls, d = cfg
    try:
        config = cls(**d)
        q = quantize(_data(shape, kind, seed), config)
    except SpecError:
        assume(False)
    return config, q


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_accounting_and_analytic_size(name):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
    @given(configs(name), shapes, st.sampled_from(["gauss", "laplace", "const"]), st.integers(0, 99),
           st.sampled_from(["none", "auto"]))
    def check(cfg, shape, kind, seed, entropy):
        config, q = _make(name, cfg, shape, kind, seed)
        wire = config.wire(shape)
        assert wire.scheme == name
        data, secs = write_stream({"t": q}, entropy=entropy)
        st_ = read_stream(data)
        got = st_.tensors["t"]
        assert got.spec == wire  # a decoded spec equals the wire spec exactly
        # codes are one per element (of ``shape``) except where a scheme documents its own layout
        assert np.array_equal(np.asarray(got.codes), np.asarray(q.codes).reshape(np.shape(got.codes)))
        assert set(got.params) == set(q.params)
        for k in q.params:
            assert np.array_equal(got.params[k], np.asarray(q.params[k]).reshape(got.params[k].shape))
        a, b = got.dequantize(), q.dequantize()
        assert a.dtype == np.float32 and a.shape == shape and np.array_equal(a, b)
        assert sum(s.bits for s in st_.sections) == 8 * len(data) == sum(s.bits for s in secs)
        lazy = read_stream(data, lazy=True).tensors["t"]  # inspect describes it undecoded
        assert lazy.pending.wire == got.spec
        ins = inspect(data)
        assert ins.total_bits == 8 * len(data)
        assert ins.rows[0].fields["scheme"] == name and json.loads(json.dumps(ins.to_dict()))
        rec, _ = encode_record("t", q, entropy=entropy)
        if entropy == "none":  # the scheme's analytic size is the written size
            assert 8 * len(rec) == record_bits(shape, config) == record_bits(shape, wire)
        else:  # entropy coding is used only where it pays
            assert 8 * len(rec) <= record_bits(shape, config)
        # the JSON form of the sender config round-trips through the registry
        assert config_from_dict(config.to_dict()) == config

    check()


def _sample(name):
    """A sparse, update-like sample tensor of scheme ``name`` with its default config."""
    entry = next(e for e in sender_schemes() if e.name == name)
    rng = np.random.default_rng(7)
    x = (rng.laplace(size=(8, 100)) * (rng.random((8, 100)) < 0.3)).astype(np.float32)  # sparse
    config = entry.config()
    return config, quantize(x, config)


@pytest.mark.parametrize("entropy", ["none", "auto"])
@pytest.mark.parametrize("name", NAMES)
def test_every_byte_change_and_truncation_is_a_format_error(name, entropy):
    _, q = _sample(name)
    data, _ = write_stream({"t": q}, entropy=entropy)
    read_stream(data)
    for i in range(len(data)):
        for delta in (1, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] = (bad[i] + delta) & 0xFF
            with pytest.raises(FormatError):
                read_stream(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            read_stream(data[:n])


@pytest.mark.parametrize("name", NAMES)
def test_every_byte_change_and_truncation_of_an_entropy_coded_record_is_a_format_error(name):
    """The entropy layout of every scheme, forced (a scheme's sample may not pay for it)."""
    from nnshare.format.records import decode_record

    _, q = _sample(name)
    rec, secs = encode_record("t", q, "always")
    t, dsecs = decode_record(Reader(rec), "t", q.shape)
    assert any(s.note.startswith("ec:") for s in dsecs) and sum(s.bits for s in dsecs) == 8 * len(rec)
    assert np.array_equal(t.dequantize(), q.dequantize())
    for i in range(len(rec)):
        for delta in (1, 0x80, 0xFF):
            bad = bytearray(rec)
            bad[i] = (bad[i] + delta) & 0xFF
            with pytest.raises(FormatError):
                decode_record(Reader(bytes(bad)), "t", q.shape)
    for n in range(len(rec)):
        with pytest.raises(FormatError):
            decode_record(Reader(rec[:n]), "t", q.shape)


@pytest.mark.parametrize("name", NAMES)
def test_record_versions_differ_only_in_the_crc_byte_order(name):
    """Packed bodies are the same in v1 and v2; an entropy-coded affine body codes offsets in v1
    and the codes themselves in v2 (docs/format.md), so only packed bodies are compared."""
    from nnshare.format.records import decode_record

    _, q = _sample(name)
    v1, s1 = encode_record("t", q, "none", version=1)
    v2, s2 = encode_record("t", q, "none", version=2)
    assert v1[:-4] == v2[:-4] and v1[-4:] == v2[-4:][::-1] and s1 == s2
    e1, _ = encode_record("t", q, "auto", version=1)
    e2, _ = encode_record("t", q, "auto", version=2)
    for data, v in ((v1, 1), (v2, 2), (e1, 1), (e2, 2)):
        t, secs = decode_record(Reader(data), "t", q.shape, version=v)
        assert np.array_equal(t.dequantize(), q.dequantize())
        assert sum(s.bits for s in secs) == 8 * len(data)
    with pytest.raises(FormatError, match="CRC"):
        decode_record(Reader(v1), "t", q.shape, version=2)


def test_temporal_context_passes_through_to_the_entropy_coder():
    from nnshare.format.records import decode_record

    rng = np.random.default_rng(3)
    prev = np.clip(np.rint(rng.laplace(size=4000) * 2), -7, 7).astype(np.int32)
    cur = np.clip(prev + (rng.random(4000) < 0.05) * rng.integers(-1, 2, 4000), -7, 7)
    spec = QuantSpec(bits=4)
    from nnshare.format.spec import QuantizedTensor

    q = QuantizedTensor(cur.astype(np.int32), {"scale": np.float32(0.1)}, spec, (4000,))
    ctx = prev  # the previous update's codes, which both sides hold
    plain, _ = encode_record("u", q, "auto")
    rec, _ = encode_record("u", q, "auto", context=ctx)
    assert len(rec) < len(plain)  # the temporal model pays on a slowly changing update
    t, _ = decode_record(Reader(rec), "u", (4000,), context=ctx)
    assert np.array_equal(t.codes, cur)
    with pytest.raises(FormatError):
        decode_record(Reader(rec), "u", (4000,))  # without the context: refused, never wrong
    with pytest.raises(SpecError):
        encode_record("u", q, "auto", context=ctx[:10])


def test_wire_spec_holds_only_what_the_receiver_reads_back():
    a = QuantSpec(bits=5, granularity="channel", axis=-1, range_method="mse", rounding="stochastic",
                  seed=9, percentile=99.0)
    b = QuantSpec(bits=5, granularity="channel", axis=1)
    assert a != b and a.wire((3, 4)) == b.wire((3, 4))
    fields = {f.name for f in dataclasses.fields(a.wire())}
    assert fields == {"bits", "symmetric", "restricted", "grain", "scale_dtype", "channel_bits"}

"""The compiled packed-code loops (nnshare.format.kernels) and their numpy twins give the same
bytes and the same float32 values: fixed-width pack/unpack, the fused unpack + dequantize of a
decode, and rows at per-channel widths (issue 19). Small arrays are pushed onto the compiled
path by lowering MIN_ELEMENTS; the numpy path is forced by setting the compiled namespace to None.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnshare
from nnshare.format import FormatError, bitpack, decode_arrays, kernels, read_stream
from nnshare.format.schemes import affine_codes


@pytest.fixture
def compiled(monkeypatch):
    """Every array, however small, takes the compiled loops."""
    monkeypatch.setattr(kernels, "MIN_ELEMENTS", 1)
    assert kernels.fast(1) is not None, "numba missing: install the 'fast' extra (make test does)"


@pytest.fixture
def numpy_only(monkeypatch):
    monkeypatch.setattr(kernels, "_FAST", None)


def _both(fn, monkeypatch):
    """fn() on the compiled loops and on numpy."""
    monkeypatch.setattr(kernels, "MIN_ELEMENTS", 1)
    assert kernels.fast(1) is not None
    fast = fn()
    saved = kernels._FAST
    monkeypatch.setattr(kernels, "_FAST", None)
    slow = fn()
    monkeypatch.setattr(kernels, "_FAST", saved)
    return fast, slow


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 16), n=st.integers(0, 300), seed=st.integers(0, 2**31))
def test_pack_and_unpack_agree_with_numpy(bits, n, seed):
    rng = np.random.default_rng(seed)
    qmin = -(2 ** (bits - 1)) if bits > 1 else 0
    codes = rng.integers(qmin, qmin + 2**bits, n, dtype=np.int32)
    saved = kernels.MIN_ELEMENTS
    try:
        kernels.MIN_ELEMENTS = 1
        fast = bytes(bitpack.pack_codes(codes, qmin, bits))
        back = bitpack.unpack_codes(fast, n, qmin, bits)
    finally:
        kernels.MIN_ELEMENTS = saved
    slow = bytes(bitpack.pack_codes(codes, qmin, bits)) if n < saved else None
    assert len(fast) == bitpack.packed_nbytes(n, bits)
    if slow is not None:
        assert fast == slow
        np.testing.assert_array_equal(bitpack.unpack_codes(slow, n, qmin, bits), codes)
    np.testing.assert_array_equal(back, codes)
    assert back.dtype == np.int32


def test_compiled_unpack_refuses_a_short_buffer(compiled):
    with pytest.raises(FormatError, match="need 5 bytes"):
        bitpack.unpack_codes(b"\x00" * 4, 10, -8, 4)


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "a.weight": rng.standard_normal((37, 24), dtype=np.float32),  # odd rows, 24 per row
        "b.weight": rng.standard_normal((5, 3, 7), dtype=np.float32) * 3,  # 21 per row, not 8k
        "c.bias": rng.standard_normal(11, dtype=np.float32),
    }


PLANS = [
    ("8 tensor", dict(bits=8)),
    ("4 channel", dict(bits=4, granularity="channel")),
    ("3 channel axis 1", dict(bits=3, granularity="channel", axis=1)),
    ("5 asym channel", dict(bits=5, granularity="channel", symmetric=False)),
    ("16 tensor", dict(bits=16)),
    ("2 group 5 axis -1", dict(bits=2, granularity="group", group_size=5, symmetric=False)),
    ("6 group 4 axis 0", dict(bits=6, granularity="group", group_size=4, axis=0)),
    ("8 restricted", dict(bits=8, restricted=True)),
]


@pytest.mark.parametrize("name,kw", PLANS, ids=[p[0] for p in PLANS])
def test_encode_bytes_and_decoded_values_agree_on_both_back_ends(name, kw, monkeypatch):
    m = _model()
    plan = nnshare.Plan.from_choices({n: nnshare.QuantSpec(**kw) for n in m if n.endswith("weight")})
    (data_f, vals_f), (data_s, vals_s) = _both(
        lambda: (lambda d: (d, decode_arrays(d)))(nnshare.encode(m, plan)), monkeypatch)
    assert data_f == data_s
    ref = {n: t.dequantize() for n, t in read_stream(data_s).tensors.items()}  # the unfused path
    for n in m:
        assert vals_f[n].dtype == np.float32 and vals_f[n].flags.c_contiguous
        np.testing.assert_array_equal(vals_f[n], ref[n])
        np.testing.assert_array_equal(vals_s[n], ref[n])


def test_fused_decode_keeps_the_restricted_range_check(monkeypatch):
    from nnshare.format import QuantizedTensor, write_stream
    from nnshare.format.schemes import AffineWire

    codes = np.arange(-127, 129, dtype=np.int32).reshape(16, 16)  # 128: outside [-127, 127]
    t = QuantizedTensor(codes, {"scale": np.float32(0.5)}, AffineWire(8, restricted=True), (16, 16))
    data, _ = write_stream({"w": t})
    monkeypatch.setattr(kernels, "MIN_ELEMENTS", 1)
    for fn in (decode_arrays, lambda d: read_stream(d).tensors["w"]):
        with pytest.raises(FormatError, match="restricted range"):
            fn(data)


@settings(max_examples=30, deadline=None)
@given(widths=st.lists(st.integers(1, 16), min_size=1, max_size=12), per_row=st.integers(1, 20),
       seed=st.integers(0, 2**31))
def test_rows_at_their_own_widths_agree_on_both_back_ends(widths, per_row, seed):
    w = np.asarray(widths, np.int64)
    rng = np.random.default_rng(seed)
    offsets = np.stack([rng.integers(0, 2 ** int(b), per_row) for b in w])
    qmin = -(1 << (w - 1))
    saved_min, saved_fast = kernels.MIN_ELEMENTS, kernels._FAST
    try:
        kernels.MIN_ELEMENTS = 1
        codes = offsets + qmin[:, None]
        fast = bytes(affine_codes.pack_rows(codes, qmin, w, per_row))
        back_f = affine_codes.unpack_rows(fast, w, per_row, qmin)
        kernels._FAST = None
        slow = bytes(affine_codes.pack_rows(codes, qmin, w, per_row))
        back_s = affine_codes.unpack_rows(slow, w, per_row, qmin)
    finally:
        kernels.MIN_ELEMENTS, kernels._FAST = saved_min, saved_fast
    assert fast == slow
    assert len(fast) == (int(w.sum()) * per_row + 7) // 8
    np.testing.assert_array_equal(back_f, offsets + qmin[:, None])
    np.testing.assert_array_equal(back_s, offsets + qmin[:, None])


@pytest.mark.parametrize("per_row", [16, 24, 13])
def test_per_channel_width_streams_agree_on_both_back_ends(per_row, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, per_row)).astype(np.float32)
    cb = tuple(int(b) for b in rng.integers(2, 9, 40))
    spec = nnshare.QuantSpec(bits=max(cb), granularity="channel", channel_bits=cb)
    plan = nnshare.Plan.from_choices({"w": spec})
    (d_f, v_f), (d_s, v_s) = _both(
        lambda: (lambda d: (d, decode_arrays(d)))(nnshare.encode({"w": x}, plan)), monkeypatch)
    assert d_f == d_s
    np.testing.assert_array_equal(v_f["w"], v_s["w"])
    q = nnshare.quantize(x, spec)
    np.testing.assert_array_equal(v_f["w"], q.dequantize())


def test_numba_off_by_environment_keeps_numpy(monkeypatch):
    monkeypatch.setattr(kernels, "_FAST", kernels._UNSET)
    monkeypatch.setenv("NNSHARE_NO_NUMBA", "1")
    assert kernels.fast(1 << 30) is None
    assert kernels.fast(10) is None


_CHILD = """
import hashlib, numpy as np, nnshare
from nnshare.format import decode_arrays, kernels
rng = np.random.default_rng(5)
m = {"a": rng.standard_normal((160, 256), dtype=np.float32), "b": rng.standard_normal(256, dtype=np.float32)}
cb = tuple(int(x) for x in rng.integers(2, 9, 160))
h = hashlib.sha256()
for spec in (nnshare.QuantSpec(bits=8), nnshare.QuantSpec(bits=4, granularity="channel"),
             nnshare.QuantSpec(bits=5, symmetric=False, granularity="channel"),
             nnshare.QuantSpec(bits=max(cb), granularity="channel", channel_bits=cb)):
    data = nnshare.encode(m, nnshare.Plan.from_choices({"a": spec}))
    h.update(data)
    for k, v in sorted(decode_arrays(data).items()):
        h.update(k.encode() + v.tobytes())
print(kernels.fast(m["a"].size) is not None, h.hexdigest())
"""


def test_same_bytes_and_values_with_and_without_numba_in_a_fresh_process():
    import os
    import subprocess
    import sys

    def child(no_numba: bool) -> str:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("NNSHARE_NO_NUMBA", None)
        if no_numba:
            env["NNSHARE_NO_NUMBA"] = "1"
        r = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                           env=env, check=True, timeout=600)
        return r.stdout.split()

    (fast, a), (slow, b) = child(False), child(True)
    assert (fast, slow) == ("True", "False")  # 40,960 elements: the compiled path, then numpy
    assert a == b


def test_a_receiver_decodes_a_medium_stream_without_loading_numba(tmp_path):
    """Decoding 40,960 packed codes in a fresh receiver stays on numpy: loading numba (~0.7 s)
    would cost more than it saves; the values are the compiled path's."""
    import subprocess
    import sys

    rng = np.random.default_rng(9)
    m = {"a": rng.standard_normal((160, 256), dtype=np.float32)}
    data = nnshare.encode(m, nnshare.Plan.from_choices({"a": nnshare.QuantSpec(bits=4)}))
    (tmp_path / "s.nnsh").write_bytes(data)
    code = ("import sys, numpy as np\nfrom nnshare.format import decode_arrays\n"
            f"v = decode_arrays(open({str(tmp_path / 's.nnsh')!r}, 'rb').read())['a']\n"
            f"np.save({str(tmp_path / 'v.npy')!r}, v)\nprint('numba' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       timeout=600)
    assert r.stdout.split() == ["False"]
    assert kernels.fast(m["a"].size) is not None  # this (sender) process compiled the loops
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), decode_arrays(data)["a"])


@pytest.mark.parametrize("symmetric", [True, False])
def test_numpy_width_classes_give_the_unpack_then_dequantize_values(symmetric, monkeypatch):
    """The numpy decode of per-channel widths (rows of one width unpacked together, blocks of
    rows) equals unpacking the codes then dequantizing, and the compiled loop, at widths 2-16."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((300, 40)) * rng.uniform(0.1, 3, (300, 1))).astype(np.float32)
    cb = tuple(int(b) for b in rng.integers(2, 17, 300))
    spec = nnshare.QuantSpec(bits=max(cb), granularity="channel", channel_bits=cb, symmetric=symmetric)
    data = nnshare.encode({"w": x}, nnshare.Plan.from_choices({"w": spec}))
    monkeypatch.setattr(affine_codes, "ROWS_CHUNK", 97)  # blocks of 2 rows: many per width
    v_f, v_s = _both(lambda: decode_arrays(data)["w"], monkeypatch)
    monkeypatch.setattr(kernels, "_FAST", None)
    ref = read_stream(data).tensors["w"].dequantize()
    np.testing.assert_array_equal(v_s, ref)
    np.testing.assert_array_equal(v_f, ref)

"""Crafted update streams and state files (issue 11): an update whose rebuilt values overflow,
17-bit codes and duplicate names in version-1 files are refused; empty and unchanged models
give exact empty / all-zero updates."""

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from nnshare.format import FormatError, SpecError, write_stream
from nnshare.format.chain import fingerprint_arrays
from nnshare.format.spec import QuantizedTensor, QuantSpec
from nnshare.quant.rate import rate_control
from nnshare.share import legacy_update
from nnshare.share.delta import decode_update, encode_update, load_state

sys.path.insert(0, str(Path(__file__).parents[1] / "format"))
import hostile as H  # noqa: E402


def test_v2_update_whose_step_overflows_the_base_is_refused():
    base = {"w": np.full((4, 4), 3.0e38, np.float32)}
    spec = QuantSpec(bits=8)
    codes = np.full((4, 4), 100, np.int32)  # 3e38 + 1e36 * 100 = inf; scale * 2**8 finite
    q = QuantizedTensor(codes, {"scale": np.float32(1e36)}, spec, (4, 4))
    data, _ = write_stream({"w": q}, "agreed", kind="update",
                           base_fingerprint=fingerprint_arrays(base))
    with pytest.raises(FormatError, match="not finite"):
        decode_update(data, base)


def test_writer_refuses_scales_the_reader_refuses():
    spec = QuantSpec(bits=8)
    big = QuantizedTensor(np.ones((2, 2), np.int32), {"scale": np.float32(1e37)}, spec, (2, 2))
    with pytest.raises(SpecError, match="overflows"):  # 1e37 * 2**8 is not a float32
        write_stream({"w": big})
    tiny = QuantizedTensor(np.ones((2, 2), np.int32), {"scale": np.float32(1e-9)},
                           QuantSpec(bits=8, scale_dtype="fp16"), (2, 2))
    with pytest.raises(SpecError, match="is 0 in fp16"):
        write_stream({"w": tiny})


def test_encoder_refuses_an_update_the_receiver_would_refuse():
    base = {"w": np.full((4, 4), 3.3e38, np.float32)}
    new = {"w": np.full((4, 4), -3.3e38, np.float32)}
    with pytest.raises(SpecError):
        encode_update(new, base, step=1e37)


def test_v1_update_with_17_bit_codes_is_refused():
    base = {"w": np.zeros(8, np.float32)}
    from nnshare.format.entropy import encode_codes

    p = encode_codes(np.arange(8) * 1000, -(2**16), 2**16 - 1, lanes=False)
    data = H.nnsu_stream(base, 17, p)
    with pytest.raises(FormatError, match="code width 17"):
        decode_update(data, base)
    ok = H.nnsu_stream(base, 16, encode_codes(np.arange(8) * 1000, -(2**15), 2**15 - 1,
                                              lanes=False))
    out, _ = decode_update(ok, base)
    np.testing.assert_allclose(out["w"], np.float32(0.01) * np.arange(8) * 1000, rtol=1e-6)


def test_v1_update_overflowing_the_base_is_refused():
    base = {"w": np.full(8, 3.0e38, np.float32)}
    from nnshare.format.entropy import encode_codes

    data = H.nnsu_stream(base, 8, encode_codes(np.full(8, 100), -128, 127, lanes=False),
                         step=1e37)
    with pytest.raises(FormatError, match="not finite"):
        decode_update(data, base)


def test_v1_state_with_duplicate_names_is_refused():
    one = H.nnss_state([("a", [1, 2]), ("b", [3])])
    assert {k: v.tolist() for k, v in legacy_update.read_state(one).items()} == {"a": [1, 2],
                                                                                 "b": [3]}
    dup = H.nnss_state([("a", [1, 2]), ("a", [3, 4])])
    with pytest.raises(FormatError, match="'a' appears twice"):
        load_state(dup)


def test_rate_control_and_update_with_every_tensor_empty():
    empty = {"a": np.zeros((0, 4), np.float32), "b": np.zeros((3, 0), np.float32)}
    r = rate_control(empty, sqnr_db=20.0)
    assert r.numel == 0 and r.sse == 0.0 and set(r.tensors) == {"a", "b"}
    assert rate_control(empty, bits_per_param=2.0).numel == 0
    with pytest.raises(SpecError):
        rate_control(empty, bits=-1.0)
    e = encode_update(empty, empty, sqnr_db=20.0)
    out, _ = decode_update(e.data, empty)
    assert {k: v.shape for k, v in out.items()} == {"a": (0, 4), "b": (3, 0)}


def test_update_where_new_equals_base_is_the_all_zero_update():
    rng = np.random.default_rng(0)
    base = {"w": rng.standard_normal((8, 16)).astype(np.float32),
            "b": rng.standard_normal(8).astype(np.float32), "n": np.array([3], np.int64)}
    for kw in ({"sqnr_db": 20.0}, {"bits_per_param": 1.0}, {"step": 0.01}):
        e = encode_update(base, base, **kw)
        out, state = decode_update(e.data, base)
        for k in base:
            np.testing.assert_array_equal(out[k], base[k])
            assert out[k].dtype == base[k].dtype
        assert state.codes == {}  # nothing changed: no temporal context carried on
        assert len(e.data) < 100


def test_nnsu_builder_matches_the_reader_layout():
    base = {"w": np.zeros(4, np.float32)}
    from nnshare.format.entropy import encode_codes

    data = H.nnsu_stream(base, 4, encode_codes(np.array([1, -1, 0, 2]), -8, 7, lanes=False),
                         step=0.5)
    assert data[:4] == b"NNSU" and struct.unpack(">I", data[-4:])[0] > 0
    out, _ = decode_update(data, base)
    np.testing.assert_array_equal(out["w"], [0.5, -0.5, 0.0, 1.0])

"""The rotated scheme in the container: exact payload size, round trip, corruption."""

import numpy as np
import pytest

import nnshare
from nnshare.format import FormatError, read_stream, write_stream
from nnshare.format.rotated import RotatedWire
from nnshare.quant import RotatedConfig, quantize


@pytest.mark.parametrize("d", [1, 1000, 1024, 4097])
@pytest.mark.parametrize("bits,nu", [(1, 0), (1, 6), (2, 3), (4, 8)])
def test_payload_is_b_times_d_plus_64_bits(d, bits, nu):
    x = np.random.default_rng(d).standard_normal(d).astype(np.float32)
    q = quantize(x, RotatedConfig(bits=bits, nu=nu, seed=d))
    data, sections = write_stream({"g": q})
    got = sum(s.bits for s in sections if s.kind in ("side", "payload"))
    assert got == bits * d + 64
    assert sum(s.bits for s in sections) == 8 * len(data)
    back = read_stream(data).tensors["g"]
    assert back.spec == RotatedWire(bits, nu, True)
    np.testing.assert_array_equal(back.dequantize(), q.dequantize())
    np.testing.assert_array_equal(back.codes, q.codes)


def test_shapes_and_entropy_option_round_trip():
    x = np.random.default_rng(1).standard_normal((8, 3, 5)).astype(np.float32)
    q = quantize(x, RotatedConfig(bits=2, nu=5, unbiased=False, seed=123))
    for entropy in ("none", "auto"):
        data = nnshare.encode_tensors({"w": q}, entropy=entropy)
        out = nnshare.format.decode_arrays(data)["w"]
        assert out.shape == x.shape
        np.testing.assert_array_equal(out, q.dequantize())
    cos = float(np.dot(out.ravel(), x.ravel()) / np.linalg.norm(out) / np.linalg.norm(x))
    assert cos > 0.95


def test_every_corruption_and_truncation_is_a_format_error():
    x = np.random.default_rng(2).standard_normal(40).astype(np.float32)
    data, _ = write_stream({"v": quantize(x, RotatedConfig(bits=1, nu=4, seed=9))})
    for i in range(len(data)):
        for delta in (1, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= delta
            with pytest.raises(FormatError):
                read_stream(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            read_stream(data[:n])


def test_bad_configs_are_refused():
    with pytest.raises(nnshare.SpecError):
        RotatedConfig(seed=-1)
    with pytest.raises(nnshare.SpecError):
        RotatedConfig(bits=0)
    with pytest.raises(nnshare.SpecError):
        RotatedConfig.from_dict({"bits": 1, "colour": "red"})
    assert RotatedConfig.from_dict(RotatedConfig(bits=3).to_dict()) == RotatedConfig(bits=3)

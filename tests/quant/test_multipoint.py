"""Multipoint quantization: greedy points, extra points where the error is, the record body."""

import numpy as np
import pytest

from nnshare.format import FormatError, SpecError, read_stream, write_stream
from nnshare.format.records import encode_record, record_bits
from nnshare.format.schemes.multipoint import MultipointWire
from nnshare.format.wire import crc32
from nnshare.quant import MultipointConfig, QuantSpec, quantize


def _mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_more_points_shrink_the_error_geometrically():
    x = np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32)
    errs = []
    for k in range(1, 6):
        q = quantize(
            x, MultipointConfig(bits=2, points=k, extra=k - 1, granularity="tensor", scale_dtype="fp32")
        )
        assert q.params["counts"].tolist() == [k] and q.codes.shape == (k, 512)
        errs.append(_mse(q.dequantize(), x))
    ratios = np.array(errs[1:]) / np.array(errs[:-1])
    assert np.all(ratios < 0.6), ratios  # every ternary point removes > 40 % of the error
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / errs[-1]) > 20  # 5 ternary points: > 20 dB


def test_one_point_is_at_least_as_good_as_absmax_rounding():
    rng = np.random.default_rng(1)
    x = (rng.laplace(size=(16, 200)) * rng.uniform(0.1, 3, (16, 1))).astype(np.float32)
    for bits in (2, 3, 4, 8):
        mp = quantize(x, MultipointConfig(bits=bits, points=1, extra=0, scale_dtype="fp32"))
        aff = quantize(x, QuantSpec(bits=bits, granularity="channel", axis=0, restricted=True))
        assert _mse(mp.dequantize(), x) <= _mse(aff.dequantize(), x) * 1.0001
    one_bit = quantize(x, MultipointConfig(bits=1, points=1, extra=0, scale_dtype="fp32"))
    # 1 bit: a = mean |w| per row, q = sign(w) (the closed-form optimum)
    np.testing.assert_allclose(one_bit.params["scale"], np.abs(x).mean(1), rtol=1e-5)
    assert set(np.unique(one_bit.codes)) <= {-1, 1}


def test_extra_points_go_to_the_rows_with_the_largest_error():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 64)).astype(np.float32)
    x[[3, 7]] *= 50  # two rows carry almost all the error
    q = quantize(x, MultipointConfig(bits=3, points=3, extra=0.4))  # 4 extra points on 10 rows
    assert q.params["counts"].tolist() == [1, 1, 1, 3, 1, 1, 1, 3, 1, 1]
    plain = quantize(x, MultipointConfig(bits=3, points=1, extra=0))
    assert _mse(q.dequantize(), x) < 0.1 * _mse(plain.dequantize(), x)
    # the mixed-precision effect at fewer bits: 3-bit + 20 % extra points vs 4-bit everywhere
    q2 = quantize(x, MultipointConfig(bits=3, points=2, extra=0.2))
    four = quantize(x, MultipointConfig(bits=4, points=1, extra=0))
    assert 8 * len(encode_record("w", q2)[0]) < 8 * len(encode_record("w", four)[0])
    assert _mse(q2.dequantize(), x) < 0.5 * _mse(four.dequantize(), x)


def test_output_error_weights_steer_the_extra_points():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 32)).astype(np.float32)
    h = np.ones((1, 32))
    h[0, :4] = 1e4  # inputs 0..3 carry large activations: rows with large w[:, :4] errors matter
    x[5, :4] *= 3
    x[2, 4:] *= 3  # big weight error elsewhere, where the inputs are small
    cfg = MultipointConfig(bits=2, points=2, extra=0.125)  # one extra point
    assert quantize(x, cfg).params["counts"][2] == 2
    assert quantize(x, cfg, weights=h).params["counts"][5] == 2
    with pytest.raises(SpecError, match="broadcast"):
        quantize(x, cfg, weights=np.ones(5))
    with pytest.raises(SpecError, match=">= 0"):
        quantize(x, cfg, weights=-h)


def test_record_size_is_analytic_and_round_trips():
    x = np.random.default_rng(4).standard_normal((6, 10)).astype(np.float32)
    cfg = MultipointConfig(bits=3, points=4, extra=0.5, axis=1)  # 10 rows along axis 1, 5 extra points
    q = quantize(x, cfg)
    w = cfg.wire(x.shape)
    assert w == MultipointWire(3, 4, 5, w.grain, "fp16") and w.axis == 1
    # kind + 2 spec bytes + axis + 10 counts x 4 bits + 15 fp16 scales + 15 x 6 x 3 bits + CRC
    assert record_bits(x.shape, cfg) == 8 + 24 + 40 + 15 * 16 + 8 * -(-15 * 6 * 3 // 8) + 32
    data, _ = write_stream({"w": q})
    got = read_stream(data).tensors["w"]
    assert got.spec == w and got.codes.shape == (15, 6)
    assert np.array_equal(got.dequantize(), q.dequantize())


def test_bad_configs_and_codes_are_refused():
    with pytest.raises(SpecError, match="extra"):
        MultipointConfig(points=2, extra=1.5)
    with pytest.raises(SpecError, match="1..8"):
        MultipointConfig(bits=9)
    with pytest.raises(SpecError, match="granularity"):
        MultipointConfig(granularity="group")
    x = np.ones((2, 3), np.float32)
    q = quantize(x, MultipointConfig(bits=1, points=1, extra=0))
    from nnshare.format.spec import QuantizedTensor

    bad = QuantizedTensor(np.zeros_like(q.codes), q.params, q.spec, q.shape)  # 0 is not a 1-bit code
    with pytest.raises(SpecError, match="-1 or \\+1"):
        encode_record("w", bad)
    with pytest.raises(SpecError, match="NaN"):
        quantize(np.array([np.nan], np.float32), MultipointConfig(granularity="tensor"))


def test_a_count_above_the_point_limit_is_a_format_error_even_with_a_valid_crc():
    x = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    rec, _ = encode_record("w", quantize(x, MultipointConfig(bits=2, points=2, extra=0.5)))
    # kind, byte 1, byte 2, axis, then 4 counts (n_c - 1) at 4 bits: set the first to 15
    body = bytearray(rec[:-4])
    body[4] = 0xF0 | (body[4] & 0x0F)
    forged = bytes(body) + crc32(bytes(body)).to_bytes(4, "big")
    from nnshare.format.records import decode_record
    from nnshare.format.wire import Reader

    with pytest.raises(FormatError, match="more than 2 points"):
        decode_record(Reader(forged), "w", x.shape)


def test_plans_send_multipoint_sigma_delta_and_lplr_like_any_scheme():
    import nnshare
    from nnshare.plan import Plan, Rule
    from nnshare.quant import LPLRConfig, SigmaDeltaConfig

    rng = np.random.default_rng(6)
    state = {
        "a.weight": rng.normal(size=(16, 8)).astype(np.float32),
        "b.weight": rng.normal(size=(8, 16)).astype(np.float32),
        "c.weight": (rng.normal(size=(24, 4)) @ rng.normal(size=(4, 20))).astype(np.float32),
    }
    plan = Plan(
        rules=(
            Rule(spec=MultipointConfig(bits=3, points=2, extra=0.5), name=r"a\.weight"),
            Rule(spec=SigmaDeltaConfig(bits=4, order=1, block=1), name=r"b\.weight"),
            Rule(spec=LPLRConfig(rank=4, bits_left=8, bits_right=8), name=r"c\.weight"),
        )
    )
    assert Plan.from_json(plan.to_json()) == plan
    out = nnshare.decode(nnshare.encode(state, plan))
    for name, floor in (("a.weight", 0.99), ("b.weight", 0.95), ("c.weight", 0.999)):
        x, y = state[name].ravel(), out[name].ravel()
        assert float(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y)) > floor, name

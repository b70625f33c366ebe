"""The sigma-delta scheme: the registered quantizer sends what the recursion chose, the numpy
receiver condenses it, and the kernel estimate through a stream beats plain rounding."""

import numpy as np
import pytest

from nnshare.format import FormatError, SpecError, read_stream, write_stream
from nnshare.format.records import encode_record, record_bits
from nnshare.format.schemes.sigma_delta import condense
from nnshare.quant import SigmaDeltaConfig, quantize
from nnshare.quant import sigma_delta as sd


def _kernel(m=2048, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 5))
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * 2.0**2))
    return k, sd.random_fourier_features(x, m, 2.0, seed=seed + 1).astype(np.float32)


def _err(est, k):
    off = ~np.eye(len(k), dtype=bool)
    return np.linalg.norm((est - k)[off]) / np.linalg.norm(k[off])


def test_codes_are_the_recursion_and_the_receiver_condenses_them():
    k, z = _kernel()
    cfg = SigmaDeltaConfig(bits=1, order=1, block=8, per_row=False, scale_dtype="fp32")
    q = quantize(z, cfg)
    amax = float(np.abs(z).max())
    idx, _ = sd.sigma_delta(z / (2 * amax), 1, sd.alphabet(1, 1.0))
    assert np.array_equal(q.codes, idx.astype(np.int32))
    data, _ = write_stream({"rff": q})
    assert 8 * len(data) < 2048 * 60 + 1000  # one bit per feature (+ header, delta, CRC)
    got = read_stream(data).tensors["rff"]
    assert got.spec == cfg.wire(z.shape) and np.array_equal(got.dequantize(), q.dequantize())
    c = condense(got)
    assert c.shape == (60, 256)
    e_sd = _err(c @ c.T, k)
    plain = np.where(z > 0, amax, -amax)  # 1-bit rounding at the same levels
    e_round = _err(2 / z.shape[1] * plain @ plain.T, k)
    assert e_sd < 0.4 * e_round


def test_noise_shaping_and_higher_order_round_trip_with_their_filters():
    _, z = _kernel(m=576)  # a multiple of both blocks (16, 9)
    for cfg in (
        SigmaDeltaConfig(bits=2, mode="noise_shaping", beta=1.5, block=16, headroom=1.6),
        SigmaDeltaConfig(bits=3, order=2, block=9, per_row=True),
    ):
        q = quantize(z, cfg)
        rec, _ = encode_record("z", q)
        assert 8 * len(rec) == record_bits(z.shape, cfg)
        data, _ = write_stream({"z": q}, entropy="auto")
        got = read_stream(data).tensors["z"]
        assert np.array_equal(condense(got), sd.condense(q.dequantize(), cfg.wire().filter()))
    assert np.allclose(SigmaDeltaConfig(order=2, block=9).wire().filter(), sd.sd_filter(2, 5))


def test_as_a_weight_quantizer_the_error_is_pushed_to_high_frequencies():
    # a smooth input sees the low-pass part of the weight error: sigma-delta wins over rounding there
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 256)).astype(np.float32)
    x = np.cos(np.linspace(0, 2 * np.pi, 256))[:, None] * np.ones((1, 4))  # slowly varying inputs
    q = quantize(w, SigmaDeltaConfig(bits=2, order=1, block=1, per_row=True, scale_dtype="fp32"))
    from nnshare.quant import QuantSpec

    plain = quantize(w, QuantSpec(bits=2, symmetric=False, granularity="channel"))
    e_sd = np.linalg.norm((q.dequantize() - w) @ x)
    e_plain = np.linalg.norm((plain.dequantize() - w) @ x)
    assert e_sd < 0.5 * e_plain


def test_bad_configs_and_records():
    with pytest.raises(SpecError, match="beta"):
        SigmaDeltaConfig(mode="noise_shaping", beta=0.0)
    with pytest.raises(SpecError, match="block"):
        SigmaDeltaConfig(order=2, block=8)  # 2 (lt - 1) + 1 is odd
    with pytest.raises(SpecError, match="beta"):
        SigmaDeltaConfig(beta=1.5)  # beta belongs to noise shaping
    with pytest.raises(SpecError, match="divide"):
        quantize(np.zeros((2, 10), np.float32), SigmaDeltaConfig(mode="noise_shaping", beta=1.5, block=4))
    with pytest.raises(SpecError, match="0-d"):
        quantize(np.float32(1.0), SigmaDeltaConfig())
    q = quantize(np.ones((2, 8), np.float32), SigmaDeltaConfig())
    rec, _ = encode_record("w", q)
    from nnshare.format.records import decode_record
    from nnshare.format.wire import Reader, crc32

    body = bytearray(rec[:-4])
    body[1] |= 0x03  # reserved bits of spec byte 1
    with pytest.raises(FormatError, match="invalid sigma-delta spec"):
        decode_record(Reader(bytes(body) + crc32(bytes(body)).to_bytes(4, "big")), "w", (2, 8))

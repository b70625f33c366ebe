"""The LPLR scheme: the registered quantizer, its exact order-free product, analytic size, and
its error against plain quantization at equal bits."""

import numpy as np
import pytest

from nnshare.format import FormatError, SpecError, read_stream, write_stream
from nnshare.format.records import encode_record, record_bits
from nnshare.quant import LPLRConfig, QuantSpec, quantize
from nnshare.quant.lplr import lplr_bits


def low_rank(n=128, d=96, k=8, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, k)) @ rng.standard_normal((k, d)) + noise * rng.standard_normal((n, d))
    return a.astype(np.float32)


def rel(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(a))


def test_record_is_the_factorization_and_beats_plain_quantization_at_equal_bits():
    w = low_rank()
    cfg = LPLRConfig(rank=12, bits_left=4, bits_right=4, iters=2)
    q = quantize(w, cfg)
    n, d = w.shape
    rec, _ = encode_record("w", q)
    # kind + 2 spec bytes + rank varint + 4 fp32 + codes + CRC: the LPLR storage plus framing
    assert 8 * len(rec) == record_bits(w.shape, cfg) == 8 + 24 + lplr_bits(n, d, 12, 4, 4) + 32
    per_weight = 8 * len(rec) / w.size  # ~0.9 bit per weight
    plain = quantize(w, QuantSpec(bits=1, symmetric=False))
    assert 8 * len(encode_record("w", plain)[0]) / w.size > per_weight * 0.9
    assert rel(w, q.dequantize()) < 0.5 * rel(w, plain.dequantize())
    data, _ = write_stream({"w": q}, entropy="auto")
    got = read_stream(data).tensors["w"]
    assert got.spec == cfg.wire(w.shape) and np.array_equal(got.dequantize(), q.dequantize())


def test_the_product_is_exact_whatever_the_summation_order():
    w = low_rank(n=40, d=30, k=4)
    q = quantize(w, LPLRConfig(rank=4, bits_left=8, bits_right=3))
    a = q.codes[: 40 * 4].reshape(40, 4).astype(np.float64)
    b = q.codes[40 * 4 :].reshape(4, 30).astype(np.float64)
    (lo_l, lo_r), (st_l, st_r) = q.params["lo"].astype(np.float64), q.params["step"].astype(np.float64)
    direct = (lo_l + st_l * a) @ (lo_r + st_r * b)  # the factors' product in float64
    np.testing.assert_allclose(q.dequantize(), direct, rtol=1e-5, atol=1e-6)
    # reversing the rank order changes a float64 product's rounding, never the receiver's
    perm = np.arange(4)[::-1]
    from nnshare.format.schemes.lplr import product

    codes = np.concatenate([a[:, perm].reshape(-1), b[perm].reshape(-1)]).astype(np.int32)
    assert np.array_equal(product(codes, q.params["lo"], q.params["step"], (40, 30), 4), q.dequantize())


def test_conv_shaped_tensors_and_bad_input():
    w = np.random.default_rng(2).standard_normal((8, 3, 3, 3)).astype(np.float32)
    q = quantize(w, LPLRConfig(rank=4))
    assert q.dequantize().shape == w.shape and q.codes.size == 8 * 4 + 4 * 27
    with pytest.raises(SpecError, match="rank"):
        quantize(w, LPLRConfig(rank=9))
    with pytest.raises(SpecError, match="2 dimensions"):
        quantize(np.ones(5, np.float32), LPLRConfig(rank=1))
    with pytest.raises(SpecError, match="iters"):
        LPLRConfig(iters=-1)
    rec, _ = encode_record("w", q)
    from nnshare.format.records import decode_record
    from nnshare.format.wire import Reader, crc32

    body = bytearray(rec[:-4])
    body[3] = 9  # rank varint: 9 > min(8, 27)
    with pytest.raises(FormatError, match="rank"):
        decode_record(Reader(bytes(body) + crc32(bytes(body)).to_bytes(4, "big")), "w", w.shape)

import numpy as np
import pytest
import torch

from nnshare.format.spec import QuantSpec, from_blocks, round_scale, to_blocks
from nnshare.qat import fakequant as fq
from nnshare.quant.affine import quantize


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_round_scale_matches_numpy_bit_exactly(dtype):
    rng = np.random.default_rng(0)
    s = np.concatenate([
        np.exp(rng.uniform(-30, 12, 20000)).astype(np.float32),
        np.array([1e-45, 0.0, -1.0, 65504.0, 70000.0, 6e-5], np.float32),
    ])
    # exact ties for bf16 and fp16 rounding (half way between two representable values)
    ties = (np.arange(1, 200, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    s = np.concatenate([s, np.abs(ties) + np.float32(1)])
    got = fq.round_scale_value(torch.from_numpy(s), dtype).numpy()
    np.testing.assert_array_equal(got.view(np.uint32), round_scale(s, dtype).view(np.uint32))


def test_round_scale_passes_gradient_straight_through():
    s = torch.tensor([0.1234567, -2.0], requires_grad=True)
    fq.round_scale(s, "bf16").sum().backward()
    assert s.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "spec",
    [
        QuantSpec(),
        QuantSpec(granularity="channel", axis=1),
        QuantSpec(granularity="group", group_size=5, axis=2),
        QuantSpec(granularity="group", group_size=4, axis=0),
    ],
)
def test_blocks_match_numpy_and_round_trip(spec):
    x = np.random.default_rng(1).normal(size=(3, 4, 7)).astype(np.float32)
    tb = fq.to_blocks(torch.from_numpy(x), spec).numpy()
    np.testing.assert_array_equal(tb, to_blocks(x, spec))
    back = fq.from_blocks(torch.from_numpy(tb), x.shape, spec).numpy()
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(from_blocks(tb, x.shape, spec), x)


@pytest.mark.parametrize("symmetric", [True, False])
def test_fake_quant_equals_quantize_dequantize_including_ties(symmetric):
    spec = QuantSpec(bits=4, symmetric=symmetric, granularity="channel")
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 50)).astype(np.float32)
    scale = np.full(6, 0.125, np.float32)  # power of two: w / s is exact, so ties are exact
    w[:, :10] = (np.arange(10) - 4.5).astype(np.float32) * np.float32(0.125)  # k + 0.5 steps
    zp = np.array([0, 3, 7, 8, 15, 2], np.int32)
    qt = quantize(w, spec, scale=scale, zero_point=None if symmetric else zp)
    z = None if symmetric else torch.from_numpy(zp.astype(np.float32)).reshape(-1, 1)
    out = fq.fake_quant(torch.from_numpy(w), torch.from_numpy(scale).reshape(-1, 1), z,
                        spec.qmin, spec.qmax)
    np.testing.assert_array_equal(out.numpy(), qt.dequantize())


def test_fake_quant_gradient_is_ste_inside_and_zero_outside():
    w = torch.tensor([[0.26, -10.0, 10.0, 0.04]], requires_grad=True)
    s = torch.tensor([[0.1]])
    out = fq.fake_quant(w, s, None, -8, 7)
    out.sum().backward()
    assert w.grad.tolist() == [[1.0, 0.0, 0.0, 1.0]]


def test_grad_scale_is_exact_identity_forward():
    x = torch.tensor([0.1, 3.3333333, 1e-20], requires_grad=True)
    y = fq.grad_scale(x, 0.37)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), 0.37))

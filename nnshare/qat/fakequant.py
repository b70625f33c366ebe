"""Fake quantization in torch, bit-exact with the numpy quantizer and the receiver.

The forward value of :func:`fake_quant` is computed in the same float32 operations, in the same
order, as ``nnshare.quant.quantize`` followed by ``QuantizedTensor.dequantize``::

    codes = clamp(rint(w / s) + z, qmin, qmax)      # s already rounded to the spec's scale_dtype
    w_hat = (codes - z) * s                          # float32

so a model trained with it decodes to exactly the weights it was trained with. Gradients follow
the straight-through estimator (STE): ``d rint(u) / du := 1``; the clamp passes the gradient
inside ``[qmin, qmax]`` and blocks it outside.

Blocks: tensors are viewed as 2-D ``(n_scales, block_len)`` arrays exactly like
``nnshare.format.spec.to_blocks`` (per tensor, per channel on ``axis``, per group of
``group_size``), so one code path serves every granularity.
"""

from __future__ import annotations

import math

import torch

from ..format.spec import QuantSpec, _axis, group_len

FP32_TINY = 1.1754944e-38
FP16_MIN = 2.0**-24  # smallest fp16 subnormal, as nnshare.format.spec.SCALE_LIMITS
BF16_MAX = 3.3895314e38
FP16_MAX = 65504.0


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        return torch.round(u)

    @staticmethod
    def backward(ctx, g):
        return g


class _GradScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, g):
        ctx.g = g
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.g, None


class _RoundScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, dtype, up):
        return round_scale_up_value(s, dtype) if up else round_scale_value(s, dtype)

    @staticmethod
    def backward(ctx, g):
        return g, None, None


def round_ste(u: torch.Tensor) -> torch.Tensor:
    """Round half to even (as ``np.rint``) with the straight-through gradient 1."""
    return _RoundSTE.apply(u)


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Identity in the forward pass (bit-exact); multiplies the gradient by ``g`` (LSQ scaling)."""
    return _GradScale.apply(x, float(g))


def round_scale_value(s: torch.Tensor, dtype: str) -> torch.Tensor:
    """Torch twin of ``nnshare.format.spec.round_scale``: clamp to the dtype's positive finite
    range and round to fp32/fp16/bf16 precision (nearest even); keeps ``s``'s torch dtype."""
    if dtype == "fp16":
        return s.clamp(FP16_MIN, FP16_MAX).half().to(s.dtype)
    if dtype == "bf16":
        return s.clamp(FP32_TINY, BF16_MAX).bfloat16().to(s.dtype)
    return s.clamp(min=FP32_TINY)


def round_scale_up_value(s: torch.Tensor, dtype: str) -> torch.Tensor:
    """Torch twin of ``nnshare.format.spec.round_scale_up``: like :func:`round_scale_value` but
    never below ``s`` (up to the dtype's largest value); used for scales derived from a range."""
    r = round_scale_value(s, dtype)
    if dtype == "fp32":
        return r
    half = torch.float16 if dtype == "fp16" else torch.bfloat16
    top = FP16_MAX if dtype == "fp16" else BF16_MAX
    h = r.to(half)
    up = (h.view(torch.int16) + 1).view(half).to(s.dtype).clamp(max=top)
    return torch.where(r < s, up, r)


def round_scale(s: torch.Tensor, dtype: str, up: bool = False) -> torch.Tensor:
    """:func:`round_scale_value` (or, with ``up``, :func:`round_scale_up_value`) in the forward
    pass, gradient 1 (STE) in the backward pass.

    The STE also keeps a negative or zero scale trainable: its value is clamped to a positive
    number but its gradient still flows.
    """
    return _RoundScale.apply(s, dtype, up)


def fake_quant(
    blocks: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    qmin: int,
    qmax: int,
    round_fn=round_ste,
) -> torch.Tensor:
    """Quantize-dequantize ``blocks`` (n, L) with per-row ``scale`` (n, 1) (already rounded) and
    integer-valued float ``zero_point`` (n, 1) or None (symmetric). Returns (n, L).

    Computed as ``rint(clamp(w / s, qmin - z, qmax - z)) * s``: the same values as
    ``(clamp(rint(w / s) + z, qmin, qmax) - z) * s`` (the bounds are integers), without adding z
    before rounding (which can lose the fraction in float32), and with LSQ's gradient: a value
    counts as clipped when its unrounded index lies outside the range.
    """
    u = blocks / scale
    if zero_point is None:
        u = torch.clamp(u, qmin, qmax)
    else:
        u = torch.clamp(u, qmin - zero_point, qmax - zero_point)
    # + 0.0 turns a rounded -0.0 into +0.0, as the receiver's float32(code - z) * s gives
    return (round_fn(u) + 0.0) * scale


def to_blocks(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Torch twin of ``nnshare.format.spec.to_blocks`` (differentiable; group padding repeats the
    last value of a row, which leaves each row's min and max unchanged)."""
    if spec.granularity == "tensor":
        return x.reshape(1, -1)
    ax = _axis(tuple(x.shape), spec.axis)
    if spec.granularity == "channel":
        return torch.movedim(x, ax, 0).reshape(x.shape[ax], -1)
    moved = torch.movedim(x, ax, -1)
    length = moved.shape[-1]
    rows = moved.reshape(-1, length)
    g = group_len(length, spec)
    ng = math.ceil(length / g) if length else 0
    pad = ng * g - length
    if pad:
        rows = torch.cat([rows, rows[:, -1:].expand(-1, pad)], dim=1)
    return rows.reshape(rows.shape[0] * ng, g)


def from_blocks(blocks: torch.Tensor, shape: tuple[int, ...], spec: QuantSpec) -> torch.Tensor:
    """Inverse of :func:`to_blocks` (drops group padding); returns a contiguous tensor."""
    shape = tuple(int(s) for s in shape)
    if spec.granularity == "tensor":
        return blocks.reshape(shape)
    ax = _axis(shape, spec.axis)
    if spec.granularity == "channel":
        moved_shape = (shape[ax],) + shape[:ax] + shape[ax + 1 :]
        return torch.movedim(blocks.reshape(moved_shape), 0, ax).contiguous()
    length = shape[ax]
    moved_shape = shape[:ax] + shape[ax + 1 :] + (length,)
    rows = math.prod(moved_shape[:-1])
    g = group_len(length, spec)
    ng = math.ceil(length / g) if length else 0
    flat = blocks.reshape(rows, ng * g)[:, :length]
    return torch.movedim(flat.reshape(moved_shape), -1, ax).contiguous()

"""Uniform affine quantization: x_int = clamp(round(x / s) + z, qmin, qmax), x_hat = s (x_int - z)."""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError
from ..format.spec import (
    SCALE_LIMITS,
    QuantizedTensor,
    from_blocks,
    round_scale,
    round_scale_up,
    scale_shape,
    to_blocks,
)
from . import _affine_fast, ranges
from .spec import QuantSpec


def params_from_range(
    lo: np.ndarray, hi: np.ndarray, spec: QuantSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Scale (float32, in ``spec.scale_dtype`` precision) and zero point (int32) per row.

    Symmetric: s = max(|lo|, |hi|) / qmax, z = 0. Asymmetric: the range is widened to include 0
    so zero is exact; s = (hi - lo) / (2^b - 1), z = round(-lo / s). The division is in float32
    (float64 where float32 would overflow); the scale is then rounded *up* to its transmission
    precision (fp16 / bf16), so qmax * s still covers the range.
    """
    lo = np.minimum(np.asarray(lo, np.float32).reshape(-1), 0)
    hi = np.maximum(np.asarray(hi, np.float32).reshape(-1), 0)
    _, qmax = spec.row_qrange(lo.size)
    qmax32 = qmax.astype(np.float32)
    with np.errstate(over="ignore"):
        span = np.maximum(-lo, hi) if spec.symmetric else hi - lo
        raw = span / qmax32
    if not np.all(np.isfinite(raw)):  # hi - lo overflowed float32
        wide = (hi.astype(np.float64) - lo.astype(np.float64)) / qmax
        raw = np.where(np.isfinite(raw), raw, np.minimum(wide, SCALE_LIMITS["fp32"][0]))
        raw = raw.astype(np.float32)
    raw = np.where(raw > 0, raw, np.float32(1.0))
    scale = round_scale_up(raw, spec.scale_dtype)
    if spec.symmetric:
        zp = np.zeros(scale.shape, np.int32)
    else:
        zp = np.clip(np.rint(-lo / scale), 0, qmax).astype(np.int32)
    return scale, zp


def quantize_blocks(
    blocks: np.ndarray,
    scale: np.ndarray,
    zp: np.ndarray,
    spec: QuantSpec,
    rng: np.random.Generator | None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Codes (int32) for each row of ``blocks`` given its scale and zero point.

    ``bounds``: the rows' known (min, max); when round-to-nearest of both ends already lands in
    the code range, the clamp pass is skipped (x / s and rint are monotonic, so it is exact).
    """
    stochastic = spec.rounding == "stochastic" and rng is not None
    f = None if stochastic else _affine_fast.fast(blocks.size)
    if f is not None:  # one compiled pass, the same codes
        qmin, qmax = spec.row_qrange(blocks.shape[0])
        out = np.empty(blocks.shape, np.int32)
        zero = np.zeros(blocks.shape[0], np.float32) if spec.symmetric else zp.astype(np.float32)
        f[0](blocks, np.ascontiguousarray(scale, np.float32), zero, qmin.astype(np.float32),
             qmax.astype(np.float32), out)
        return out
    y = blocks / scale[:, None]
    if stochastic:
        y = np.floor(y + rng.random(y.shape, dtype=np.float32))
    else:
        np.rint(y, out=y)
    if not spec.symmetric:
        y += zp[:, None].astype(np.float32)
    qmin, qmax = spec.row_qrange(blocks.shape[0])
    if bounds is not None and not stochastic:
        lo = np.rint(bounds[0] / scale) + zp
        hi = np.rint(bounds[1] / scale) + zp
        if np.all(lo >= qmin) and np.all(hi <= qmax):
            return y.astype(np.int32)
    if spec.channel_bits:
        np.clip(y, qmin[:, None].astype(np.float32), qmax[:, None].astype(np.float32), out=y)
    else:
        np.clip(y, spec.qmin, spec.qmax, out=y)
    return y.astype(np.int32)


def as_float_array(x) -> np.ndarray:
    """A float32 numpy array from a numpy array, torch tensor or nested sequence."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise SpecError(f"cannot quantize dtype {arr.dtype}; expected a real numeric tensor")
    return np.asarray(arr, dtype=np.float32)


def quantize(x, spec: QuantSpec, *, scale=None, zero_point=None) -> QuantizedTensor:
    """Quantize ``x`` (numpy array or torch tensor) with ``spec``.

    ``scale`` / ``zero_point`` (arrays of ``scale_shape``) override the range estimate, e.g. with
    ranges learned by QAT; they are still rounded to ``spec.scale_dtype``.
    """
    arr = as_float_array(x)
    shape = tuple(int(s) for s in arr.shape)
    blocks = to_blocks(arr, spec)
    sshape = scale_shape(shape, spec)
    if scale is None:
        lo, hi = ranges.estimate(blocks, spec)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):  # NaN/Inf reach min/max
            raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
        s, z = params_from_range(lo, hi, spec)
    else:
        if not np.all(np.isfinite(arr)):
            raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
        s = round_scale(np.asarray(scale, np.float32).reshape(-1), spec.scale_dtype)
        if s.size != blocks.shape[0]:
            raise SpecError(f"scale has {s.size} entries, the spec needs {blocks.shape[0]}")
        if spec.symmetric:
            z = np.zeros(s.shape, np.int32)
        else:
            if zero_point is None:
                raise SpecError("asymmetric quantization with a given scale needs a zero_point")
            zq = spec.row_qrange(s.size)[1]
            z = np.clip(np.asarray(zero_point).reshape(-1), 0, zq).astype(np.int32)
    rng = np.random.default_rng(spec.seed) if spec.rounding == "stochastic" else None
    bounds = (lo, hi) if scale is None and spec.range_method == "minmax" else None
    codes = quantize_blocks(blocks, s, z, spec, rng, bounds)
    codes = np.asarray(from_blocks(codes, shape, spec), order="C")
    params = {"scale": s.reshape(sshape)}
    if not spec.symmetric:
        params["zero_point"] = z.reshape(sshape)
    return QuantizedTensor(codes=codes, params=params, spec=spec, shape=shape)


def fake_quantize(x, spec: QuantSpec) -> np.ndarray:
    """Quantize then dequantize (float32 numpy array)."""
    return quantize(x, spec).dequantize()

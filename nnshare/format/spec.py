"""QuantizedTensor, FloatTensor, RawTensor: what a receiver rebuilds; float rounding helpers.

These types are numpy-only: the receiver (``nnshare.format``) needs them without torch. A
QuantizedTensor's ``spec`` is its scheme's wire spec (what a record carries, e.g.
:class:`~nnshare.format.schemes.AffineWire`) or a sender config that projects to it with
``.wire(shape)`` (e.g. :class:`nnshare.quant.QuantSpec`). The granularity helpers live in
:mod:`nnshare.format.grain` and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SpecError
from .grain import KINDS as GRANULARITIES
from .grain import check_axis, from_blocks, group_len, n_rows, scale_shape, to_blocks

#: Re-exported granularity helpers (their home is :mod:`nnshare.format.grain`).
__all__ = [
    "GRANULARITIES",
    "FloatTensor",
    "QuantizedTensor",
    "RawTensor",
    "check_axis",
    "from_blocks",
    "group_len",
    "n_scales",
    "round_float",
    "round_scale",
    "round_scale_up",
    "scale_shape",
    "to_blocks",
]

FLOAT_DTYPES = ("fp32", "fp16", "bf16")


def n_scales(shape: tuple[int, ...], spec) -> int:
    """Number of (scale, zero point) pairs the spec needs for a tensor of ``shape``."""
    return n_rows(shape, spec)


def __getattr__(name: str):
    # QuantSpec (the affine sender config) moved to nnshare.quant; old imports keep working.
    if name == "QuantSpec":
        from ..quant.spec import QuantSpec

        return QuantSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Largest finite and smallest positive scale per transmission dtype (fp16 includes subnormals).
SCALE_LIMITS = {
    "fp32": (np.float32(3.4028235e38), np.float32(1.1754944e-38)),
    "fp16": (np.float32(65504.0), np.float32(2.0**-24)),
    "bf16": (np.float32(3.3895314e38), np.float32(1.1754944e-38)),
}


def round_scale(scale: np.ndarray, dtype: str) -> np.ndarray:
    """Round positive float scales to the precision they are sent in (nearest, ties to even),
    clamped to that dtype's positive finite range; result is float32 > 0."""
    hi, lo = SCALE_LIMITS[dtype]
    s = np.clip(np.asarray(scale, dtype=np.float32), lo, hi)
    if dtype == "fp16":
        return s.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return round_float(s, "bf16")
    return s


def round_scale_up(scale: np.ndarray, dtype: str) -> np.ndarray:
    """Like :func:`round_scale` but never below ``scale`` (up to the dtype's largest value), so a
    range estimate is still covered: qmax * s >= max|x|."""
    s = round_scale(scale, dtype)
    want = np.asarray(scale, dtype=np.float32)
    low = s < want
    if np.any(low):
        if dtype == "fp16":
            up = np.nextafter(s.astype(np.float16), np.float16(np.inf)).astype(np.float32)
        elif dtype == "bf16":
            up = ((s.view(np.uint32) >> 16) + 1).astype(np.uint32) << np.uint32(16)
            up = up.view(np.float32)
        else:
            up = np.nextafter(s, np.float32(np.inf))
        s = np.where(low, np.minimum(up, SCALE_LIMITS[dtype][0]), s)
    return s.astype(np.float32)


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """Integer codes plus the parameters a receiver needs to rebuild a tensor.

    ``codes``: int32 array of ``shape`` (values in ``[spec.qmin, spec.qmax]``).
    ``params``: the scheme's parameters, e.g. affine ``{"scale": float32 array of scale_shape}``
    plus ``"zero_point"`` (int32, same shape) when asymmetric; codebook ``{"levels": (k,)}``.
    ``spec``: the wire spec, or a sender config with ``.wire(shape)``.
    """

    codes: np.ndarray
    params: dict[str, np.ndarray]
    spec: Any
    shape: tuple[int, ...] = field(default=())

    def dequantize(self) -> np.ndarray:
        """The one definition of what a receiver reconstructs (float32), by the spec's scheme."""
        from .schemes import scheme_of

        return scheme_of(self.spec).dequantize(self)

    @property
    def numel(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class FloatTensor:
    """A tensor kept in float and sent as ``dtype`` (fp32, fp16 or bf16)."""

    values: np.ndarray
    dtype: str = "fp32"

    def __post_init__(self) -> None:
        if self.dtype not in FLOAT_DTYPES:
            raise SpecError(
                f"float dtype must be one of {', '.join(FLOAT_DTYPES)}, got {self.dtype!r}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def dequantize(self) -> np.ndarray:
        """The float32 values the receiver gets (after rounding to ``dtype``)."""
        return round_float(self.values, self.dtype)


RAW_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")


@dataclass(frozen=True, eq=False)
class RawTensor:
    """A non-float tensor (e.g. a BatchNorm counter) passed through exactly."""

    values: np.ndarray

    def __post_init__(self) -> None:
        if str(self.values.dtype) not in RAW_DTYPES:
            raise SpecError(f"unsupported dtype {self.values.dtype} (raw tensors: {RAW_DTYPES})")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def dequantize(self) -> np.ndarray:
        return self.values.copy()


@dataclass(frozen=True, eq=False)
class DecodedTensor:
    """A record already rebuilt into its float32 values (``read_stream(..., dequantized=True)``,
    for callers that only want the values): ``dequantize()`` returns them, no copy."""

    values: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def dequantize(self) -> np.ndarray:
        return self.values


def round_float(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round float values to fp32/fp16/bf16 precision (round to nearest even); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "fp16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        bits = x.view(np.uint32).astype(np.uint64)
        nan = np.isnan(x)
        r = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)
        return np.where(nan, x, r)
    return x.copy()


_axis = check_axis  # former private name, still imported by nnshare.qat

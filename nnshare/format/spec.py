"""QuantSpec and QuantizedTensor: what a tensor's quantization is and what a receiver rebuilds.

These types are numpy-only: the receiver (``nnshare.format``) needs them without torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SpecError

#: Names of the registered schemes; ``schemes.register_scheme`` adds to it.
SCHEMES: set[str] = {"affine"}
GRANULARITIES = ("tensor", "channel", "group")
RANGE_METHODS = ("minmax", "mse", "percentile")
ROUNDINGS = ("nearest", "stochastic")
FLOAT_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class QuantSpec:
    """How one tensor is quantized.

    Uniform affine: ``x_int = clamp(round(x / s) + z)``, ``x_hat = s * (x_int - z)``.

    - ``bits``: code width in bits, 1..16.
    - ``symmetric``: signed codes and z = 0 (no zero point sent); otherwise unsigned codes in
      ``[0, 2**bits - 1]`` with a b-bit zero point per scale.
    - ``restricted``: symmetric codes in ``[-(2**(b-1) - 1), 2**(b-1) - 1]`` (needs bits >= 2).
    - ``granularity``: one scale per ``"tensor"``, per ``"channel"`` (slices along ``axis``) or per
      ``"group"`` of ``group_size`` consecutive elements along ``axis`` (the last group of a row
      may be shorter).
    - ``range_method``: ``"minmax"``, ``"mse"`` (grid search of the clipping range minimising the
      squared error) or ``"percentile"`` (clip at ``percentile`` % of |x| or of each tail).
    - ``rounding``: ``"nearest"`` (half to even) or ``"stochastic"`` (unbiased, seeded by ``seed``).
    - ``scale_dtype``: precision the scales are sent in; quantization uses the scale already
      rounded to it, so sender and receiver agree bit-exactly.
    """

    scheme: str = "affine"
    bits: int = 8
    symmetric: bool = True
    restricted: bool = False
    granularity: str = "tensor"
    axis: int = 0
    group_size: int = 0
    range_method: str = "minmax"
    percentile: float = 99.99
    rounding: str = "nearest"
    seed: int = 0
    scale_dtype: str = "fp32"
    channel_bits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise SpecError(f"unknown scheme {self.scheme!r}; known: {', '.join(sorted(SCHEMES))}")
        for name in ("bits", "axis", "group_size", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{name} must be an integer, got {v!r}")
        for name in ("symmetric", "restricted"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise SpecError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.percentile, bool) or not isinstance(self.percentile, int | float):
            raise SpecError(f"percentile must be a number, got {self.percentile!r}")
        if not 1 <= int(self.bits) <= 16:
            raise SpecError(f"bits must be in 1..16, got {self.bits}")
        if self.symmetric and self.bits == 1:
            raise SpecError(
                "symmetric 1-bit codes are {-1, 0} and lose every positive value; "
                "use symmetric=False for 1 bit"
            )
        if self.restricted and not self.symmetric:
            raise SpecError("restricted range applies to symmetric quantization only")
        if self.restricted and self.bits < 2:
            raise SpecError("restricted symmetric range needs bits >= 2")
        if self.granularity not in GRANULARITIES:
            raise SpecError(
                f"granularity must be one of {', '.join(GRANULARITIES)}, got {self.granularity!r}"
            )
        if self.granularity == "group" and self.group_size < 1:
            raise SpecError("granularity 'group' needs group_size >= 1")
        if self.range_method not in RANGE_METHODS:
            raise SpecError(
                f"range_method must be one of {', '.join(RANGE_METHODS)}, got {self.range_method!r}"
            )
        if not 0.0 < self.percentile <= 100.0:
            raise SpecError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.rounding not in ROUNDINGS:
            raise SpecError(
                f"rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}"
            )
        if self.channel_bits:
            ints = (isinstance(b, int | np.integer) and not isinstance(b, bool) for b in self.channel_bits)
            if not all(ints):
                raise SpecError("channel_bits must be a sequence of integers")
            object.__setattr__(self, "channel_bits", tuple(int(b) for b in self.channel_bits))
            if self.granularity != "channel":
                raise SpecError(
                    "channel_bits (a bit width per channel) needs granularity 'channel'"
                )
            if not all(1 <= b <= 16 for b in self.channel_bits):
                raise SpecError("every entry of channel_bits must be in 1..16")
            if self.bits != max(self.channel_bits):
                raise SpecError("bits must equal max(channel_bits) when channel_bits is given")
            if self.symmetric and min(self.channel_bits) < 2:
                raise SpecError("symmetric per-channel widths must be >= 2 (1 bit: symmetric=False)")
        if self.scale_dtype not in FLOAT_DTYPES:
            raise SpecError(
                f"scale_dtype must be one of {', '.join(FLOAT_DTYPES)}, got {self.scale_dtype!r}"
            )

    @property
    def qmin(self) -> int:
        """Smallest code."""
        if not self.symmetric:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.restricted else 0)

    @property
    def qmax(self) -> int:
        """Largest code."""
        if not self.symmetric:
            return 2**self.bits - 1
        return 2 ** (self.bits - 1) - 1

    def row_bits(self, rows: int) -> np.ndarray:
        """Bit width of each of ``rows`` scale rows (int64 array)."""
        if self.channel_bits:
            if len(self.channel_bits) != rows:
                raise SpecError(
                    f"channel_bits has {len(self.channel_bits)} entries, the tensor has {rows} channels"
                )
            return np.asarray(self.channel_bits, np.int64)
        return np.full(rows, self.bits, np.int64)

    def row_qrange(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest code of each scale row (int64 arrays)."""
        b = self.row_bits(rows)
        if not self.symmetric:
            return np.zeros(rows, np.int64), (1 << b) - 1
        qmin = -(1 << (b - 1)) + (1 if self.restricted else 0)
        return qmin, (1 << (b - 1)) - 1

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (every field)."""
        d = dataclasses.asdict(self)
        d["channel_bits"] = list(self.channel_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(d, dict):
            raise SpecError(f"a QuantSpec must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise SpecError(f"unknown QuantSpec field(s): {', '.join(sorted(bad))}")
        d = dict(d)
        if "channel_bits" in d:
            if not isinstance(d["channel_bits"], list | tuple):
                raise SpecError("channel_bits must be a list of integers")
            d["channel_bits"] = tuple(d["channel_bits"])
        return cls(**d)


def n_scales(shape: tuple[int, ...], spec: QuantSpec) -> int:
    """Number of (scale, zero point) pairs the spec needs for a tensor of ``shape``."""
    return int(np.prod(scale_shape(shape, spec), dtype=np.int64))


def _axis(shape: tuple[int, ...], axis: int) -> int:
    nd = len(shape)
    if nd == 0:
        raise SpecError("per-channel or per-group quantization needs a tensor with >= 1 dimension")
    if not -nd <= axis < nd:
        raise SpecError(f"axis {axis} out of range for a tensor of shape {tuple(shape)}")
    return axis % nd


def scale_shape(shape: tuple[int, ...], spec: QuantSpec) -> tuple[int, ...]:
    """Shape of the scale array: () per tensor, (C,) per channel, (rows, n_groups) per group."""
    if spec.granularity == "tensor":
        return ()
    ax = _axis(shape, spec.axis)
    if spec.granularity == "channel":
        return (int(shape[ax]),)
    length = int(shape[ax])
    rows = int(np.prod(shape, dtype=np.int64)) // length if length else 0
    return (rows, math.ceil(length / spec.group_size))


def group_len(length: int, spec: QuantSpec) -> int:
    """Effective group length along the axis: the group size, at most the axis length."""
    return max(1, min(spec.group_size, length))


def to_blocks(x: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """View ``x`` as rows that share one scale each.

    Returns a 2-D array: per tensor (1, N); per channel (C, N/C) with the channel axis first;
    per group (rows * n_groups, g) with g = min(group_size, axis length) and the ragged last group
    padded by edge values (padding is dropped again by :func:`from_blocks`).
    """
    if spec.granularity == "tensor":
        return x.reshape(1, -1)
    ax = _axis(x.shape, spec.axis)
    n = int(x.size)
    if spec.granularity == "channel":
        c = int(x.shape[ax])
        return np.moveaxis(x, ax, 0).reshape(c, n // c if c else 0)
    moved = np.moveaxis(x, ax, -1)
    length = int(moved.shape[-1])
    rows = moved.reshape(n // length if length else int(np.prod(moved.shape[:-1])), length)
    g = group_len(length, spec)
    ng = math.ceil(length / g) if length else 0
    pad = ng * g - length
    if pad:
        rows = np.pad(rows, ((0, 0), (0, pad)), mode="edge")
    return rows.reshape(rows.shape[0] * ng, g)


def from_blocks(blocks: np.ndarray, shape: tuple[int, ...], spec: QuantSpec) -> np.ndarray:
    """Inverse of :func:`to_blocks` (drops group padding)."""
    shape = tuple(int(s) for s in shape)
    if spec.granularity == "tensor":
        return blocks.reshape(shape)
    ax = _axis(shape, spec.axis)
    if spec.granularity == "channel":
        moved_shape = (shape[ax],) + shape[:ax] + shape[ax + 1 :]
        return np.moveaxis(blocks.reshape(moved_shape), 0, ax)
    length = shape[ax]
    moved_shape = shape[:ax] + shape[ax + 1 :] + (length,)
    rows = int(np.prod(moved_shape[:-1], dtype=np.int64))
    g = group_len(length, spec)
    ng = math.ceil(length / g) if length else 0
    flat = blocks.reshape(rows, ng * g)[:, :length]
    return np.moveaxis(flat.reshape(moved_shape), -1, ax)


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
    ``params``: ``{"scale": float32 array of scale_shape}`` plus ``"zero_point"`` (int32, same
    shape) when asymmetric.
    """

    codes: np.ndarray
    params: dict[str, np.ndarray]
    spec: QuantSpec
    shape: tuple[int, ...] = field(default=())

    def dequantize(self) -> np.ndarray:
        """The one definition of what a receiver reconstructs: float32 ``s * (x_int - z)``."""
        from .schemes import get_scheme

        return get_scheme(self.spec.scheme).dequantize(self)

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

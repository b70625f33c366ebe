"""Minifloat quantizers (sender side of the ``minifloat`` scheme): scaled FP8 / FP6 / FP4, the
OCP MX block formats and NVFP4.

- ``scaling="float"``: ``x_hat = s * fp(x / s)``, one float scale per tensor or per channel;
  ``s = amax / fp_max`` (absmax) or the MSE-best of a grid of clipping ratios (mse).
- ``scaling="mx"`` (OCP Microscaling v1.0): blocks of 32 along ``axis`` share an E8M0 scale
  ``X = 2^(floor(log2 amax) - emax_elem)``; elements are cast (saturating) to E4M3 / E5M2
  (MXFP8), E3M2 / E2M3 (MXFP6) or E2M1 (MXFP4).
- ``scaling="nv"`` (NVFP4): blocks of 16 E2M1 elements with an E4M3 block scale
  ``e4m3(amax_b / (6 s_t))`` and one fp32 tensor scale ``s_t = amax / (6 * 448)``.

Every cast here saturates (values past the format's range clamp to ±max). The receiver half is
:mod:`nnshare.format.schemes.minifloat` (element formats: :mod:`nnshare.format.floats`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..format import grain
from ..format.errors import SpecError
from ..format.floats import E8M0_BIAS, FORMATS, cast, decode, dequantize_scaled, e8m0_exponents
from ..format.schemes.minifloat import AT_BITS, FORMAT_IDS, SCALINGS, MinifloatWire
from ..format.spec import FLOAT_DTYPES, QuantizedTensor, round_scale
from .affine import as_float_array

SCALE_METHODS = ("absmax", "mse")
#: OCP MX v1.0 concrete formats -> element format.
MX_FORMATS = {
    "mxfp8_e4m3": "e4m3",
    "mxfp8_e5m2": "e5m2",
    "mxfp6_e3m2": "e3m2",
    "mxfp6_e2m3": "e2m3",
    "mxfp4": "e2m1",
}
E4M3_MAX, E2M1_MAX = 448.0, 6.0


@dataclass(frozen=True)
class MinifloatConfig:
    """How one tensor is quantized to a minifloat format.

    On the wire: ``fmt`` (e4m3, e5m2, e3m2, e2m3, e2m1), ``scaling`` ("float", "mx", "nv"), the
    granularity (``granularity`` "tensor" / "channel" with ``axis`` for float scales; blocks of
    ``block`` elements along ``axis`` for mx / nv, 0 = the standard 32 / 16) and ``scale_dtype``
    of float scales. Sender only: ``scale_method`` ("absmax" or "mse", float scales only).
    """

    scheme: str = "minifloat"
    fmt: str = "e4m3"
    scaling: str = "float"
    granularity: str = "tensor"
    axis: int = 0
    block: int = 0
    scale_method: str = "absmax"
    scale_dtype: str = "fp32"

    def __post_init__(self) -> None:
        if self.scheme != "minifloat":
            raise SpecError(f"MinifloatConfig is the minifloat scheme's config, got {self.scheme!r}")
        for name in ("axis", "block"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{name} must be an integer, got {v!r}")
        if self.block < 0:
            raise SpecError(f"block must be >= 0 (0: the format's standard block), got {self.block}")
        if self.scale_method not in SCALE_METHODS:
            raise SpecError(
                f"scale_method must be one of {', '.join(SCALE_METHODS)}, got {self.scale_method!r}"
            )
        if self.scaling != "float" and self.granularity != "group":
            object.__setattr__(self, "granularity", "group")
        if self.scaling == "float" and self.block:
            raise SpecError("block applies to scaling 'mx' / 'nv' only")
        size = self.block or (32 if self.scaling == "mx" else 16)
        g = grain.make(self.granularity, self.axis, size if self.granularity == "group" else 0)
        object.__setattr__(self, "_wire", MinifloatWire(self.fmt, self.scaling, g, self.scale_dtype))

    @classmethod
    def mx(cls, name: str, axis: int = -1) -> MinifloatConfig:
        """The OCP concrete MX format ``name`` (mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4)."""
        if name not in MX_FORMATS:
            raise SpecError(f"unknown MX format {name!r}; known: {', '.join(MX_FORMATS)}")
        return cls(fmt=MX_FORMATS[name], scaling="mx", axis=axis)

    @classmethod
    def nvfp4(cls, axis: int = -1) -> MinifloatConfig:
        """NVFP4: E2M1 in blocks of 16 along ``axis``, E4M3 block scales, an fp32 tensor scale."""
        return cls(fmt="e2m1", scaling="nv", axis=axis)

    def wire(self, shape: tuple[int, ...] | None = None) -> MinifloatWire:
        """What a record carries for this config (axis made non-negative for ``shape``)."""
        return self._wire if shape is None else self._wire.for_shape(tuple(shape))

    @property
    def bits(self) -> int:
        """Bits per element code."""
        return FORMATS[self.fmt].bits

    def at_bits(self, bits: int) -> MinifloatConfig:
        """This config with the element format of ``bits`` bits (4: e2m1, 6: e2m3, 8: e4m3)."""
        if int(bits) not in AT_BITS:
            raise SpecError(f"minifloat has element formats of 4, 6 and 8 bits, not {bits}")
        return dataclasses.replace(self, fmt=AT_BITS[int(bits)])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MinifloatConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise SpecError(f"unknown MinifloatConfig field(s): {', '.join(sorted(bad))}")
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        return {
            "fmt": FORMAT_IDS,
            "scaling": SCALINGS,
            "granularity": ("tensor", "channel"),
            "axis": (0, -1),
            "block": (0, 0, 3, 32),
            "scale_method": SCALE_METHODS,
            "scale_dtype": FLOAT_DTYPES,
        }


# ----------------------------------------------------------------------------- the math


def scaled_codes(rows: np.ndarray, scale: np.ndarray, fmt: str) -> np.ndarray:
    """uint8 codes of ``rows / scale`` (one float32 scale per row), saturating."""
    y = rows.astype(np.float64) / np.asarray(scale, np.float64).reshape(-1, 1)
    return cast(y, FORMATS[fmt], saturate=True)


def choose_scales(rows: np.ndarray, fmt: str, method: str, scale_dtype: str, n_grid: int = 24) -> np.ndarray:
    """float32 scale per row (in ``scale_dtype`` precision): absmax / fp_max, or the ratio in
    [0.2, 1] x absmax (log grid, plus 1) with the least squared error (mse)."""
    f = FORMATS[fmt]
    amax = np.abs(rows).max(axis=1) if rows.shape[1] else np.zeros(rows.shape[0], np.float32)
    base = np.where(amax > 0, amax.astype(np.float64) / f.max, 1.0)
    best = _fit_scale(base, scale_dtype, f.max)
    if method == "absmax" or rows.shape[1] == 0:
        return best
    best_err = np.full(rows.shape[0], np.inf)
    for alpha in np.concatenate([[1.0], np.geomspace(1.0, 0.2, n_grid)[1:]]):
        s = _fit_scale(base * alpha, scale_dtype, f.max)
        xh = dequantize_scaled(scaled_codes(rows, s, fmt), s, f)
        err = ((xh - rows).astype(np.float64) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best = np.where(better, s, best)
    return best.astype(np.float32)


def _fit_scale(s: np.ndarray, dtype: str, fmax: float) -> np.ndarray:
    """Scales rounded to their dtype, small enough that s * fp_max stays finite in float32."""
    return round_scale(np.minimum(s, np.finfo(np.float32).max / fmax / 2), dtype)


def mx_blocks(blocks: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 element codes, uint8 E8M0 codes) of MX blocks (one block per row)."""
    f = FORMATS[fmt]
    shared = e8m0_exponents(np.abs(blocks).max(axis=1), f.emax)
    y = blocks.astype(np.float64) * np.ldexp(1.0, -shared)[:, None]
    return cast(y, f, saturate=True), (shared + E8M0_BIAS).astype(np.uint8)


def nvfp4_blocks(blocks: np.ndarray, amax: float) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """(uint8 E2M1 codes, uint8 E4M3 block scales, fp32 tensor scale) of NVFP4 blocks."""
    ts = np.float32(amax / (E2M1_MAX * E4M3_MAX)) if amax > 0 else np.float32(1.0)
    if not np.isfinite(ts) or ts <= 0:  # amax so small the division underflows float32
        ts = np.float32(np.finfo(np.float32).tiny)
    amax_b = np.abs(blocks).max(axis=1).astype(np.float64) if blocks.shape[1] else np.zeros(blocks.shape[0])
    bcodes = cast(amax_b / (E2M1_MAX * float(ts)), FORMATS["e4m3"], saturate=True)
    bscale = decode(bcodes, FORMATS["e4m3"]).astype(np.float64) * float(ts)
    safe = np.where(bscale > 0, bscale, 1.0)
    codes = cast(blocks.astype(np.float64) / safe[:, None], FORMATS["e2m1"], saturate=True)
    return np.where((bscale > 0)[:, None], codes, 0).astype(np.uint8), bcodes, ts


def quantize(x, config: MinifloatConfig) -> QuantizedTensor:
    """Quantize ``x`` (numpy array or torch tensor) to ``config``'s minifloat format."""
    arr = as_float_array(x)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    shape = tuple(int(s) for s in arr.shape)
    w = config.wire(shape)
    blocks = grain.to_blocks(arr, w)
    sshape = grain.scale_shape(shape, w)
    params: dict[str, np.ndarray] = {}
    if w.scaling == "float":
        scale = choose_scales(blocks, w.fmt, config.scale_method, w.scale_dtype)
        codes = scaled_codes(blocks, scale, w.fmt)
    elif w.scaling == "mx":
        codes, scale = mx_blocks(blocks, w.fmt)
    else:
        codes, scale, ts = nvfp4_blocks(blocks, float(np.abs(arr).max()) if arr.size else 0.0)
        params["tensor_scale"] = np.asarray(ts, np.float32)
    params["scale"] = scale.reshape(sshape)
    codes = np.ascontiguousarray(grain.from_blocks(codes, shape, w)).astype(np.int32)
    return QuantizedTensor(codes=codes, params=params, spec=w, shape=shape)

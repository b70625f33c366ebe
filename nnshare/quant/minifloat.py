"""Minifloat quantizers (sender side): scaled FP8 / FP6 / FP4, the OCP MX block formats, NVFP4.

- Scaled minifloat: ``x_hat = s * fp(x / s)``, one float scale per tensor or per channel;
  ``s = amax / fp_max`` (absmax) or the MSE-best of a grid of clipping ratios (mse).
- MX (OCP Microscaling v1.0): blocks of 32 along ``axis`` share an E8M0 scale
  ``X = 2^(floor(log2 amax) - emax_elem)``; elements are cast (saturating) to E4M3 / E5M2
  (MXFP8), E3M2 / E2M3 (MXFP6) or E2M1 (MXFP4).
- NVFP4: blocks of 16 elements in E2M1 with an E4M3 block scale and one fp32 tensor scale
  ``s_t = amax / (6 * 448)``; block scale ``e4m3(amax_b / (6 s_t))``.

Every cast here saturates (values past the format's range clamp to ±max). Pure numpy; the
receiver half (decoding) is :mod:`nnshare.format.floats`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError
from ..format.floats import (
    E8M0_BIAS,
    FORMATS,
    cast,
    decode,
    dequantize_mx,
    dequantize_nvfp4,
    dequantize_scaled,
    e8m0_exponents,
    from_row_blocks,
    get_format,
    to_row_blocks,
)
from ..format.spec import FLOAT_DTYPES, round_scale

SCALE_METHODS = ("absmax", "mse")

#: OCP MX v1.0 concrete formats -> element format.
MX_FORMATS = {
    "mxfp8_e4m3": "e4m3",
    "mxfp8_e5m2": "e5m2",
    "mxfp6_e3m2": "e3m2",
    "mxfp6_e2m3": "e2m3",
    "mxfp4": "e2m1",
}


def _as_float(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    arr = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    return arr


def _check_int(name: str, v, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise SpecError(f"{name} must be an integer >= {lo}, got {v!r}")


# ----------------------------------------------------------------------------- scaled minifloat


@dataclass(frozen=True)
class MinifloatConfig:
    """Scaled minifloat: element format ``fmt`` (e4m3, e5m2, e3m2, e2m3, e2m1), one scale per
    ``"tensor"`` or per ``"channel"`` (slices along ``axis``), chosen by ``scale_method`` and sent
    in ``scale_dtype`` (fp32 / fp16 / bf16)."""

    fmt: str = "e4m3"
    granularity: str = "tensor"
    axis: int = 0
    scale_method: str = "absmax"
    scale_dtype: str = "fp32"

    def __post_init__(self) -> None:
        get_format(self.fmt)
        if self.granularity not in ("tensor", "channel"):
            raise SpecError(f"minifloat granularity must be 'tensor' or 'channel', got {self.granularity!r}")
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise SpecError(f"axis must be an integer, got {self.axis!r}")
        if self.scale_method not in SCALE_METHODS:
            raise SpecError(
                f"scale_method must be one of {', '.join(SCALE_METHODS)}, got {self.scale_method!r}"
            )
        if self.scale_dtype not in FLOAT_DTYPES:
            raise SpecError(f"scale_dtype must be one of {', '.join(FLOAT_DTYPES)}, got {self.scale_dtype!r}")

    @property
    def bits(self) -> int:
        """Bits per element."""
        return FORMATS[self.fmt].bits


def _rows(x: np.ndarray, cfg: MinifloatConfig) -> np.ndarray:
    if cfg.granularity == "tensor":
        return x.reshape(1, -1)
    if x.ndim == 0 or not -x.ndim <= cfg.axis < x.ndim:
        raise SpecError(f"axis {cfg.axis} out of range for a tensor of shape {x.shape}")
    return np.moveaxis(x, cfg.axis, 0).reshape(x.shape[cfg.axis], -1)


def _unrows(rows: np.ndarray, shape: tuple[int, ...], cfg: MinifloatConfig) -> np.ndarray:
    if cfg.granularity == "tensor":
        return rows.reshape(shape)
    ax = cfg.axis % len(shape)
    moved = (shape[ax],) + shape[:ax] + shape[ax + 1 :]
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), 0, ax))


def scaled_codes(rows: np.ndarray, scale: np.ndarray, fmt_name: str) -> np.ndarray:
    """uint8 codes of ``rows / scale`` (one float32 scale per row), saturating."""
    y = rows.astype(np.float64) / np.asarray(scale, np.float64).reshape(-1, 1)
    return cast(y, FORMATS[fmt_name], saturate=True)


def choose_scales(rows: np.ndarray, cfg: MinifloatConfig, n_grid: int = 48) -> np.ndarray:
    """float32 scale per row (in ``cfg.scale_dtype`` precision): absmax / fp_max, or the ratio in
    [0.2, 1] x absmax (log grid, plus 1) with the least squared error (mse)."""
    fmt = FORMATS[cfg.fmt]
    amax = np.abs(rows).max(axis=1) if rows.shape[1] else np.zeros(rows.shape[0], np.float32)
    base = np.where(amax > 0, amax.astype(np.float64) / fmt.max, 1.0)
    best = round_scale(base, cfg.scale_dtype)
    if cfg.scale_method == "absmax" or rows.shape[1] == 0:
        return best
    best_err = np.full(rows.shape[0], np.inf)
    for alpha in np.concatenate([[1.0], np.geomspace(1.0, 0.2, n_grid)[1:]]):
        s = round_scale(base * alpha, cfg.scale_dtype)
        xh = dequantize_scaled(scaled_codes(rows, s, cfg.fmt), s, fmt)
        err = ((xh - rows).astype(np.float64) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best = np.where(better, s, best)
    return best.astype(np.float32)


def quantize_minifloat(x, cfg: MinifloatConfig) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(uint8 codes of x's shape, {"scale": float32 array, () per tensor or (C,) per channel})."""
    arr = _as_float(x)
    rows = _rows(arr, cfg)
    scale = choose_scales(rows, cfg)
    codes = _unrows(scaled_codes(rows, scale, cfg.fmt), arr.shape, cfg)
    sshape = () if cfg.granularity == "tensor" else (rows.shape[0],)
    return codes, {"scale": scale.reshape(sshape)}


def dequantize_minifloat(codes: np.ndarray, params: dict, cfg: MinifloatConfig) -> np.ndarray:
    """float32 reconstruction of :func:`quantize_minifloat`'s output."""
    codes = np.asarray(codes)
    rows = _rows(codes, cfg)
    out = dequantize_scaled(rows, params["scale"], FORMATS[cfg.fmt])
    return _unrows(out, codes.shape, cfg)


# ----------------------------------------------------------------------------- MX block formats


@dataclass(frozen=True)
class MXConfig:
    """OCP MX: element format ``fmt`` in blocks of ``block`` (32 in MX v1.0) consecutive elements
    along ``axis`` (the reduction axis: the last one of a weight matrix), one E8M0 scale each."""

    fmt: str = "e2m1"
    block: int = 32
    axis: int = -1

    def __post_init__(self) -> None:
        get_format(self.fmt)
        _check_int("block", self.block, 1)
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise SpecError(f"axis must be an integer, got {self.axis!r}")

    @classmethod
    def named(cls, name: str, axis: int = -1) -> MXConfig:
        """The OCP concrete format ``name`` (mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4)."""
        if name not in MX_FORMATS:
            raise SpecError(f"unknown MX format {name!r}; known: {', '.join(MX_FORMATS)}")
        return cls(fmt=MX_FORMATS[name], axis=axis)


def quantize_mx(x, cfg: MXConfig) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(uint8 element codes of x's shape, {"scale": uint8 E8M0 codes, one per block}).

    Blocks run along ``cfg.axis``; a row whose length is not a multiple of the block size ends
    in a shorter block. Scale array shape: (rows, ceil(L / block)) with the axis moved last.
    """
    arr = _as_float(x)
    fmt = FORMATS[cfg.fmt]
    blocks, moved = to_row_blocks(arr, cfg.axis, cfg.block)
    shared = e8m0_exponents(np.abs(blocks).max(axis=1), fmt.emax)
    y = blocks.astype(np.float64) * np.ldexp(1.0, -shared)[:, None]
    codes = cast(y, fmt, saturate=True)
    nb = -(-moved[-1] // cfg.block)
    scale = (shared + E8M0_BIAS).astype(np.uint8).reshape(-1, nb)
    return from_row_blocks(codes, arr.shape, cfg.axis), {"scale": scale}


def dequantize_mx_tensor(codes: np.ndarray, params: dict, cfg: MXConfig) -> np.ndarray:
    """float32 reconstruction of :func:`quantize_mx`'s output."""
    codes = np.asarray(codes)
    blocks, _ = to_row_blocks(codes, cfg.axis, cfg.block)
    out = dequantize_mx(blocks, params["scale"].reshape(-1), FORMATS[cfg.fmt])
    return from_row_blocks(out, codes.shape, cfg.axis)


# ----------------------------------------------------------------------------- NVFP4

E4M3_MAX, E2M1_MAX = 448.0, 6.0


@dataclass(frozen=True)
class NVFP4Config:
    """NVFP4: E2M1 elements, blocks of ``block`` (16) along ``axis``, E4M3 block scales, one fp32
    tensor scale."""

    block: int = 16
    axis: int = -1

    def __post_init__(self) -> None:
        _check_int("block", self.block, 1)
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise SpecError(f"axis must be an integer, got {self.axis!r}")


def quantize_nvfp4(x, cfg: NVFP4Config) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(uint8 E2M1 codes, {"scale": uint8 E4M3 block scales (rows, n_blocks), "tensor_scale": fp32 ()})."""
    arr = _as_float(x)
    blocks, moved = to_row_blocks(arr, cfg.axis, cfg.block)
    amax_t = float(np.abs(arr).max()) if arr.size else 0.0
    ts = np.float32(amax_t / (E2M1_MAX * E4M3_MAX)) if amax_t > 0 else np.float32(1.0)
    if not np.isfinite(ts) or ts <= 0:  # amax below the float32 range of the division
        ts = np.float32(np.finfo(np.float32).tiny)
    amax_b = np.abs(blocks).max(axis=1).astype(np.float64)
    bcodes = cast(amax_b / (E2M1_MAX * float(ts)), FORMATS["e4m3"], saturate=True)
    bscale = decode(bcodes, FORMATS["e4m3"]).astype(np.float64) * float(ts)
    safe = np.where(bscale > 0, bscale, 1.0)
    codes = cast(blocks.astype(np.float64) / safe[:, None], FORMATS["e2m1"], saturate=True)
    codes = np.where((bscale > 0)[:, None], codes, 0).astype(np.uint8)
    nb = -(-moved[-1] // cfg.block)
    params = {"scale": bcodes.reshape(-1, nb), "tensor_scale": np.asarray(ts, np.float32)}
    return from_row_blocks(codes, arr.shape, cfg.axis), params


def dequantize_nvfp4_tensor(codes: np.ndarray, params: dict, cfg: NVFP4Config) -> np.ndarray:
    """float32 reconstruction of :func:`quantize_nvfp4`'s output."""
    codes = np.asarray(codes)
    blocks, _ = to_row_blocks(codes, cfg.axis, cfg.block)
    out = dequantize_nvfp4(blocks, params["scale"].reshape(-1), float(params["tensor_scale"]))
    return from_row_blocks(out, codes.shape, cfg.axis)


def element_bits(cfg: MinifloatConfig | MXConfig | NVFP4Config, shape: tuple[int, ...]) -> tuple[int, int]:
    """(code bits, side-info bits) for a tensor of ``shape``: codes are packed at the element
    width; side info is the scales (32 / 16 bits each, 8 per MX or NVFP4 block, + 32 for NVFP4)."""
    n = int(np.prod(shape, dtype=np.int64))
    if isinstance(cfg, MinifloatConfig):
        rows = 1 if cfg.granularity == "tensor" else int(shape[cfg.axis])
        return n * FORMATS[cfg.fmt].bits, rows * (32 if cfg.scale_dtype == "fp32" else 16)
    full = shape if shape else (1,)
    length = int(full[cfg.axis % len(full)])
    nblocks = (n // length if length else 0) * -(-length // cfg.block)
    if isinstance(cfg, MXConfig):
        return n * FORMATS[cfg.fmt].bits, 8 * nblocks
    return 4 * n, 8 * nblocks + 32

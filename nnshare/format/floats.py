"""Minifloat element formats (OCP FP8 / MX v1.0): definitions, bit-exact casts, decoding.

Numpy only: the receiver decodes codes with :func:`decode`; the sender casts with :func:`cast`.

A code is ``sign | exponent field (E bits) | mantissa (M bits)``. With bias B, a normal number is
``(-1)^s 2^(e - B) (1 + m / 2^M)`` and a subnormal (e = 0) is ``(-1)^s 2^(1 - B) m / 2^M``.
Specials: ``"ieee"`` reserves the top exponent field for infinities (m = 0) and NaN (m != 0);
``"fn"`` (finite, NaN) has no infinities and one NaN pattern, all exponent and mantissa bits set;
``"none"`` has neither (every code is a finite number; the MX FP6 / FP4 element types).

Casts round to nearest, ties to even (the mantissa's last bit). Saturating casts map anything
beyond the largest finite value (infinities included) to ±max; non-saturating casts map overflow
to ±inf (``ieee``) or NaN (``fn``). ``none`` formats only have saturating casts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from .errors import FormatError, SpecError


@dataclass(frozen=True)
class FloatFormat:
    """A sign-exponent-mantissa format with ``ebits`` exponent and ``mbits`` mantissa bits."""

    name: str
    ebits: int
    mbits: int
    bias: int
    specials: str  # "ieee" | "fn" | "none"

    @property
    def bits(self) -> int:
        """Code width in bits (1 sign bit + ebits + mbits)."""
        return 1 + self.ebits + self.mbits

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal (also the subnormals' exponent)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        top = 2**self.ebits - 1 - (1 if self.specials == "ieee" else 0)
        return top - self.bias

    @property
    def max_mantissa(self) -> int:
        """Mantissa field of the largest finite value."""
        return 2**self.mbits - 1 - (1 if self.specials == "fn" else 0)

    @property
    def max(self) -> float:
        """Largest finite value (448 for E4M3, 57344 for E5M2, 28 / 7.5 / 6 for E3M2 / E2M3 / E2M1)."""
        return float(2.0**self.emax * (1 + self.max_mantissa / 2**self.mbits))

    @property
    def max_code(self) -> int:
        """Code (sign 0) of the largest finite value."""
        return ((self.emax + self.bias) << self.mbits) | self.max_mantissa


#: The OCP formats: FP8 (OCP 8-bit floating point v1.0) and the MX v1.0 FP6 / FP4 element types.
FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("e4m3", 4, 3, 7, "fn"),
        FloatFormat("e5m2", 5, 2, 15, "ieee"),
        FloatFormat("e3m2", 3, 2, 3, "none"),
        FloatFormat("e2m3", 2, 3, 1, "none"),
        FloatFormat("e2m1", 2, 1, 1, "none"),
    )
}


def get_format(name: str) -> FloatFormat:
    """Look an element format up by name (e4m3, e5m2, e3m2, e2m3, e2m1)."""
    try:
        return FORMATS[name]
    except KeyError:
        raise SpecError(f"unknown float format {name!r}; known: {', '.join(FORMATS)}") from None


@cache
def _table(name: str) -> np.ndarray:
    f = FORMATS[name]
    c = np.arange(2**f.bits, dtype=np.int64)
    sign = np.where(c >> (f.ebits + f.mbits) & 1, -1.0, 1.0)
    e = c >> f.mbits & (2**f.ebits - 1)
    m = c & (2**f.mbits - 1)
    frac = m / 2.0**f.mbits
    mag = np.where(e == 0, np.ldexp(frac, f.emin), np.ldexp(1.0 + frac, e - f.bias))
    top = e == 2**f.ebits - 1
    if f.specials == "ieee":
        mag = np.where(top & (m == 0), np.inf, np.where(top, np.nan, mag))
    elif f.specials == "fn":
        mag = np.where(top & (m == 2**f.mbits - 1), np.nan, mag)
    out = (sign * mag).astype(np.float32)
    out.setflags(write=False)
    return out


def value_table(fmt: FloatFormat) -> np.ndarray:
    """float32 value of every code 0 .. 2^bits - 1 (read-only; NaN / inf where the format has them)."""
    return _table(fmt.name)


def decode(codes: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Codes (any integer dtype, values < 2^bits) -> float32 values of the same shape."""
    return _table(fmt.name)[np.asarray(codes, dtype=np.int64)]


def cast(x: np.ndarray, fmt: FloatFormat, saturate: bool = True) -> np.ndarray:
    """Round float values to ``fmt`` (nearest, ties to even); returns uint8 codes of x's shape.

    NaN becomes the format's NaN (sign kept); a format without NaN refuses it (SpecError).
    """
    if not saturate and fmt.specials == "none":
        raise SpecError(f"{fmt.name} has no infinity or NaN: only saturating casts exist")
    with np.errstate(invalid="ignore"):  # signalling NaN payloads
        x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    if fmt.specials == "none" and np.any(nan):
        raise SpecError(f"{fmt.name} cannot represent NaN")
    neg = np.signbit(x)
    a = np.where(nan, 0.0, np.abs(x))
    big = a > fmt.max  # only overflow candidates: the rounding below may still bring them to max
    a_fin = np.where(np.isinf(a), 0.0, a)
    _, e = np.frexp(a_fin)  # a = f 2^e with f in [0.5, 1): floor(log2 a) = e - 1
    e = np.maximum(e.astype(np.int64) - 1, fmt.emin)
    n = np.rint(np.ldexp(a_fin, fmt.mbits - e))  # units of the binade's spacing; ties to even
    carry = n >= 2 ** (fmt.mbits + 1)
    e = np.where(carry, e + 1, e)
    n = np.where(carry, n / 2, n).astype(np.int64)
    normal = n >= 2**fmt.mbits
    field = np.where(normal, e + fmt.bias, 0)
    mant = np.where(normal, n - 2**fmt.mbits, n)
    top = fmt.emax + fmt.bias
    over = big & ((field > top) | ((field == top) & (mant > fmt.max_mantissa)))
    over |= np.isinf(a)
    code = (field << fmt.mbits) | mant
    if saturate:
        code = np.where(over, fmt.max_code, code)
    elif fmt.specials == "ieee":
        code = np.where(over, (2**fmt.ebits - 1) << fmt.mbits, code)
    else:
        code = np.where(over, 2 ** (fmt.ebits + fmt.mbits) - 1, code)
    nan_code = 2 ** (fmt.ebits + fmt.mbits) - 1  # all exponent and mantissa bits set
    code = np.where(nan, nan_code, code)
    code = code | (neg.astype(np.int64) << (fmt.ebits + fmt.mbits))
    return code.astype(np.uint8)


def round_to(x: np.ndarray, fmt: FloatFormat, saturate: bool = True) -> np.ndarray:
    """``decode(cast(x))``: the float32 values of x rounded to ``fmt``."""
    return decode(cast(x, fmt, saturate), fmt)


# ----------------------------------------------------------------------------- E8M0 scales

#: E8M0 (OCP MX v1.0 shared scale): code c in 0..254 is 2^(c - 127); 255 is NaN (never written).
E8M0_BIAS = 127
E8M0_NAN = 255


def e8m0_exponents(amax: np.ndarray, emax_elem: int) -> np.ndarray:
    """Shared exponents ``floor(log2 amax) - emax_elem`` (OCP MX v1.0), clamped to [-127, 127];
    an all-zero block gets -127. Returns int64 of amax's shape."""
    amax = np.asarray(amax, np.float64)
    if not np.all(np.isfinite(amax)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    _, e = np.frexp(amax)
    shared = np.where(amax > 0, e.astype(np.int64) - 1 - emax_elem, -E8M0_BIAS)
    return np.clip(shared, -E8M0_BIAS, E8M0_BIAS)


def e8m0_decode(codes: np.ndarray) -> np.ndarray:
    """E8M0 codes (0..254) -> float64 powers of two 2^(c - 127). Code 255 (NaN) is the caller's
    error to report."""
    return np.ldexp(1.0, np.asarray(codes, np.int64) - E8M0_BIAS)


# ----------------------------------------------------------------------------- receivers


def dequantize_scaled(codes: np.ndarray, scale: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """float32 ``scale * value(code)`` with one scale per row of the 2-D ``codes`` (per tensor:
    one row). One float32 multiply per element (IEEE, so every receiver agrees)."""
    vals = decode(codes, fmt)
    return vals * np.asarray(scale, np.float32).reshape(-1, 1)


def dequantize_mx(codes: np.ndarray, scale_codes: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """MX blocks: float32 ``value(code) * 2^(e - 127)``, one E8M0 code ``e`` per row of ``codes``.
    The product is exact in float64 and rounded once to float32."""
    sc = np.asarray(scale_codes, np.int64).reshape(-1, 1)
    if np.any(sc == E8M0_NAN):
        raise FormatError("an E8M0 scale is NaN (code 255)")
    return (decode(codes, fmt).astype(np.float64) * e8m0_decode(sc)).astype(np.float32)


def dequantize_nvfp4(codes: np.ndarray, block_scales: np.ndarray, tensor_scale: float) -> np.ndarray:
    """NVFP4 blocks: float32 ``e2m1(code) * e4m3(block scale) * tensor_scale``; the first product
    is exact in float32, the second rounds once."""
    bs = decode(np.asarray(block_scales).reshape(-1, 1), FORMATS["e4m3"])
    return (decode(codes, FORMATS["e2m1"]) * bs) * np.float32(tensor_scale)

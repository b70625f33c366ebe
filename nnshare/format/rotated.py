"""Rotated quantization of vectors (mean estimation, model updates): the receiver side. numpy only.

A vector x of d elements is sent as ``(seed, M, codes)``: the sender rotates it, ``y = R(seed) x``
(:mod:`.rotation`, any d, no padding), quantizes ``u = y / sigma`` (sigma = ||y|| / sqrt(d)) to
b bits per element, and sends one float32 multiplier M; the receiver rebuilds
``x_hat = R(seed)^T (M * levels(codes))``. Payload: exactly b * d + 64 bits (seed u32, M f32,
codes packed at b bits).

Quantizers (``nu``): 0 = scalar Lloyd-Max levels of a unit Gaussian (the DRIVE / EDEN family);
2..8 = fixed-rate TCQ with 2**nu states (:mod:`.fixed_tcq`), which at 1 bit comes within
0.5-0.7 dB of the rate-distortion bound where scalar levels are 1.6 dB away.

The sender's choice of M decides the estimator: ``M = sigma * <u, q> / ||q||^2`` minimises the
error (biased); ``M = ||x||^2 / <y, q>`` makes ``E[x_hat] = x`` over the random rotation
(unbiased, as in DRIVE / EDEN), with q = levels(codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import fixed_tcq
from .errors import FormatError, SpecError
from .grain import PerTensor
from .rotation import inverse

#: Lloyd-Max (Max, 1960) reconstruction levels of a unit-variance Gaussian, positive half.
LLOYD_MAX_GAUSS = {
    1: (0.7979,),
    2: (0.4528, 1.5104),
    3: (0.2451, 0.7560, 1.3440, 2.1520),
    4: (0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6181, 2.0690, 2.7326),
}
QUANTIZERS = (0, 2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class RotatedWire:
    """Wire spec of a rotated record: ``bits`` per element (1..4), ``nu`` (0 scalar Lloyd-Max,
    2..8 TCQ with 2**nu states), ``unbiased`` (whether the sender chose the unbiased multiplier;
    the receiver's arithmetic is the same either way)."""

    bits: int = 1
    nu: int = 6
    unbiased: bool = True
    scheme: ClassVar[str] = "rotated"
    grain: ClassVar = PerTensor()

    def __post_init__(self) -> None:
        for f in ("bits", "nu"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{f} must be an integer, got {v!r}")
        if not isinstance(self.unbiased, bool | np.bool_):
            raise SpecError(f"unbiased must be true or false, got {self.unbiased!r}")
        if self.bits not in LLOYD_MAX_GAUSS:
            raise SpecError(f"rotated quantization has 1..4 bits per element, got {self.bits}")
        if self.nu not in QUANTIZERS:
            raise SpecError(f"rotated quantizer nu must be 0 (scalar) or 2..8 (TCQ), got {self.nu}")

    @property
    def qmin(self) -> int:
        return 0

    @property
    def qmax(self) -> int:
        return (1 << self.bits) - 1

    def for_shape(self, shape: tuple[int, ...]) -> RotatedWire:
        return self

    def wire(self, shape: tuple[int, ...] | None = None) -> RotatedWire:
        return self

    def payload_bits(self, d: int) -> int:
        """Exact payload bits for d elements: seed (32) + M (32) + b * d codes."""
        return 64 + self.bits * int(d)


def scalar_levels(bits: int) -> np.ndarray:
    """The 2**bits Lloyd-Max levels of a unit Gaussian, ascending (float64); code j -> level j."""
    pos = np.array(LLOYD_MAX_GAUSS[bits], dtype=np.float64)
    return np.concatenate([-pos[::-1], pos])


def unit_reconstruction(codes: np.ndarray, spec: RotatedWire) -> np.ndarray:
    """levels(codes): the (d,) float64 reconstruction in units of sigma, before rotation back."""
    codes = np.asarray(codes, np.int64).reshape(-1)
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << spec.bits):
        raise FormatError(f"rotated codes outside [0, {(1 << spec.bits) - 1}]")
    if spec.nu == 0:
        return scalar_levels(spec.bits)[codes]
    return fixed_tcq.reconstruct(codes, spec.bits, spec.nu)


def dequantize(codes: np.ndarray, seed: int, multiplier: float, spec: RotatedWire,
               shape: tuple[int, ...]) -> np.ndarray:
    """x_hat (float32, ``shape``) = R(seed)^T (M * levels(codes))."""
    d = int(np.prod(shape, dtype=np.int64))
    codes = np.asarray(codes).reshape(-1)
    if codes.size != d:
        raise FormatError(f"rotated record has {codes.size} codes for {d} elements")
    if not np.isfinite(multiplier):
        raise FormatError("rotated record: the multiplier is not finite")
    if d == 0:
        return np.zeros(shape, np.float32)
    q = unit_reconstruction(codes, spec) * float(np.float32(multiplier))
    return inverse(q, int(seed)).astype(np.float32).reshape(shape)

"""Activation-quantization ranges carried as ordinary fp32 float records (numpy only).

A record named ``~act/<site>`` holds four float32 values ``[scale, zero_point, qmin, qmax]``:
the receiver quantizes the activation at ``<site>`` (e.g. ``"3:in"``, the input of module ``3``)
as ``x_hat = rint(clamp(x / scale, qmin - zero_point, qmax - zero_point)) * scale`` in float32,
the same operations the sender's simulated-quantization model runs, so outputs agree bit for bit.
Tensor names never start with ``~`` (module names cannot contain it), so the prefix is reserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import FormatError
from .spec import FloatTensor

PREFIX = "~act/"


@dataclass(frozen=True)
class ActRange:
    """One activation quantizer: float32 ``scale`` > 0, integer ``zero_point``, code range."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    def __post_init__(self) -> None:
        s = np.float32(self.scale)
        if not (np.isfinite(s) and s > 0):
            raise FormatError(f"activation scale must be a finite positive number, got {self.scale}")
        for k in ("zero_point", "qmin", "qmax"):
            v = getattr(self, k)
            if not float(v).is_integer() or abs(v) > 2**24:
                raise FormatError(f"activation {k} must be an integer of at most 2^24, got {v}")
        if not self.qmin < self.qmax:
            raise FormatError(f"activation code range [{self.qmin}, {self.qmax}] is empty")

    def values(self) -> np.ndarray:
        """The record's four float32 values."""
        return np.array([self.scale, self.zero_point, self.qmin, self.qmax], np.float32)

    def bounds(self) -> tuple[np.float32, np.float32]:
        """Clamp bounds of ``x / scale``: ``qmin - z`` and ``qmax - z`` (exact in float32)."""
        return np.float32(self.qmin - self.zero_point), np.float32(self.qmax - self.zero_point)


def to_tensors(ranges: Mapping[str, ActRange]) -> dict[str, FloatTensor]:
    """Float records for a stream: ``{PREFIX + site: FloatTensor(4 values, fp32)}``."""
    return {PREFIX + site: FloatTensor(r.values(), "fp32") for site, r in ranges.items()}


def split(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, ActRange]]:
    """Separate decoded arrays into model tensors and activation ranges by site."""
    rest, ranges = {}, {}
    for name, a in arrays.items():
        if not name.startswith(PREFIX):
            rest[name] = a
            continue
        v = np.asarray(a)
        if v.shape != (4,) or v.dtype != np.float32:
            raise FormatError(f"activation range {name!r} must hold 4 float32 values, got shape {v.shape}")
        ranges[name[len(PREFIX) :]] = ActRange(float(v[0]), int(v[1]), int(v[2]), int(v[3]))
    return rest, ranges


def fake_quantize(x: np.ndarray, r: ActRange) -> np.ndarray:
    """What the receiver computes for an activation (float32, bit-exact with the sender's torch)."""
    x = np.asarray(x, np.float32)
    lo, hi = r.bounds()
    u = np.clip(x / np.float32(r.scale), lo, hi)
    return (np.rint(u) + np.float32(0.0)) * np.float32(r.scale)

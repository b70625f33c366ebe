"""Distributed mean estimation: each client sends its vector with rotated quantization
(:mod:`nnshare.quant.rotated`, scheme "rotated"), the server averages what it decodes.

With the unbiased multiplier and independent rotation seeds per client, the error of the mean
falls as 1/n: vNMSE(n) = vNMSE(1) / n for independent vectors.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError
from ..format.rotated import RotatedWire, dequantize
from ..quant.rotated import encode_many, vnmse

__all__ = ["estimate_mean", "roundtrip_many", "vnmse"]


def roundtrip_many(xs, spec: RotatedWire, seeds) -> np.ndarray:
    """Rows of x_hat (float32, (r, d)) as a receiver rebuilds them, each row with its own seed."""
    xs = np.asarray(xs)
    if xs.ndim != 2:
        raise SpecError(f"expected a 2-D array of row vectors, got shape {xs.shape}")
    codes, m = encode_many(xs, spec, seeds)
    out = np.zeros(xs.shape, np.float32)
    for i, (c, s, mm) in enumerate(zip(codes, seeds, m, strict=True)):
        out[i] = dequantize(c, int(s), float(mm), spec, (xs.shape[1],))
    return out


def estimate_mean(xs, spec: RotatedWire, seeds) -> np.ndarray:
    """The server's estimate (float64, (d,)) of the mean of the rows of ``xs`` (n clients, d)."""
    return roundtrip_many(xs, spec, seeds).astype(np.float64).mean(0)

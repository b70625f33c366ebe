"""Unbiased entropy-coded quantization of an update at a bit budget: stochastic rounding to one
uniform grid shared by every tensor, its step found by bisection on the coded size.

Codes c = floor(x / step + U), U ~ uniform[0, 1) from a seed per tensor, so E[c * step] = x
(unbiased) and the error variance per coordinate is at most step^2 / 4. For a fixed budget the
variance sum_t step_t * ||x_t||_1 (sparse regime) is smallest with one step for every tensor
(Lagrange: d/d step_t of step_t ||x_t||_1 + lambda ||x_t||_1 / step_t vanishes at one common step),
which is why the step is global and not, as in QSGD, each tensor's norm / s. The codes are
ordinary affine records: the container's entropy coder codes the many zeros compactly.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor
from ..quant import QuantSpec
from ..quant.rate import tensor_bits


def _uniforms(seed: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    s = (int(seed) * 0x9E3779B1 ^ zlib.crc32(name.encode())) & 0x7FFFFFFF
    return np.random.default_rng(s).random(shape)


def _h0_bits(codes: np.ndarray) -> float:
    """Zeroth-order empirical entropy of the codes (bits) plus 32 bits of scale: a fast estimate
    of what the entropy coder spends (its adaptive context models usually spend less)."""
    _, counts = np.unique(codes, return_counts=True)
    p = counts / codes.size
    return float(-(counts * np.log2(p)).sum()) + 32.0


def stochastic_codes(update: Mapping[str, np.ndarray], step: float, seed: int,
                     exact: bool = False) -> tuple[dict, float]:
    """(name -> QuantizedTensor with stochastic codes at ``step``, estimated coded bits:
    :func:`_h0_bits`, or the rate model of :func:`nnshare.quant.rate.tensor_bits` if ``exact``)."""
    step32 = np.float32(step)
    out, bits = {}, 0.0
    for n, a in update.items():
        codes = np.floor(np.asarray(a, np.float64) / float(step32) + _uniforms(seed, n, a.shape))
        m = int(np.abs(codes).max()) if codes.size else 0
        b = max(2, m.bit_length() + 1)
        if b > 16:
            raise SpecError(f"step {step:.3g} too small: codes up to {m} need {b} bits (max 16)")
        t = QuantizedTensor(codes=codes.astype(np.int32), params={"scale": step32},
                            spec=QuantSpec(bits=b), shape=tuple(a.shape))
        out[n] = t
        bits += tensor_bits(t) if exact else _h0_bits(t.codes)
    return out, bits


def stochastic_rate(update: Mapping[str, np.ndarray], bits: float, seed: int, iters: int = 24) -> dict:
    """Stochastic-rounding records of ``update`` (name -> float32 array, not all zero) whose
    estimated size is the largest at most ``bits`` (bisection on log2 step)."""
    flat = np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in update.values()])
    peak = float(np.abs(flat).max())
    if not peak > 0:
        raise SpecError("stochastic rate control needs a non-zero update")
    lo, hi = math.log2(peak) - 14.0, math.log2(peak) + 8.0  # fine (many bits) .. all codes in {0, +-1}
    best = None
    for _ in range(iters):
        mid = (lo + hi) / 2
        try:
            out, b = stochastic_codes(update, 2.0**mid, seed, exact=True)
        except SpecError:
            lo = mid
            continue
        if b <= bits:
            best, hi = out, mid
        else:
            lo = mid
    if best is None:  # even the coarsest step is over the budget: send the coarsest
        best, _ = stochastic_codes(update, 2.0**hi, seed)
    return best


def stochastic_at(update: Mapping[str, np.ndarray], step_rms: float, seed: int) -> dict:
    """Stochastic-rounding records at step = ``step_rms`` x the RMS of the whole update (the
    rate then follows the update's shape: the heavier its tails, the more non-zero codes)."""
    flat = np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in update.values()])
    rms = float(np.sqrt(np.mean(flat**2)))
    if not rms > 0:
        raise SpecError("stochastic quantization needs a non-zero update")
    if not step_rms > 0:
        raise SpecError(f"step_rms must be positive, got {step_rms}")
    return stochastic_codes(update, step_rms * rms, seed)[0]

"""Learnable quantization ranges: scale/offset, min/max and beta/gamma (algorithms.md §2.1).

Each parameterization is a small ``nn.Module`` holding one value per block (per tensor, channel
or group; see :mod:`nnshare.qat.fakequant`) and mapping the current weight blocks to the scale
(already rounded to ``spec.scale_dtype``) and integer-valued zero point the fake quantizer uses:

- ``scale_offset``: learn s and a real zero point z (rounded with the STE);
- ``minmax``: learn the range ends; s = (max - min) / (2^b - 1), z = rint(-min / s) (STE);
- ``beta_gamma``: learn dimensionless beta, gamma; min = beta * min(w), max = gamma * max(w) with
  the block's own min(w) <= 0 <= max(w) recomputed every step (detached); no sigmoid, so the
  range may grow as well as shrink.

Symmetric specs learn one value per block instead: s, the largest magnitude a (s = a / qmax),
or gamma (a = gamma * max|w|). All three start from ``spec.range_method``'s estimate, so with
the default min-max estimate a freshly prepared model equals post-training quantization exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..format.spec import QuantSpec
from ..quant import ranges as range_estimators
from ..quant.affine import params_from_range
from .fakequant import round_scale


def row_levels(spec: QuantSpec, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (float32 arrays of length ``rows``): smallest code, largest code and the scale's
    denominator (2^b - 1 asymmetric, max(qmax, 1) symmetric); rows differ with channel_bits."""
    qmin, qmax = spec.row_qrange(rows)
    den = qmax if not spec.symmetric else np.maximum(qmax, 1)
    return tuple(np.asarray(a, np.float32) for a in (qmin, qmax, den))


def block_minmax(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (min(w, 0), max(w, 0)) as (n, 1) detached tensors: a range that contains 0."""
    b = blocks.detach()
    lo = torch.clamp(b.amin(dim=1, keepdim=True), max=0.0)
    hi = torch.clamp(b.amax(dim=1, keepdim=True), min=0.0)
    return lo, hi


def initial_range(blocks: torch.Tensor, spec: QuantSpec) -> tuple[np.ndarray, np.ndarray]:
    """The spec's range estimate per row, widened to contain 0 (float32 arrays of length n)."""
    arr = blocks.detach().cpu().float().numpy()
    lo, hi = range_estimators.estimate(arr, spec)
    return np.minimum(lo, 0).astype(np.float32), np.maximum(hi, 0).astype(np.float32)


def _param(values: np.ndarray, like: torch.Tensor) -> nn.Parameter:
    t = torch.as_tensor(np.asarray(values, np.float32).reshape(-1, 1))
    return nn.Parameter(t.to(dtype=like.dtype, device=like.device))


def asym_from_range(lo, hi, qmax, scale_dtype: str, round_fn):
    """Scale and zero point from range ends, with the arithmetic of ``params_from_range``
    (``qmax`` = 2^b - 1, a number or an (n, 1) tensor)."""
    s = round_scale((hi - lo) / qmax, scale_dtype, up=True)
    z = round_fn(torch.minimum(torch.clamp(-lo / s, min=0), torch.as_tensor(qmax).to(s)))
    return s, z


class RangeParam(nn.Module):
    """Base class: ``qparams(blocks, round_fn) -> (scale (n,1), zero_point (n,1) or None)``.

    Holds per-row code bounds ``qmin``, ``qmax`` and the scale denominator ``den`` as (n, 1)
    non-persistent buffers (rows differ when the spec has ``channel_bits``).
    """

    kind = "base"

    def __init__(self, spec: QuantSpec, blocks: torch.Tensor):
        super().__init__()
        self.spec = spec
        for name, arr in zip(("qmin", "qmax", "den"), row_levels(spec, blocks.shape[0]),
                             strict=True):
            t = torch.as_tensor(arr.reshape(-1, 1)).to(dtype=blocks.dtype, device=blocks.device)
            self.register_buffer(name, t, persistent=False)

    def sym_scale(self, absmax: torch.Tensor) -> torch.Tensor:
        """Symmetric scale absmax / qmax, rounded up to the scale dtype."""
        return round_scale(absmax / self.den, self.spec.scale_dtype, up=True)

    def asym(self, lo: torch.Tensor, hi: torch.Tensor, round_fn):
        """Asymmetric scale and zero point from range ends."""
        return asym_from_range(lo, hi, self.qmax, self.spec.scale_dtype, round_fn)

    def qparams(self, blocks: torch.Tensor, round_fn):
        raise NotImplementedError


class MinMaxRange(RangeParam):
    """Learn the range ends (asymmetric) or the largest magnitude (symmetric), in data units."""

    kind = "minmax"

    def __init__(self, spec: QuantSpec, blocks: torch.Tensor):
        super().__init__(spec, blocks)
        lo, hi = initial_range(blocks, spec)
        if spec.symmetric:
            a = np.maximum(-lo, hi)
            den = self.den.reshape(-1).cpu().float().numpy()
            self.absmax = _param(np.where(a > 0, a, den), blocks)
        else:
            self.lo = _param(lo, blocks)
            self.hi = _param(hi, blocks)

    def qparams(self, blocks, round_fn):
        if self.spec.symmetric:
            return self.sym_scale(self.absmax), None
        return self.asym(self.lo, self.hi, round_fn)


class ScaleOffsetRange(RangeParam):
    """Learn the scale s and a real-valued zero point z (asymmetric), rounded with the STE."""

    kind = "scale_offset"

    def __init__(self, spec: QuantSpec, blocks: torch.Tensor):
        super().__init__(spec, blocks)
        lo, hi = initial_range(blocks, spec)
        s, z = params_from_range(lo, hi, spec)
        self.scale = _param(s, blocks)
        if not spec.symmetric:
            self.offset = _param(z.astype(np.float32), blocks)

    def qparams(self, blocks, round_fn):
        s = round_scale(self.scale, self.spec.scale_dtype)
        if self.spec.symmetric:
            return s, None
        return s, round_fn(torch.minimum(torch.clamp(self.offset, min=0), self.qmax))


class BetaGammaRange(RangeParam):
    """Learn min = beta * min(w) and max = gamma * max(w) relative to the live block range."""

    kind = "beta_gamma"

    def __init__(self, spec: QuantSpec, blocks: torch.Tensor):
        super().__init__(spec, blocks)
        lo, hi = initial_range(blocks, spec)
        rlo, rhi = (t.reshape(-1).cpu().float().numpy() for t in block_minmax(blocks))
        if spec.symmetric:
            ref = np.maximum(-rlo, rhi)
            a = np.maximum(-lo, hi)
            self.gamma = _param(_ratio(a, ref), blocks)
        else:
            self.beta = _param(_ratio(lo, rlo), blocks)
            self.gamma = _param(_ratio(hi, rhi), blocks)

    def qparams(self, blocks, round_fn):
        rlo, rhi = block_minmax(blocks)
        if self.spec.symmetric:
            ref = torch.maximum(-rlo, rhi)
            return self.sym_scale(self.gamma * ref), None
        return self.asym(self.beta * rlo, self.gamma * rhi, round_fn)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    safe = np.where(den != 0, den, np.float32(1))
    return np.where(den != 0, num / safe, np.float32(1)).astype(np.float32)

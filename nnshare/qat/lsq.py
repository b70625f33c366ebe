"""LSQ and LSQ+ step sizes (algorithms.md §2.2, §2.3).

LSQ (Esser et al. 2020): learn the step size s directly; its gradient is multiplied by
g = 1 / sqrt(L * Q_P), L = number of elements sharing the scale (the block length here) and
Q_P the largest positive code, so that s trains at a rate comparable to the weights.
The gradient of the quantized value with respect to s is rint(w/s) - w/s inside the range,
-Q_N below and Q_P above (the STE gives exactly this).

LSQ+ (Bhalgat et al. 2020): a learnable offset beta (in data units, the low end of the range)
next to s, both gradient-scaled; for weights the initial step is
max(|mu - 3 sigma|, |mu + 3 sigma|) / 2^(b-1). The format sends an integer zero point, so the
offset is realised as z = rint(-beta / s) with the STE (the gradient wrt beta is then 0 inside
the range and 1 outside, as in LSQ+).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..format.errors import SpecError
from ..format.spec import QuantSpec
from .fakequant import grad_scale, round_scale
from .parameterizations import RangeParam, _param, initial_range, row_levels


def lsq_grad_factor(block_len: int, spec: QuantSpec) -> float:
    """g = 1 / sqrt(L * Q_P) with Q_P = qmax (symmetric) or 2^b - 1 (asymmetric)."""
    return 1.0 / math.sqrt(max(block_len, 1) * max(spec.qmax, 1))


def lsq_init_step(blocks: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """LSQ's initial step per row: 2 mean|w| / sqrt(Q_P)."""
    qp = row_levels(spec, blocks.shape[0])[2]
    s = 2.0 * np.abs(blocks).mean(axis=1) / np.sqrt(qp)
    return np.where(s > 0, s, 1.0).astype(np.float32)


def lsqplus_init_step(blocks: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """LSQ+'s initial weight step per row: max(|mu - 3 sigma|, |mu + 3 sigma|) / 2^(b-1)."""
    mu, sd = blocks.mean(axis=1), blocks.std(axis=1)
    bits = spec.row_bits(blocks.shape[0])
    s = np.maximum(np.abs(mu - 3 * sd), np.abs(mu + 3 * sd)) / 2.0 ** (bits - 1)
    return np.where(s > 0, s, 1.0).astype(np.float32)


class LSQRange(RangeParam):
    """LSQ (``plus=False``) or LSQ+ (``plus=True``) learnable step size and offset.

    Symmetric specs learn the step only, initialised by LSQ's or LSQ+'s rule. Asymmetric specs
    learn step and offset in LSQ+ form (both ways), initialised from the min/max range.
    """

    kind = "lsq"

    def __init__(self, spec: QuantSpec, blocks: torch.Tensor, plus: bool = False):
        super().__init__(spec, blocks)
        if spec.symmetric and min(spec.row_bits(blocks.shape[0])) < 2:
            raise SpecError("LSQ needs bits >= 2 for symmetric quantization")
        self.kind = "lsq+" if plus else "lsq"
        self.plus = plus
        self.g = lsq_grad_factor(int(blocks.shape[1]), spec)
        arr = blocks.detach().cpu().float().numpy()
        if spec.symmetric:
            init = lsqplus_init_step(arr, spec) if plus else lsq_init_step(arr, spec)
            self.scale = _param(init, blocks)
        else:
            lo, hi = initial_range(blocks, spec)
            span = (hi - lo) / row_levels(spec, blocks.shape[0])[2]
            self.scale = _param(np.where(span > 0, span, np.float32(1)), blocks)
            self.offset = _param(lo, blocks)

    def qparams(self, blocks, round_fn):
        s = round_scale(grad_scale(self.scale, self.g), self.spec.scale_dtype)
        if self.spec.symmetric:
            return s, None
        beta = grad_scale(self.offset, self.g)
        return s, round_fn(torch.minimum(torch.clamp(-beta / s, min=0), self.qmax))

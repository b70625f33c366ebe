"""The fixed fine step of 1-D tensors under rate control and update coding.

Biases, norm scales and shifts and BatchNorm statistics are few but sensitive: a step chosen for
the weight matrices rounds them to zero (a BatchNorm ``running_var`` of 0 divides activations by
sqrt(eps)). Like NNCodec, which sends them at a fixed fine quantization parameter, they get their
own step: uniform rounding noise step²/12 at :data:`FINE_SQNR_DB` below their mean square, and
never so small that a code needs more than 16 bits.
"""

from __future__ import annotations

import math

import numpy as np

#: SQNR (dB) a 1-D tensor is sent at by rate control and update coding.
FINE_SQNR_DB = 50.0
_MAX_CODE = 2**14


def fine_step(x: np.ndarray, sqnr_db: float = FINE_SQNR_DB) -> float:
    """Step (> 0) giving about ``sqnr_db`` of SQNR for ``x`` under rounding: sqrt(12) * RMS *
    10^(-sqnr_db / 20), at least max|x| / 2**14; 1.0 for an all-zero tensor."""
    x = np.asarray(x, np.float64)
    if x.size == 0 or not np.any(x):
        return 1.0
    rms = math.sqrt(float((x**2).mean()))
    step = math.sqrt(12.0) * rms * 10 ** (-sqnr_db / 20)
    return float(max(step, float(np.abs(x).max()) / _MAX_CODE, np.finfo(np.float32).tiny))


def is_fine(shape: tuple[int, ...]) -> bool:
    """True for the tensors that get a fine step of their own: rank < 2."""
    return len(shape) < 2


def step_cap(x: np.ndarray) -> float:
    """The largest step a weight tensor may get under a shared step: half its largest magnitude,
    so its largest element gets code +-2 and keeps at least +-1 after RDO / trellis moves (the
    tensor never rounds to all zeros); 1.0 for an all-zero tensor."""
    m = abs_max(x)
    return m / 2 if m > 0 else 1.0


def abs_max(x: np.ndarray) -> float:
    """max |x| of a float array (0.0 when empty), exactly, from its min and max: no float64 or
    absolute-value copy of a big tensor; NaN when x holds one."""
    x = np.asarray(x)
    if x.size == 0:
        return 0.0
    lo, hi = float(x.min()), float(x.max())
    return math.nan if math.isnan(lo) or math.isnan(hi) else max(-lo, hi)

"""Task-aware rate allocation over the entropy-coded stream: one step per float tensor such that
the marginal predicted task loss per bit is equal across tensors.

At high rate a tensor ``t`` of ``n_t`` values quantized with step ``d_t`` adds
``s_t * n_t * d_t**2 / 12`` to the predicted loss (``s_t``: loss per unit squared weight error,
from a sensitivity) and costs about ``n_t * (h_t - log2 d_t)`` bits. Minimising the loss for a
given number of bits gives ``s_t * d_t**2 = const``: ``d_t = m * sqrt(s_ref / s_t)`` with one
multiplier ``m`` (the step of a tensor of reference sensitivity). ``s_t = 1`` for every weight
matrix is the uniform plan (one global step, like NNCodec); 1-D tensors (biases, norms,
BatchNorm statistics) then keep the fine step of :mod:`nnshare.quant.fine`.

``weights[name]`` are the ``s_t`` (relative; only ratios matter). A tensor without a weight
keeps the fine step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import SpecError
from ..format.container import write_stream
from ..format.meta import with_meta
from ..format.spec import QuantizedTensor, RawTensor
from ..quant.fine import fine_step, is_fine, step_cap
from ..quant.rate import DEFAULT_LAM_SCALE, LAMBDA_HIGH_RATE, METHODS, quantize_tensor
from ..state import ModelState

#: The most a tensor's step may exceed the reference step ``m`` (an insensitive tensor is coded
#: coarsely, never destroyed: unseen embedding rows and calibration blind spots keep a signal).
MAX_STEP_RATIO = 16.0
_MAX_CODE = 2**14


def reference_sensitivity(weights: Mapping[str, float], arrays: Mapping[str, np.ndarray]) -> float:
    """``s_ref``: the numel-weighted mean sensitivity of the weighted weight matrices (of every
    weighted tensor when no matrix has one); 1.0 when nothing is weighted."""
    names = [n for n in weights if n in arrays and not is_fine(arrays[n].shape)]
    names = names or [n for n in weights if n in arrays]
    tot = sum(int(arrays[n].size) for n in names)
    ref = sum(float(weights[n]) * int(arrays[n].size) for n in names) / tot if tot else 1.0
    return ref if ref > 0 and math.isfinite(ref) else 1.0


def steps_for(arrays: Mapping[str, np.ndarray], weights: Mapping[str, float], m: float) -> dict[str, float]:
    """Step per float tensor for multiplier ``m`` (see module docstring).

    Weight matrices without a weight get ``s_ref`` (the uniform step ``m``); 1-D tensors without
    one get their fine step. Every step lies in [max|x| / 2**14, half max|x|] (codes fit 16 bits,
    the largest value keeps code +-2) and at most :data:`MAX_STEP_RATIO` times the tensor's
    sensitivity-free step.
    """
    if not (m > 0 and math.isfinite(m)):
        raise SpecError(f"step multiplier must be positive and finite, got {m}")
    floats = {n: a for n, a in arrays.items() if a.dtype.kind == "f"}
    known = {n: float(w) for n, w in weights.items() if n in floats}
    s_ref = reference_sensitivity(known, floats)
    out = {}
    for n, a in floats.items():
        if a.size == 0:
            out[n] = 1.0
            continue
        amax = float(np.abs(a).max())
        if n not in known:
            if is_fine(a.shape):
                out[n] = fine_step(a)
                continue
            ratio = 1.0
        else:
            s = max(known[n], s_ref / MAX_STEP_RATIO**2)
            ratio = math.sqrt(s_ref / s)
        step = m * ratio
        if amax > 0:
            step = min(max(step, amax / _MAX_CODE), step_cap(a))
        out[n] = float(step)
    return out


def quantize_steps(
    state: ModelState, steps: Mapping[str, float], method: str = "tcq", scale_dtype: str = "fp32"
) -> dict:
    """QuantizedTensor per float tensor at its step (RawTensor for the rest), in state order.

    ``method``: "nearest" | "rdo" | "tcq" | "tcq4" (:mod:`nnshare.quant.rate`); 1-D tensors are
    always rounded to nearest (few values, no trellis gain)."""
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    lam = DEFAULT_LAM_SCALE[method] * LAMBDA_HIGH_RATE
    out: dict = {}
    for n, a in state.arrays.items():
        if a.dtype.kind != "f":
            out[n] = RawTensor(a)
            continue
        meth = "nearest" if is_fine(a.shape) else method
        out[n] = quantize_tensor(a, steps[n], method=meth, lam=lam, scale_dtype=scale_dtype)
    return out


def write_steps(state: ModelState, tensors: Mapping, mode: str = "self") -> bytes:
    """The entropy-coded stream of already-quantized tensors (dtypes / ties record in self mode)."""
    data, _ = write_stream(with_meta(dict(tensors), mode, state.dtypes, state.ties), mode, entropy="auto")
    return data


def predicted_loss(tensors: Mapping, arrays: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> float:
    """Sum over weighted tensors of ``s_t * ||Q(x_t) - x_t||^2`` (the sensitivity's units)."""
    tot = 0.0
    for n, s in weights.items():
        q = tensors.get(n)
        if isinstance(q, QuantizedTensor):
            d = q.dequantize().astype(np.float64) - arrays[n]
            tot += float(s) * float((d**2).sum())
    return tot

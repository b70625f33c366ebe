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

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import SpecError
from ..format.container import write_stream
from ..format.meta import with_meta
from ..format.spec import QuantizedTensor, RawTensor, from_blocks, round_scale, to_blocks
from ..quant.fine import abs_max, fine_step, is_fine, step_cap
from ..quant.rate import DEFAULT_LAM_SCALE, LAMBDA_HIGH_RATE, METHODS, quantize_codes, quantize_tensor
from ..quant.spec import QuantSpec
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


def steps_for(arrays: Mapping[str, np.ndarray], weights: Mapping[str, float], m: float,
              channels: Mapping | None = None, uniform=()) -> dict:
    """Step per float tensor for multiplier ``m`` (see module docstring): a float, or for a tensor
    in ``channels`` (:class:`~nnshare.mixed.task_channels.ChannelSteps`) a (C,) array of steps
    along its axis, ``step_t / sqrt(rel_c)``.

    Weight matrices without a weight get ``s_ref`` (the uniform step ``m``); 1-D tensors without
    one get their fine step. Every step lies in [max|x| / 2**14, half max|x|] (codes fit 16 bits,
    the largest value keeps code +-2; per channel: of the channel) and at most
    :data:`MAX_STEP_RATIO` times the tensor's sensitivity-free step. ``uniform``: names of weight
    matrices held at the step ``m`` whatever their weight (as the uniform plan holds them).
    """
    if not (m > 0 and math.isfinite(m)):
        raise SpecError(f"step multiplier must be positive and finite, got {m}")
    channels = channels or {}
    floats = {n: a for n, a in arrays.items() if a.dtype.kind == "f"}
    known = {n: float(w) for n, w in weights.items() if n in floats}
    s_ref = reference_sensitivity(known, floats)
    out = {}
    for n, a in floats.items():
        if a.size == 0:
            out[n] = 1.0
            continue
        amax = abs_max(a)
        if n not in known or n in uniform and not is_fine(a.shape):
            if is_fine(a.shape):
                out[n] = fine_step(a)
                continue
            ratio = 1.0
        else:
            s = max(known[n], s_ref / MAX_STEP_RATIO**2)
            ratio = math.sqrt(s_ref / s)
        step = m * ratio
        if n in channels and amax > 0:
            c = channels[n]
            cmax = np.abs(np.moveaxis(a, c.axis, 0).reshape(a.shape[c.axis], -1)).max(axis=1)
            st = np.minimum(step / np.sqrt(c.rel), m * MAX_STEP_RATIO)
            st = np.minimum(st, np.where(cmax > 0, cmax / 2, np.inf))
            out[n] = np.maximum(st, amax / _MAX_CODE).astype(np.float64)
            continue
        if amax > 0:
            step = min(max(step, amax / _MAX_CODE), step_cap(a))
        out[n] = float(step)
    return out


def quantize_steps(
    state: ModelState, steps: Mapping, method: str = "tcq", scale_dtype: str = "fp32",
    channels: Mapping | None = None,
) -> dict:
    """QuantizedTensor per float tensor at its step (RawTensor for the rest), in state order.

    ``method``: "nearest" | "rdo" | "tcq" | "tcq4" (:mod:`nnshare.quant.rate`); 1-D tensors are
    always rounded to nearest (few values, no trellis gain). A tensor in ``channels`` with a
    (C,) array of steps gets per-channel scales in :data:`CHANNEL_SCALE_DTYPE`."""
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return {n: quantize_one(n, a, steps, method, scale_dtype, channels) for n, a in state.arrays.items()}


def quantize_one(name: str, a: np.ndarray, steps: Mapping, method: str = "tcq", scale_dtype: str = "fp32",
                 channels: Mapping | None = None):
    """The tensor :func:`quantize_steps` makes of array ``a`` named ``name``."""
    if a.dtype.kind != "f":
        return RawTensor(a)
    lam = DEFAULT_LAM_SCALE[method] * LAMBDA_HIGH_RATE
    meth = "nearest" if is_fine(a.shape) else method
    if np.ndim(steps[name]) == 1 and channels and name in channels:
        return quantize_channels(a, steps[name], channels[name].axis, meth, lam)
    return quantize_tensor(a, steps[name], method=meth, lam=lam, scale_dtype=scale_dtype)


#: Scale dtype of per-channel steps (a step needs no more than bf16's 8 significant bits).
CHANNEL_SCALE_DTYPE = "bf16"


def quantize_channels(x: np.ndarray, steps: np.ndarray, axis: int, method: str = "tcq",
                      lam: float = LAMBDA_HIGH_RATE) -> QuantizedTensor:
    """``x`` with one step per channel along ``axis`` (scales in bf16). TCQ runs one trellis over
    the whole tensor in stream order (channel after channel), as the entropy coder's trellis
    contexts follow it."""
    x = np.asarray(x, np.float32)
    spec = QuantSpec(bits=16, granularity="channel", axis=axis, scale_dtype=CHANNEL_SCALE_DTYPE)
    st = round_scale(np.asarray(steps, np.float32), CHANNEL_SCALE_DTYPE).reshape(-1)
    u = to_blocks(x, spec).astype(np.float64) / st[:, None].astype(np.float64)
    codes = quantize_codes(u.reshape(-1), method, lam).reshape(u.shape)
    m = int(np.abs(codes).max()) if codes.size else 0
    bits = max(2, m.bit_length() + 1)
    if bits > 16:
        raise SpecError(f"step too small: codes up to {m} need {bits} bits (max 16)")
    codes = np.ascontiguousarray(from_blocks(codes.astype(np.int32), x.shape, spec))
    return QuantizedTensor(codes=codes, params={"scale": st}, spec=dataclasses.replace(spec, bits=bits),
                           shape=tuple(x.shape))


def write_steps(state: ModelState, tensors: Mapping, mode: str = "self") -> bytes:
    """The entropy-coded stream of already-quantized tensors (dtypes / ties record in self mode)."""
    data, _ = write_stream(with_meta(dict(tensors), mode, state.dtypes, state.ties), mode, entropy="auto")
    return data


def write_quantized(state: ModelState, steps: Mapping, method: str = "tcq", mode: str = "self",
                    channels: Mapping | None = None, sink: Callable | None = None) -> bytes:
    """``write_steps(state, quantize_steps(state, steps, method, channels=channels), mode)``,
    the same bytes, one tensor at a time: each is quantized where its record is written, handed
    to ``sink(name, tensor)`` (e.g. to load what the receiver rebuilds into a model) and dropped,
    so the codes of one tensor are in memory at a time, not those of the model."""
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")

    def prepare(name: str, value):
        if name not in state.arrays:  # the meta record
            return value
        t = quantize_one(name, state.arrays[name], steps, method, channels=channels)
        if sink is not None:
            sink(name, t)
        return t

    tensors = with_meta(dict(state.arrays), mode, state.dtypes, state.ties)
    data, _ = write_stream(tensors, mode, entropy="auto", prepare=prepare)
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

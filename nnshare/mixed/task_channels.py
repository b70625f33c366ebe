"""Per-channel steps for the task budget: where a weight matrix's channels differ in sensitivity,
one step per channel (row or column) pays for its scales.

The per-tensor sensitivity ``s_t`` (:mod:`.task_weights`) sets a tensor's level; inside it, the
diagonal of the output Gauss-Newton matrix ``F = diag(J^T J)`` (J: Jacobian of the model's
outputs on the calibration inputs, estimated with Rademacher probes ``E[(J^T v)^2]``, one
backward pass per probe and batch) gives each channel's share: ``rel_c = mean_c(F) / mean(F)``
(element-weighted mean 1). At high rate the channel steps ``d_c = d_t / sqrt(rel_c)`` keep the
predicted loss of the tensor and save ``-1/2 * sum_c n_c log2 rel_c`` bits (Jensen: >= 0); a
channel's step costs :data:`SCALE_BITS` bits of side information. Per tensor the axis (rows or
columns) that saves most net of its scales is kept, when it saves at least :data:`MIN_GAIN`
times its side information.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..quant.fine import is_fine
from .sensitivity import run_model, split_batch

#: Bits of one per-channel step on the wire (bf16 scales).
SCALE_BITS = 16
#: A tensor gets per-channel steps when the predicted saving is at least this multiple of the
#: scales' bits (the high-rate prediction is optimistic at low rate).
MIN_GAIN = 2.0
#: Channel shares are clipped to [1/RATIO_CLIP, RATIO_CLIP] (steps within 16x of the tensor's).
RATIO_CLIP = 256.0


@dataclass(frozen=True)
class ChannelSteps:
    """Per-channel relative sensitivities of one tensor: ``rel`` (C,) along ``axis`` (element-
    weighted mean 1), the predicted saving in bits and the side information it costs."""

    axis: int
    rel: np.ndarray
    saving_bits: float
    side_bits: int


def output_fisher_diag(model, batches, forward: Callable | None = None, names=None, probes: int = 4,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """``diag(J^T J)`` per parameter (float32 arrays of the parameters' shapes), summed over the
    calibration inputs: Rademacher probes on the outputs, ``probes`` backward passes per batch.
    ``names``: the parameters wanted (default every float parameter of rank >= 2)."""
    import torch

    params = {n: p for n, p in model.named_parameters() if p.dtype.is_floating_point}
    want = [n for n in (names if names is not None else params) if n in params and params[n].dim() >= 2]
    if not want:
        return {}
    acc = {n: torch.zeros_like(params[n], dtype=torch.float32) for n in want}
    flags = {n: p.requires_grad for n, p in params.items()}
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        for p in params.values():
            p.requires_grad_(False)
        for n in want:
            params[n].requires_grad_(True)
        for b in batches:
            x = split_batch(b, labelled=False)
            y = run_model(model, x, forward)
            for k in range(probes):
                v = torch.randint(0, 2, y.shape, generator=gen).to(y.dtype) * 2 - 1
                grads = torch.autograd.grad((y * v).sum(), [params[n] for n in want],
                                            retain_graph=k + 1 < probes, allow_unused=True)
                for n, g in zip(want, grads, strict=True):
                    if g is not None:
                        acc[n].addcmul_(g.detach(), g.detach())
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
        model.train(was_training)
    return {n: a.div_(probes).numpy() for n, a in acc.items()}


def channel_gain(f: np.ndarray, axis: int, scale_bits: int = SCALE_BITS) -> ChannelSteps | None:
    """The per-channel shares of ``f`` (diag Gauss-Newton, the tensor's shape) along ``axis`` and
    the predicted saving; None when the tensor's sensitivity is all zero."""
    f = np.asarray(f, np.float64)
    rows = np.moveaxis(f, axis, 0).reshape(f.shape[axis], -1)
    mean = float(rows.mean()) if rows.size else 0.0
    if not (mean > 0 and math.isfinite(mean)):
        return None
    rel = np.clip(rows.mean(axis=1) / mean, 1 / RATIO_CLIP, RATIO_CLIP)
    rel = rel / float(rel.mean())  # equal channel sizes: element-weighted mean = plain mean
    saving = -0.5 * rows.shape[1] * float(np.log2(rel).sum())
    return ChannelSteps(axis, rel, saving, scale_bits * rows.shape[0])


def choose_channels(arrays: Mapping[str, np.ndarray], fdiag: Mapping[str, np.ndarray],
                    min_gain: float = MIN_GAIN, skip=()) -> dict[str, ChannelSteps]:
    """Per weight matrix the axis whose per-channel steps save most net of their scales, kept when
    the saving is at least ``min_gain`` x the scales' bits. ``skip``: names left per tensor
    (embedding tables: a row the calibration never looks up has a zero diagonal, yet the task's
    inputs may use it)."""
    out = {}
    for n, f in fdiag.items():
        a = arrays.get(n)
        if a is None or n in skip or is_fine(a.shape) or a.shape != f.shape:
            continue
        best = None
        for axis in range(min(a.ndim, 2)):
            if a.shape[axis] < 2:
                continue
            c = channel_gain(f, axis)
            if c is not None and c.saving_bits >= min_gain * c.side_bits and (
                    best is None or c.saving_bits - c.side_bits > best.saving_bits - best.side_bits):
                best = c
        if best is not None:
            out[n] = best
    return out

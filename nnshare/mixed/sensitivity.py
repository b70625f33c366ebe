"""Sensitivity behind one interface: per tensor (and per channel) and per candidate bit width,
the predicted increase of the loss when that tensor alone is quantized at that width.

Methods (``estimate_sensitivity(model, method, data, ...)``):

- ``"hessian"``: HAWQ-V2, ``Omega = 1/2 * Tr(H)/n * ||Q_b(W) - W||^2`` with Tr(H) of each tensor
  (and each channel) from Hutchinson's estimator; needs labelled batches and a loss.
- ``"fisher"``: ``1/2 * sum_j F_j (Q_b(W)_j - W_j)^2`` with the empirical Fisher diagonal
  ``F = E[g^2]`` over per-sample gradients; needs labelled batches and a loss.
- ``"output"``: post-training, unlabelled: quantize one tensor at one width, measure the mean
  squared change of the model's output on calibration batches; per channel, that measurement
  is split with the layer's input second moments (``dW_c Sigma dW_c^T``).
- ``"weight"``: data-free fallback, ``||Q_b(W) - W||^2``.

Units: loss units for hessian/fisher, squared output units for output, squared weight units for
weight. Within one table they are comparable, which is all the allocator needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantSpec
from .tensors import DEFAULT_BASE, TensorInfo, channel_errors, float_arrays_of, select_tensors

METHODS = ("hessian", "fisher", "output", "weight")
DEFAULT_CANDIDATES = (2, 3, 4, 5, 6, 8)


@dataclass(frozen=True, eq=False)
class Sensitivity:
    """Predicted loss increase tables.

    ``tensor_loss[name]``: (K,) for the whole tensor at each of ``candidates``;
    ``channel_loss[name]``: (C, K), one row per channel (C = 1 with per-tensor scales).
    ``seconds``: wall time of the estimate.
    """

    method: str
    candidates: tuple[int, ...]
    base: QuantSpec
    tensors: tuple[TensorInfo, ...]
    tensor_loss: dict[str, np.ndarray]
    channel_loss: dict[str, np.ndarray]
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    def names(self) -> list[str]:
        return [t.name for t in self.tensors]


def check_candidates(candidates) -> tuple[int, ...]:
    """Sorted unique bit widths in 1..16."""
    try:
        c = tuple(sorted({int(b) for b in candidates}))
    except (TypeError, ValueError):
        raise SpecError(f"candidates must be integers, got {candidates!r}") from None
    if not c or c[0] < 1 or c[-1] > 16:
        raise SpecError(f"candidate bit widths must be in 1..16, got {candidates!r}")
    return c


# ------------------------------------------------------------------ data helpers


def batches_of(data, max_batches: int | None) -> list:
    """The first ``max_batches`` batches of an iterable (a DataLoader, a list, ...)."""
    if data is None:
        raise SpecError("this sensitivity method needs data (batches)")
    if not isinstance(data, Iterable):
        raise SpecError(f"data must be an iterable of batches, got {type(data).__name__}")
    out = []
    for i, b in enumerate(data):
        if max_batches is not None and i >= max_batches:
            break
        out.append(b)
    if not out:
        raise SpecError("data holds no batch")
    return out


def split_batch(batch, labelled: bool):
    """(inputs, targets) of a labelled batch; inputs of an unlabelled one."""
    if labelled:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise SpecError("hessian/fisher sensitivity needs (inputs, targets) batches")
        return batch[0], batch[1]
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0]
    return batch


def run_model(model, x, forward: Callable | None):
    """Model output as one tensor: ``forward(model, x)`` if given, else ``model(x)``."""
    y = forward(model, x) if forward is not None else model(x)
    if isinstance(y, tuple | list):
        y = y[0]
    if isinstance(y, dict):
        raise SpecError("the model returns a dict: pass forward=lambda model, x: ... -> tensor")
    return y


def default_loss(output, target):
    import torch.nn.functional as F

    return F.cross_entropy(output, target)


# ------------------------------------------------------------------ weight (data-free)


def weight_sensitivity(
    sd: dict[str, np.ndarray], tensors: list[TensorInfo], base: QuantSpec, cands: tuple[int, ...]
) -> tuple[dict, dict]:
    """``||Q_b(W) - W||^2`` per channel and per tensor."""
    ch = {t.name: channel_errors(sd[t.name], base, cands) for t in tensors}
    return {k: v.sum(axis=0) for k, v in ch.items()}, ch


# ------------------------------------------------------------------ the interface


def estimate_sensitivity(
    model,
    method: str = "weight",
    data=None,
    candidates=DEFAULT_CANDIDATES,
    base: QuantSpec | None = None,
    *,
    loss_fn: Callable | None = None,
    forward: Callable | None = None,
    tensors: list[TensorInfo] | None = None,
    max_batches: int | None = 8,
    n_samples: int = 32,
    max_per_sample: int = 512,
    measure_max_bits: int | None = 4,
    seed: int = 0,
) -> Sensitivity:
    """Per-tensor and per-channel predicted loss increase at each candidate bit width.

    - ``model``: an ``nn.Module`` (a plain state dict is enough for ``"weight"``).
    - ``data``: iterable of batches: ``(inputs, targets)`` for hessian/fisher, inputs (or
      ``(inputs, anything)``) for output; at most ``max_batches`` are used.
    - ``loss_fn(output, target)``: default cross entropy. ``forward(model, inputs) -> tensor``:
      default ``model(inputs)``.
    - ``base``: the spec whose bit width is varied (scales per channel on axis 0 by default).
    - ``tensors``: which tensors (default: every float tensor with ndim >= 2).
    - ``n_samples``: Hutchinson probe vectors (hessian). ``max_per_sample``: samples (fisher).
    - ``measure_max_bits`` (output): run the model for widths up to this only; wider ones
      follow the layer-local distortion scaled at the widest measured width (None: all).
    """
    if method not in METHODS:
        raise SpecError(f"sensitivity must be one of {', '.join(METHODS)}, got {method!r}")
    cands = check_candidates(candidates)
    base = base or DEFAULT_BASE
    if method != "weight" and not hasattr(model, "named_parameters"):
        raise SpecError(
            f"sensitivity {method!r} runs the model: pass an nn.Module (a state dict allows only 'weight')"
        )
    if tensors is None:
        tensors, _ = select_tensors(model)
    t0 = time.perf_counter()
    info: dict = {}
    if method == "weight":
        tl, cl = weight_sensitivity(float_arrays_of(model), tensors, base, cands)
    elif method == "hessian":
        from .hessian import hessian_sensitivity

        batches = batches_of(data, max_batches)
        tl, cl, info = hessian_sensitivity(
            model, batches, tensors, base, cands, loss_fn or default_loss, forward, n_samples, seed
        )
    elif method == "fisher":
        from .fisher import fisher_sensitivity

        batches = batches_of(data, max_batches)
        tl, cl, info = fisher_sensitivity(
            model, batches, tensors, base, cands, loss_fn or default_loss, forward, max_per_sample
        )
    else:
        from .output import output_sensitivity

        batches = batches_of(data, max_batches)
        tl, cl, info = output_sensitivity(model, batches, tensors, base, cands, forward, measure_max_bits)
    return Sensitivity(
        method=method,
        candidates=cands,
        base=base,
        tensors=tuple(tensors),
        tensor_loss=tl,
        channel_loss=cl,
        seconds=time.perf_counter() - t0,
        info=info,
    )

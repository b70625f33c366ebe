"""Per-tensor task sensitivity for rate allocation: loss per unit squared quantization error.

``"output"`` (unlabelled calibration inputs): every float tensor — weight matrices *and* 1-D
tensors (biases, norm scales, BatchNorm running statistics) — is rounded alone at a probe step
(about ``probe_db`` dB of SQNR) and the mean squared change of the model's output is measured:
``s_t = D_t / ||Q(x_t) - x_t||^2`` (output units² per weight unit²). One forward pass over the
calibration batches per tensor.

``"hessian"`` / ``"fisher"`` (labelled batches): the weight matrices' loss increase at a 4-bit
probe from :func:`nnshare.mixed.estimate_sensitivity` over the same squared error (loss units
per weight unit²); 1-D tensors have no weight there and keep their fine step.

``"weight"`` (no data): no weights at all, i.e. the uniform plan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..quant.fine import step_cap
from ..quant.rate import quantize_tensor
from ..state import model_state
from .sensitivity import METHODS, batches_of, run_model, split_batch
from .tensors import DEFAULT_BASE, channel_errors, select_tensors


@dataclass(frozen=True, eq=False)
class TaskWeights:
    """``weights[name]``: sensitivity ``s_t`` of a float tensor (loss per squared error unit);
    tensors missing from it are sent as the uniform plan sends them. ``channels[name]``: the
    per-channel shares of the tensors whose channels get their own steps
    (:class:`~nnshare.mixed.task_channels.ChannelSteps`). ``seconds``: wall time."""

    method: str
    weights: dict[str, float]
    seconds: float = 0.0
    info: dict = field(default_factory=dict)
    channels: dict = field(default_factory=dict)


def probe_step(x: np.ndarray, probe_db: float) -> float:
    """Step giving about ``probe_db`` dB of SQNR under rounding (at most half max|x|)."""
    x = np.asarray(x, np.float64)
    rms = math.sqrt(float((x**2).mean())) if x.size else 0.0
    if rms == 0:
        return 1.0
    return min(math.sqrt(12.0) * rms * 10 ** (-probe_db / 20), step_cap(x))


def task_weights(
    model,
    method: str = "output",
    data=None,
    *,
    forward: Callable | None = None,
    loss_fn: Callable | None = None,
    max_batches: int | None = 8,
    probe_db: float = 25.0,
    distance: str = "mse",
    progress: Callable | None = None,
    channels: bool = True,
) -> TaskWeights:
    """Sensitivity per float tensor (see module docstring). ``model``: an ``nn.Module`` (a state
    dict allows only ``"weight"``); ``data``: batches as for :func:`estimate_sensitivity`;
    ``distance`` (output): "mse" of the outputs, or "kl" — the mean KL divergence of the softmax
    over the last output axis (classifiers, language models); ``progress(i, n)``: called after
    each tensor; ``channels`` (output): also the per-channel shares from the output Gauss-Newton
    diagonal (:mod:`.task_channels`), kept where they pay for their scales."""
    if distance not in ("mse", "kl"):
        raise SpecError(f"distance must be 'mse' or 'kl', got {distance!r}")
    if method not in METHODS:
        raise SpecError(f"sensitivity must be one of {', '.join(METHODS)}, got {method!r}")
    t0 = time.perf_counter()
    if method == "weight":
        return TaskWeights("weight", {}, 0.0)
    if not hasattr(model, "named_parameters"):
        raise SpecError(f"sensitivity {method!r} runs the model: pass an nn.Module (a state dict "
                        f"allows only 'weight')")
    chans: dict = {}
    if method == "output":
        batches = batches_of(data, max_batches)
        w, info = _output_weights(model, batches, forward, probe_db, distance, progress)
        if channels:
            from .task_channels import choose_channels, output_fisher_diag

            ms = model_state(model)
            emb = {n for n, r in ms.roles.items() if r == "embedding"}  # kept per tensor: not probed
            params = dict(model.named_parameters())
            names = [n for n in w if n in params and n not in emb]
            fd = output_fisher_diag(model, batches, forward, names=names)
            chans = choose_channels(ms.arrays, fd, skip=emb)
    else:
        from .sensitivity import estimate_sensitivity

        quant, _ = select_tensors(model)
        sens = estimate_sensitivity(model, method, data, (4,), DEFAULT_BASE, loss_fn=loss_fn,
                                    forward=forward, tensors=quant, max_batches=max_batches)
        arrays = model_state(model).arrays
        w = {}
        for t in quant:
            sse = float(channel_errors(np.asarray(arrays[t.name], np.float32), DEFAULT_BASE, (4,)).sum())
            if sse > 0:
                w[t.name] = max(float(sens.tensor_loss[t.name][0]), 0.0) / sse
        info = dict(sens.info)
    return TaskWeights(method, w, time.perf_counter() - t0, info, chans)


def _output_weights(model, batches, forward, probe_db, distance, progress):
    import torch

    def dist(y, r):  # summed over the batch
        if distance == "kl":
            lr, ly = torch.log_softmax(r, -1), torch.log_softmax(y, -1)
            return float((lr.exp() * (lr - ly)).sum())
        return float((y - r).pow(2).sum())

    inputs = [split_batch(b, labelled=False) for b in batches]
    st = model_state(model)
    live = model.state_dict(keep_vars=True)
    names = [n for n, a in st.arrays.items() if a.dtype.kind == "f" and a.size and n in live]
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        with torch.no_grad():
            ref = [run_model(model, x, forward).detach().double() for x in inputs]
            n_out = sum(r.numel() for r in ref)
            power = sum(r.pow(2).sum().item() for r in ref) / max(n_out, 1)
            for i, n in enumerate(names):
                target = live[n]
                orig = target.detach().clone()
                a = np.asarray(st.arrays[n], np.float32)
                q = quantize_tensor(a, probe_step(a, probe_db)).dequantize()
                sse = float(((q.astype(np.float64) - a) ** 2).sum())
                if sse > 0:
                    target.data.copy_(torch.from_numpy(q.reshape(a.shape)).to(target.dtype))
                    d = sum(dist(run_model(model, x, forward).double(), r)
                            for x, r in zip(inputs, ref, strict=True))
                    target.data.copy_(orig)
                    out[n] = max(d / n_out / sse, 0.0)
                if progress is not None:
                    progress(i + 1, len(names))
    finally:
        model.train(was_training)
    return out, {"output_power": power, "n_batches": len(inputs), "probe_db": probe_db, "distance": distance}

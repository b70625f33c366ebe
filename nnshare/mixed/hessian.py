"""HAWQ-V2 sensitivity: Hessian trace per tensor and per channel by Hutchinson's estimator.

``Tr(H_block) = E_z[z_block^T (H z)_block]`` with z Rademacher over all parameters at once; ``H z``
is a Hessian-vector product (double backward). One gradient graph per batch serves several
probes. ``Omega_i(b) = 1/2 * Tr(H_i)/n_i * ||Q_b(W_i) - W_i||^2`` (second-order Taylor term
with an isotropic error of the block's average curvature).
"""

from __future__ import annotations

import math

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantSpec
from .sensitivity import run_model, split_batch
from .tensors import TensorInfo, channel_errors, state_dict_of


def params_by_name(model, tensors: list[TensorInfo]) -> list:
    """The trainable parameters behind ``tensors`` (SpecError when one is not a parameter)."""
    named = dict(model.named_parameters())
    missing = [t.name for t in tensors if t.name not in named]
    if missing:
        raise SpecError(
            f"tensor(s) {', '.join(missing[:3])} are not parameters of the model: gradient-based "
            "sensitivity cannot see them (use sensitivity='output' or 'weight')"
        )
    return [named[t.name] for t in tensors]


def hutchinson_diagonal(
    model,
    batches: list,
    params: list,
    loss_fn,
    forward,
    n_samples: int,
    seed: int = 0,
    channel_axis: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per element, the mean over probes of ``z * (H z)`` (its sum over a block estimates the
    block's trace) and, per probe, each parameter's ``z^T H z`` (for error bars).

    Returns (diagonal estimates as float64 arrays shaped like ``params``, list over params of
    per-probe traces: (n_samples,) arrays, or (n_samples, C) per channel along
    ``channel_axis`` when it is given).
    """
    import torch

    if n_samples < 1:
        raise SpecError("n_samples must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    acc = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    traces = [[] for _ in params]
    per_batch = math.ceil(n_samples / len(batches))
    done = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            if done >= n_samples:
                break
            x, y = split_batch(batch, labelled=True)
            loss = loss_fn(run_model(model, x, forward), y)
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params, strict=True)]
            live = [i for i, g in enumerate(grads) if g.requires_grad]
            reps = min(per_batch, n_samples - done)
            for r in range(reps):
                zs = [torch.randint(0, 2, p.shape, generator=gen).to(p.dtype).mul_(2).sub_(1) for p in params]
                if live:
                    hz = torch.autograd.grad(
                        [grads[i] for i in live],
                        [params[i] for i in live],
                        grad_outputs=[zs[i] for i in live],
                        retain_graph=r < reps - 1,
                        allow_unused=True,
                    )
                else:
                    hz = []
                hz_all = [torch.zeros_like(p) for p in params]
                for i, h in zip(live, hz, strict=True):
                    if h is not None:
                        hz_all[i] = h
                for i, (z, h) in enumerate(zip(zs, hz_all, strict=True)):
                    zh = (z * h).detach().double()
                    acc[i] += zh
                    if channel_axis is None or zh.dim() == 0:
                        traces[i].append(float(zh.sum()))
                    else:
                        ax = channel_axis % zh.dim()
                        traces[i].append(zh.movedim(ax, 0).reshape(zh.shape[ax], -1).sum(1).numpy())
                done += 1
    finally:
        model.train(was_training)
    diag = [(a / done).numpy() for a in acc]
    return diag, [np.asarray(t) for t in traces]


def shrink_channel_traces(probes: np.ndarray) -> np.ndarray:
    """Channel traces from (probes, C) Hutchinson samples, shrunk towards the tensor's mean.

    Empirical Bayes: a channel's mean m_c has sampling variance se_c^2; the spread of the true
    traces is tau^2 = max(var_c(m_c) - mean(se_c^2), 0); the estimate is
    w_c m_c + (1 - w_c) mean(m) with w_c = tau^2 / (tau^2 + se_c^2). With one probe, no shrinkage.
    """
    m = probes.mean(axis=0)
    if probes.shape[0] < 2 or m.size < 2:
        return m
    se2 = probes.var(axis=0, ddof=1) / probes.shape[0]
    tau2 = max(float(m.var(ddof=1) - se2.mean()), 0.0)
    denom = tau2 + se2
    w = np.where(denom > 0, tau2 / np.where(denom > 0, denom, 1.0), 1.0)
    return w * m + (1 - w) * m.mean()


def hessian_sensitivity(
    model,
    batches: list,
    tensors: list[TensorInfo],
    base: QuantSpec,
    cands: tuple[int, ...],
    loss_fn,
    forward,
    n_samples: int,
    seed: int,
) -> tuple[dict, dict, dict]:
    """Tensor and channel tables (see module docstring) and info: traces with standard errors."""
    params = params_by_name(model, tensors)
    axis = base.axis if base.granularity == "channel" else None
    diag, probes = hutchinson_diagonal(
        model, batches, params, loss_fn, forward, n_samples, seed, channel_axis=axis
    )
    sd = state_dict_of(model)
    avg = [float(d.sum()) / t.numel for t, d in zip(tensors, diag, strict=True)]
    pos = [a for a in avg if a > 0]
    # A block whose estimated curvature is <= 0 still gets a small positive weight, so the
    # allocator prefers a smaller error when it is free.
    eps = 1e-6 * (float(np.mean(pos)) if pos else 1.0)
    tl, cl, info_tr = {}, {}, {}
    for t, d, a, pr in zip(tensors, diag, avg, probes, strict=True):
        err = channel_errors(sd[t.name], base, cands)
        tl[t.name] = 0.5 * max(a, eps) * err.sum(axis=0)
        pr = pr.reshape(pr.shape[0], -1)  # (probes, C)
        per_channel = shrink_channel_traces(pr) / (t.numel / pr.shape[1])
        cl[t.name] = 0.5 * np.maximum(per_channel, max(a, eps) * 1e-3)[:, None] * err
        tot = pr.sum(axis=1)
        se = float(tot.std(ddof=1) / math.sqrt(tot.size)) if tot.size > 1 else float("nan")
        info_tr[t.name] = {"trace": float(d.sum()), "stderr": se, "avg_trace": a}
    return tl, cl, {"traces": info_tr, "n_samples": int(probes[0].shape[0]) if probes else 0}

"""Fisher sensitivity: ``Omega(b) = 1/2 * sum_j F_j (Q_b(W)_j - W_j)^2`` with the empirical
Fisher diagonal ``F = mean over samples of g^2`` (g: gradient of one sample's loss).

Per-sample gradients come from ``torch.func`` (vmap of grad); a model torch.func cannot trace
falls back to one backward pass per sample.
"""

from __future__ import annotations

import numpy as np

from ..format.spec import QuantSpec
from .hessian import params_by_name
from .sensitivity import run_model, split_batch
from .tensors import TensorInfo, channel_errors, state_dict_of


def _per_sample_sq_grads_vmap(model, names, x, y, loss_fn):
    import torch
    from torch.func import functional_call, grad, vmap

    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def one(sel, xi, yi):
        full = {**params, **sel}
        out = functional_call(model, (full, buffers), (xi.unsqueeze(0),))
        if isinstance(out, tuple | list):
            out = out[0]
        return loss_fn(out, yi.unsqueeze(0))

    sel = {n: params[n] for n in names}
    g = vmap(grad(one), in_dims=(None, 0, 0))(sel, x, y)
    return [torch.sum(g[n].double() ** 2, dim=0) for n in names]


def _per_sample_sq_grads_loop(model, params, x, y, loss_fn, forward):
    import torch

    acc = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    for i in range(len(y)):
        xi = x[i : i + 1] if not isinstance(x, dict) else {k: v[i : i + 1] for k, v in x.items()}
        loss = loss_fn(run_model(model, xi, forward), y[i : i + 1])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        for a, g in zip(acc, gs, strict=True):
            if g is not None:
                a += g.double() ** 2
    return acc


def fisher_diagonal(
    model, batches: list, tensors: list[TensorInfo], loss_fn, forward, max_samples: int
) -> tuple[list[np.ndarray], int]:
    """Mean of squared per-sample gradients for each tensor, and the number of samples used."""
    import torch

    params = params_by_name(model, tensors)
    names = [t.name for t in tensors]
    acc = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    count = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            if count >= max_samples:
                break
            x, y = split_batch(batch, labelled=True)
            take = min(len(y), max_samples - count)
            x = x[:take] if not isinstance(x, dict) else {k: v[:take] for k, v in x.items()}
            y = y[:take]
            sq = None
            if forward is None and torch.is_tensor(x):
                try:
                    sq = _per_sample_sq_grads_vmap(model, names, x, y, loss_fn)
                except Exception:  # noqa: BLE001 - any trace failure: use the exact slow path
                    sq = None
            if sq is None:
                sq = _per_sample_sq_grads_loop(model, params, x, y, loss_fn, forward)
            for a, s in zip(acc, sq, strict=True):
                a += s
            count += take
    finally:
        model.train(was_training)
    return [(a / max(count, 1)).numpy() for a in acc], count


def fisher_sensitivity(
    model,
    batches: list,
    tensors: list[TensorInfo],
    base: QuantSpec,
    cands: tuple[int, ...],
    loss_fn,
    forward,
    max_samples: int,
) -> tuple[dict, dict, dict]:
    """Tensor and channel tables (see module docstring)."""
    diag, count = fisher_diagonal(model, batches, tensors, loss_fn, forward, max_samples)
    sd = state_dict_of(model)
    tl, cl = {}, {}
    for t, f in zip(tensors, diag, strict=True):
        ch = 0.5 * channel_errors(sd[t.name], base, cands, weight=f)
        cl[t.name] = ch
        tl[t.name] = ch.sum(axis=0)
    return tl, cl, {"n_samples": count}

"""LayerNorm refit: after the tensors before a LayerNorm are quantized (embedding tables, a
block's weights), refit its float affine parameters so that its output on the quantized model's
inputs matches the float model's output, by least squares per feature.

``LN(x) = gamma * xhat + beta`` with ``xhat = (x - mean(x)) / sqrt(var(x) + eps)`` over the last
axis. Per feature j, ``(gamma_j, beta_j)`` minimise ``sum_t (gamma_j xhat~_tj + beta_j - y_tj)^2``
over calibration tokens t, with ``xhat~`` from the quantized model and y the float model's
output. The current parameters are one feasible point, so the refit never raises the
calibration error; it absorbs errors every token shares (a quantized table row added to every
token, e.g. BERT's token-type row 0) and per-feature scale drift. The parameters stay float
tensors of the same shape: the stream and the receiver do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..format.errors import SpecError
from .blocks import Stop
from .weights import run


@dataclass(frozen=True)
class Refit:
    """Mean squared LayerNorm output error over calibration tokens and features, before and after."""

    mse_before: float
    mse_after: float


def _hooked(model: nn.Module, name: str, outputs: bool, store: list):
    try:
        m = model.get_submodule(name)
    except AttributeError:
        raise SpecError(f"no module named {name!r}") from None
    if not isinstance(m, nn.LayerNorm) or not m.elementwise_affine or m.bias is None:
        raise SpecError(f"{name!r} is not a LayerNorm with weight and bias (got {type(m).__name__})")

    def keep(v):  # record, then end the forward pass: nothing after the LayerNorm is needed
        store.append(v.detach())
        raise Stop

    if outputs:
        return m, m.register_forward_hook(lambda _m, _a, o: keep(o))
    return m, m.register_forward_pre_hook(lambda _m, a: keep(a[0]))


def _run(model, batch, forward) -> None:
    try:
        run(model, batch, forward)
    except Stop:
        pass


def refit_layernorm(
    model: nn.Module, reference: nn.Module, name: str, batches, forward: Callable | None = None
) -> Refit:
    """Refit ``model``'s LayerNorm ``name`` in place against ``reference`` (the float model, same
    architecture) on ``batches`` (``forward(model, batch)`` runs one; default ``model(batch)``;
    each pass ends at the LayerNorm). Padding tokens, if any, count like the others: calibrate
    on unpadded batches."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    ln, hq = _hooked(model, name, False, xs)
    _, hf = _hooked(reference, name, True, ys)
    if tuple(ln.normalized_shape) != tuple(ln.weight.shape) or ln.weight.dim() != 1:
        hq.remove()
        hf.remove()
        raise SpecError(f"{name!r}: only LayerNorms over the last axis are refitted")
    d = ln.weight.shape[0]
    s = {k: torch.zeros(d, dtype=torch.float64) for k in ("x", "y", "xx", "xy", "yy")}
    n = 0
    try:
        with torch.no_grad():
            for b in batches:
                xs.clear()
                ys.clear()
                _run(model, b, forward)
                _run(reference, b, forward)
                if len(xs) != 1 or len(ys) != 1:
                    raise SpecError(f"{name!r} did not run on a calibration batch")
                x = xs[0].reshape(-1, d).double()
                y = ys[0].reshape(-1, d).double()
                xh = nn.functional.layer_norm(x, (d,), eps=ln.eps)
                s["x"] += xh.sum(0)
                s["y"] += y.sum(0)
                s["xx"] += (xh * xh).sum(0)
                s["xy"] += (xh * y).sum(0)
                s["yy"] += (y * y).sum(0)
                n += x.shape[0]
    finally:
        hq.remove()
        hf.remove()
    if n == 0:
        raise SpecError("no calibration tokens reached the LayerNorm")
    mx, my = s["x"] / n, s["y"] / n
    var = s["xx"] / n - mx * mx
    cov = s["xy"] / n - mx * my
    g0, b0 = ln.weight.detach().double(), ln.bias.detach().double()

    def mse(g, b):  # mean over tokens of (g xh + b - y)^2, per feature, from the sums
        e = g * g * s["xx"] + b * b * n + s["yy"] + 2 * g * b * s["x"] - 2 * g * s["xy"] - 2 * b * s["y"]
        return float(e.sum() / (n * d))

    ok = var > 1e-12 * torch.clamp(s["xx"] / n, min=1e-30)
    g1 = torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), g0)
    b1 = my - g1 * mx
    before, after = mse(g0, b0), mse(g1, b1)
    if after <= before:
        with torch.no_grad():
            ln.weight.copy_(g1.to(ln.weight.dtype))
            ln.bias.copy_(b1.to(ln.bias.dtype))
    else:  # only by float round-off; keep the parameters
        after = before
    return Refit(before, after)

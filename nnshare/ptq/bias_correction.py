"""Bias correction: remove the mean output shift that weight quantization causes.

- Empirical (AIMET): layer by layer in execution order, with all earlier layers already
  quantized and corrected, ``b <- b - E[y_q - y_fp]`` over calibration data (all positions), so
  the shift from earlier layers is absorbed too.
- Analytic (data-free, DFQ): ``E[y_q - y] = (W_q - W) E[x]`` with ``E[x]`` from the BatchNorm
  statistics folded into the previous layer: pre-activation ``u_c ~ N(beta_c, gamma_c^2)``,
  ``E[ReLU(u)] = gamma phi(beta/gamma) + beta Phi(beta/gamma)``, clipped ReLUs by difference,
  identity ``beta``. Convolutions sum the error over the kernel (border padding ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from scipy.stats import norm
from torch import nn

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor
from .patterns import ClippedReLU, chains, get_module, is_depthwise
from .weights import capture, set_weight


def _bias(m: nn.Module, name: str) -> nn.Parameter:
    if m.bias is None:
        raise SpecError(f"layer {name!r} has no bias to correct (fold BatchNorm first, or give it a bias)")
    return m.bias


def _channel_mean(y: list[torch.Tensor], conv: bool) -> torch.Tensor:
    """Mean over every dimension but the channel one (last for Linear outputs, 1 for conv)."""
    tot, n = 0.0, 0
    for t in y:
        t = t.double()
        t = t.movedim(1, -1) if conv else t
        flat = t.reshape(-1, t.shape[-1])
        tot = tot + flat.sum(dim=0)
        n += flat.shape[0]
    return tot / n


def empirical(
    model: nn.Module,
    float_model: nn.Module,
    quantized: Mapping[str, QuantizedTensor],
    batches,
    *,
    forward: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Load ``quantized`` weights ({weight name: tensor}) into ``model`` one layer at a time and
    correct each bias; ``float_model`` is the unquantized twin. Returns {layer: correction}."""
    names = [k[: -len(".weight")] for k in quantized]
    ref = capture(float_model, names, batches, forward, outputs=True)
    order = [n for n in ref.order if n in names] + [n for n in names if n not in ref.order]
    out = {}
    for name in order:
        m = get_module(model, name)
        b = _bias(m, name)
        set_weight(m, quantized[f"{name}.weight"])
        cap = capture(model, [name], batches, forward, outputs=True)
        if not cap.outputs[name]:
            raise SpecError(f"layer {name!r} never ran on the calibration batches")
        conv = not isinstance(m, nn.Linear)
        shift = _channel_mean(cap.outputs[name], conv) - _channel_mean(ref.outputs[name], conv)
        if shift.numel() != b.numel():
            raise SpecError(f"layer {name!r}: cannot find the channel dimension of its output")
        with torch.no_grad():
            b.copy_((b.double() - shift).to(b.dtype))
        out[name] = shift.numpy()
    return out


def expected_relu(mu: np.ndarray, sd: np.ndarray, upper: np.ndarray | None = None) -> np.ndarray:
    """``E[clamp(u, 0, upper)]`` for ``u ~ N(mu, sd^2)`` (upper None: plain ReLU)."""
    sd = np.maximum(sd, 1e-12)

    def relu(m):
        return sd * norm.pdf(m / sd) + m * norm.cdf(m / sd)

    e = relu(mu)
    return e if upper is None else e - relu(mu - upper)


def analytic(
    model: nn.Module, quantized: Mapping[str, QuantizedTensor]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Data-free correction of every quantized layer whose input comes from a layer with folded
    BN statistics through ReLU / ReLU6 / ClippedReLU / identity (Sequential chains). Loads the
    quantized weights. Returns ({layer: correction}, layers skipped for lack of statistics)."""
    feeds = {c.second: c for c in chains(model)}
    out, skipped = {}, []
    for wname, q in quantized.items():
        name = wname[: -len(".weight")]
        m = get_module(model, name)
        ch = feeds.get(name)
        bn = None if ch is None else getattr(get_module(model, ch.first), "_nnshare_bn", None)
        if bn is None:
            set_weight(m, q)
            skipped.append(name)
            continue
        mu, sd = np.asarray(bn["beta"], np.float64), np.abs(np.asarray(bn["gamma"], np.float64))
        act = None if ch.act is None else get_module(model, ch.act)
        if act is None:
            ex = mu
        elif isinstance(act, nn.ReLU6):
            ex = expected_relu(mu, sd, np.full(mu.shape, 6.0))
        elif isinstance(act, ClippedReLU):
            ex = expected_relu(mu, sd, act.upper.double().numpy())
        else:
            ex = expected_relu(mu, sd)
        w = m.weight.detach().double().numpy()
        d = q.dequantize().astype(np.float64) - w
        if is_depthwise(m):
            shift = d.reshape(d.shape[0], -1).sum(axis=1) * ex
        else:
            shift = d.reshape(d.shape[0], d.shape[1], -1).sum(axis=2) @ ex
        b = _bias(m, name)
        set_weight(m, q)
        with torch.no_grad():
            b.copy_((b.double() - torch.from_numpy(shift)).to(b.dtype))
        out[name] = shift
    return out, skipped

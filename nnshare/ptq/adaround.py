"""AdaRound (Nagel et al. 2020): learn, per weight, whether to round down or up.

``W_soft = s * (clamp(floor(W / s) + h(V) + z, qmin, qmax) - z)`` with the rectified sigmoid
``h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1)``, ``zeta = 1.1``, ``gamma = -0.1``.
Per layer, V minimises the reconstruction error of the layer output (after the activation that
follows it in a Sequential, if any) between the float layer on float inputs and the soft-rounded
layer on the inputs of the already-quantized model, plus ``lam * sum(1 - |2 h(V) - 1|^beta)``;
beta is annealed from 20 to 2 (cosine) after a warm start without the regulariser. V starts where
``h(V)`` is the fractional part of ``W / s``, so its hard rounding (``V >= 0``) starts as
round-to-nearest. The final codes are ``floor(W / s) + 1[V >= 0] + z`` on the spec's grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor
from .patterns import following_activation, get_module
from .weights import Grid, SpecLike, capture, grid, layer_specs, sequential, set_weight, weight_of

ZETA, GAMMA = 1.1, -0.1


@dataclass(frozen=True)
class AdaRoundConfig:
    """AIMET's defaults except ``iters`` and ``lr`` (fewer steps, larger rate); ``batch``: rows
    (Linear) or samples (Conv) per step; ``seed`` draws the mini-batches; ``in_order``: inputs
    from the already-quantized model (else the float model's, one forward pass)."""

    iters: int = 500
    lr: float = 5e-2
    reg: float = 0.01
    beta: tuple[float, float] = (20.0, 2.0)
    warm_start: float = 0.2
    batch: int = 256
    seed: int = 0
    in_order: bool = True

    def __post_init__(self) -> None:
        if self.iters < 0 or self.batch < 1 or self.lr <= 0 or self.reg < 0:
            raise SpecError("AdaRound needs iters >= 0, batch >= 1, lr > 0 and reg >= 0")
        if not 0.0 <= self.warm_start < 1.0:
            raise SpecError(f"warm_start must be in [0, 1), got {self.warm_start}")


def h_of(v: torch.Tensor) -> torch.Tensor:
    """Rectified sigmoid."""
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def init_v(frac: torch.Tensor) -> torch.Tensor:
    """V with ``h(V) = frac`` (frac in [0, 1))."""
    return -torch.log((ZETA - GAMMA) / (frac - GAMMA) - 1.0)


def beta_at(t: int, cfg: AdaRoundConfig) -> float | None:
    """The regulariser's exponent at step t (None during the warm start)."""
    start = int(cfg.warm_start * cfg.iters)
    if t < start:
        return None
    rel = (t - start) / max(1, cfg.iters - start)
    b0, b1 = cfg.beta
    return b1 + 0.5 * (b0 - b1) * (1 + math.cos(math.pi * rel))


class SoftRound:
    """The learnable rounding of one weight tensor on its grid."""

    def __init__(self, w: np.ndarray, g: Grid):
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.g = g
        self.s, self.z, self.lo, self.hi = t(g.scale), t(g.zero), t(g.qmin), t(g.qmax)
        u = t(w) / self.s
        self.floor = torch.floor(u)
        self.v = nn.Parameter(init_v(u - self.floor))

    def weight(self, hard: bool = False) -> torch.Tensor:
        h = (self.v >= 0).float() if hard else h_of(self.v)
        q = torch.clamp(self.floor + h + self.z, self.lo, self.hi)
        return (q - self.z) * self.s

    def codes(self) -> np.ndarray:
        q = torch.clamp(self.floor + (self.v >= 0).float() + self.z, self.lo, self.hi)
        return q.detach().numpy().astype(np.float64)

    def reg(self, beta: float) -> torch.Tensor:
        return (1 - (2 * h_of(self.v) - 1).abs().pow(beta)).sum()


def _apply(m: nn.Module, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    b = None if m.bias is None else m.bias.detach()
    if isinstance(m, nn.Linear):
        return F.linear(x, w, b)
    conv = F.conv1d if isinstance(m, nn.Conv1d) else F.conv2d
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        raise SpecError("convolutions with string padding or non-zero padding modes are not supported")
    return conv(x, w, b, m.stride, m.padding, m.dilation, m.groups)


def optimize_layer(
    m: nn.Module,
    spec,
    x_q: torch.Tensor,
    x_fp: torch.Tensor,
    act: nn.Module | None,
    cfg: AdaRoundConfig = AdaRoundConfig(),
    g: Grid | None = None,
) -> QuantizedTensor:
    """AdaRound one layer: ``x_q`` its inputs in the quantized model, ``x_fp`` in the float model
    (same first dimension: rows for Linear, samples for Conv); ``g``: the grid (default: the
    spec's grid of the weight)."""
    w = weight_of(m)
    sr = SoftRound(w, grid(w, spec) if g is None else g)
    f = act if act is not None else (lambda y: y)
    if isinstance(m, nn.Linear):
        x_q, x_fp = x_q.reshape(-1, x_q.shape[-1]), x_fp.reshape(-1, x_fp.shape[-1])
    if x_q.shape != x_fp.shape:
        raise SpecError("float and quantized inputs of a layer differ in shape")
    w_fp = m.weight.detach().float()
    with torch.no_grad():
        target_all = f(_apply(m, w_fp, x_fp))
    opt = torch.optim.Adam([sr.v], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = x_q.shape[0]
    for t in range(cfg.iters):
        idx = torch.randint(0, n, (min(cfg.batch, n),), generator=gen)
        pred = f(_apply(m, sr.weight(), x_q[idx]))
        d = (pred - target_all[idx]).reshape(idx.numel(), -1)
        loss = d.pow(2).sum(dim=1).mean()
        beta = beta_at(t, cfg)
        if beta is not None and cfg.reg > 0:
            loss = loss + cfg.reg * sr.reg(beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sr.g.tensor(sr.codes())


def adaround(
    model: nn.Module,
    spec: SpecLike,
    batches,
    *,
    forward: Callable | None = None,
    config: AdaRoundConfig = AdaRoundConfig(),
    names: list[str] | None = None,
    grids: Mapping[str, Grid] | None = None,
) -> dict[str, QuantizedTensor]:
    """AdaRound every layer the spec covers, in place, in execution order. Returns
    {weight name: QuantizedTensor}; the model then holds the dequantized weights. ``grids``:
    {layer name: Grid} fixed in advance (e.g. rate-control steps) instead of the spec's."""
    specs = layer_specs(model, spec, names)
    acts = following_activation(model)
    fp = capture(model, list(specs), batches, forward)  # float inputs, before any change
    out: dict[str, QuantizedTensor] = {}

    def process(name, inputs):
        m = get_module(model, name)
        act = get_module(model, acts[name]) if name in acts else None
        flat = (lambda x: x.reshape(-1, x.shape[-1])) if isinstance(m, nn.Linear) else (lambda x: x)
        x_q = torch.cat([flat(x.float()) for x in inputs])
        x_fp = torch.cat([flat(x.float()) for x in fp.inputs[name]])
        q = optimize_layer(m, specs[name], x_q, x_fp, act, config, None if grids is None else grids[name])
        set_weight(m, q)
        out[f"{name}.weight" if name else "weight"] = q

    sequential(model, list(specs), batches, forward, process, config.in_order)
    return out

"""GPTQ (Frantar et al. 2022): weight rounding with Hessian-based column-wise error compensation.

For a layer ``y = W x`` and calibration inputs X (N, in), ``H = 2 X^T X / N``. Columns are
quantized one at a time (optionally in order of decreasing ``diag(H)``, "act-order"); the rounding
error of column j is spread over the not yet quantized columns through the upper Cholesky factor
of ``H^-1``, which minimises ``||(W - W_hat) X||^2`` greedily. Work proceeds in blocks of
``block_size`` columns (lazy batch updates).

The grid (scales and zero points per channel or per group of the spec, from its range method) is
fixed before GPTQ runs, so act-order and groups combine without reordering groups and the result
is an ordinary QuantizedTensor. With ``guard`` (default), each output row keeps nearest rounding
where that has the smaller calibration error ``dW_r H dW_r^T`` (rows are independent given H),
so GPTQ never does worse than nearest on its calibration data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor
from .clip import clip_grid
from .descent import descend
from .patterns import get_module, is_depthwise
from .weights import Grid, SpecLike, grid, layer_specs, patches, sequential, set_weight, weight_of


@dataclass(frozen=True)
class GPTQConfig:
    """``damp``: fraction of mean(diag H) added to the diagonal; ``act_order``: columns by
    decreasing diag(H); ``block_size``: columns per lazy update; ``guard``: see module docs;
    ``in_order``: each layer's Hessian from the partly quantized model (else all from the float
    model, one forward pass); ``float_target`` (with ``in_order``): minimise ``||W X - W_hat X~||``
    with X the float model's inputs and X~ the partly quantized model's (the weight is first moved
    to the least-squares solution (:func:`drift_target`), which absorbs the drift of the earlier
    layers, then GPTQ-rounded on X~'s Hessian, on the grid of W); ``bias_correct``: add the mean output error
    ``W mean(X) - W_hat mean(X~)`` to the layer's bias (layers that have one); ``clip``: each
    layer's grid from the clipping search weighted by diag(H) (:mod:`.clip`) on the weight GPTQ
    rounds, instead of the spec's range method (not with fixed ``grids``); ``descent``: sweeps of
    coordinate descent on the codes after GPTQ (:mod:`.descent`, on the damped Hessian)."""

    damp: float = 0.01
    act_order: bool = True
    block_size: int = 128
    guard: bool = True
    in_order: bool = True
    float_target: bool = False
    bias_correct: bool = False
    clip: bool = False
    descent: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.damp <= 1.0:
            raise SpecError(f"damp must be in [0, 1], got {self.damp}")
        if self.descent < 0:
            raise SpecError(f"descent must be >= 0 sweeps, got {self.descent}")
        if self.block_size < 1:
            raise SpecError(f"block_size must be >= 1, got {self.block_size}")


def gptq_codes(
    w: np.ndarray, h: np.ndarray, scale, zero, qmin, qmax, cfg: GPTQConfig = GPTQConfig()
) -> np.ndarray:
    """Integer codes (float64 array, rows x cols) for ``w`` (rows, cols) given the input Hessian
    ``h`` (cols, cols) and the grid broadcast to every element (arrays of w's shape)."""
    W = torch.tensor(w, dtype=torch.float64)
    H = torch.tensor(h, dtype=torch.float64).clone()
    S, Z, LO, HI = (torch.as_tensor(np.asarray(a, np.float64)) for a in (scale, zero, qmin, qmax))
    cols = W.shape[1]
    dead = torch.diag(H) <= 0
    H[dead, dead] = 1.0
    perm = torch.argsort(torch.diag(H), descending=True) if cfg.act_order else torch.arange(cols)
    W, S, Z, LO, HI = (a[:, perm] for a in (W, S, Z, LO, HI))
    H = H[perm][:, perm]
    H += cfg.damp * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=torch.float64)
    try:
        L = torch.linalg.cholesky(H)
        U = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    except RuntimeError:
        raise SpecError("the layer's input Hessian is not positive definite; raise damp") from None
    # the column loop works on the transposed problem in float32: column j is row j, contiguous
    Wt, St, Zt, LOt, HIt = (a.T.contiguous().float() for a in (W, S, Z, LO, HI))
    U = U.float()
    diag = torch.diagonal(U).tolist()
    Qt = torch.zeros_like(Wt)
    for i1 in range(0, cols, cfg.block_size):
        i2 = min(i1 + cfg.block_size, cols)
        W1 = Wt[i1:i2].clone()
        E1 = torch.empty_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            j = i1 + i
            wc = W1[i]
            q = torch.clamp(torch.round(wc / St[j]) + Zt[j], LOt[j], HIt[j])
            Qt[j] = q
            err = (wc - (q - Zt[j]) * St[j]) / diag[j]
            W1[i:].addr_(U1[i, i:], err, alpha=-1.0)
            E1[i] = err
        if i2 < cols:
            Wt[i2:].addmm_(U[i1:i2, i2:].T, E1, alpha=-1.0)
    inv = torch.argsort(perm)
    return Qt.T[:, inv].double().numpy()


def damped(h: np.ndarray, damp: float) -> np.ndarray:
    """``H + damp * mean(diag H) I`` (the objective GPTQ minimises)."""
    return h + damp * np.mean(np.diag(h)) * np.eye(h.shape[0])


def hessian_weights(h: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """diag(H) as per-element weights of a weight of ``shape`` (out, ...): one row (1, k) for a
    dense layer's H (k, k), one row per channel (out, k) for a depthwise layer's (out, k, k)."""
    d = np.einsum("...kk->...k", h)
    d = d[None, :] if d.ndim == 1 else d
    return np.broadcast_to(d, (shape[0], d.shape[-1])).reshape(shape[0], *shape[1:])


def row_errors(w: np.ndarray, w_hat: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per output row ``(w - w_hat) H (w - w_hat)^T`` (calibration output error, float64)."""
    d = (w_hat - w).astype(np.float64)
    return ((d @ h) * d).sum(axis=1)


def gptq_tensor(
    w: np.ndarray, h: np.ndarray, spec, cfg: GPTQConfig = GPTQConfig(), g: Grid | None = None
) -> QuantizedTensor:
    """GPTQ-rounded QuantizedTensor of a 2-D-viewable weight ``w`` (out, ...) with input Hessian
    ``h`` over ``w.reshape(out, -1)``'s columns, or one Hessian per row (out, k, k). ``g``: the
    grid (default: the spec's grid of ``w``)."""
    g = grid(w, spec) if g is None else g
    rows = w.shape[0]
    W = w.reshape(rows, -1).astype(np.float64)
    parts = [a.reshape(rows, -1) for a in (g.scale, g.zero, g.qmin, g.qmax)]
    if h.ndim == 3:  # depthwise: every channel sees its own inputs
        codes = np.concatenate(
            [gptq_codes(W[r : r + 1], h[r], *(p[r : r + 1] for p in parts), cfg) for r in range(rows)]
        )
    else:
        codes = gptq_codes(W, h, *parts, cfg)
    if cfg.descent:
        if h.ndim == 3:  # one row per channel, each with its own Hessian
            one = [slice(r, r + 1) for r in range(rows)]
            codes = np.concatenate([
                descend(codes[s], W[s], damped(h[r], cfg.damp), *(p[s] for p in parts), sweeps=cfg.descent)
                for r, s in enumerate(one)
            ])
        else:
            codes = descend(codes, W, damped(h, cfg.damp), *parts, sweeps=cfg.descent)
    if cfg.guard:
        near = g.nearest(w).reshape(rows, -1)
        deq = lambda c: (c - parts[1]) * parts[0]  # noqa: E731
        if h.ndim == 3:
            e_g = np.array([row_errors(W[r : r + 1], deq(codes)[r : r + 1], h[r])[0] for r in range(rows)])
            e_n = np.array([row_errors(W[r : r + 1], deq(near)[r : r + 1], h[r])[0] for r in range(rows)])
        else:
            e_g, e_n = row_errors(W, deq(codes), h), row_errors(W, deq(near), h)
        codes = np.where((e_n < e_g)[:, None], near, codes)
    return g.tensor(codes.reshape(w.shape))


def _rows(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Input rows: (N, k) for a dense layer, (C, N, k) for a depthwise convolution."""
    return patches_depthwise(m, x) if is_depthwise(m) else patches(m, x)


def statistics(m: nn.Module, inputs: list[torch.Tensor], float_inputs: list[torch.Tensor] | None = None):
    """``(H, C, mean, float_mean)`` of a layer: ``H = 2 X~^T X~ / N`` over the inputs X~, the cross
    term ``C = 2 X~^T X / N`` with the float inputs X (None without them), and the mean input rows
    (k,) of each; depthwise layers get a leading channel axis on all four."""
    ein = "cnk,cnl->ckl" if is_depthwise(m) else "nk,nl->kl"
    ax = 1 if is_depthwise(m) else 0
    h = c = mu = muf = 0.0
    n = 0
    for i, x in enumerate(inputs):  # products of one batch in float32, sums over batches in float64
        p = _rows(m, x).float()
        h = h + torch.einsum(ein, p, p).double()
        mu = mu + p.double().sum(ax)
        if float_inputs is not None:
            pf = _rows(m, float_inputs[i]).float()
            c = c + torch.einsum(ein, p, pf).double()
            muf = muf + pf.double().sum(ax)
        n += p.shape[ax]
    n = max(n, 1)
    if float_inputs is None:
        return (2.0 * h / n).numpy(), None, (mu / n).numpy(), None
    return (2.0 * h / n).numpy(), (2.0 * c / n).numpy(), (mu / n).numpy(), (muf / n).numpy()


def drift_target(w: np.ndarray, h: np.ndarray, c: np.ndarray, damp: float) -> np.ndarray:
    """``W* = W + W (C^T - H) (H + damp * mean(diag H) I)^-1`` (w reshaped (out, k); h, c (k, k)
    or per channel (out, k, k)): the float weight that best maps the drifted inputs to the float
    outputs (``W C^T H^-1`` undamped), the damping pulling it toward W, not toward zero."""
    rows = w.shape[0]
    W = w.reshape(rows, -1).astype(np.float64)
    if h.ndim == 2:
        hd = h + damp * np.mean(np.diag(h)) * np.eye(h.shape[0])
        return (W + np.linalg.solve(hd, (c - h) @ W.T).T).reshape(w.shape)  # H symmetric
    out = np.empty_like(W)
    for r in range(rows):
        hd = h[r] + damp * np.mean(np.diag(h[r])) * np.eye(h.shape[1])
        out[r] = W[r] + np.linalg.solve(hd, (c[r] - h[r]) @ W[r])
    return out.reshape(w.shape)


def hessian(m: nn.Module, inputs: list[torch.Tensor]) -> np.ndarray:
    """``2 X^T X / N`` of a layer's inputs (Linear / Conv); (C, k, k) per channel for depthwise."""
    if is_depthwise(m):
        acc, n = 0.0, 0
        for x in inputs:
            p = patches_depthwise(m, x)  # (C, rows, k)
            acc = acc + torch.einsum("cnk,cnl->ckl", p, p)
            n += p.shape[1]
        return (2.0 * acc / max(n, 1)).numpy()
    acc, n = 0.0, 0
    for x in inputs:
        p = patches(m, x).double()
        acc = acc + p.T @ p
        n += p.shape[0]
    return (2.0 * acc / max(n, 1)).numpy()


def patches_depthwise(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(C, N * L, k) input patches of a depthwise convolution, channel by channel."""
    c = m.in_channels
    if isinstance(m, nn.Conv1d):
        x = x.unsqueeze(2)
        k, d, p, s = (1, *m.kernel_size), (1, *m.dilation), (0, *m.padding), (1, *m.stride)
    else:
        k, d, p, s = m.kernel_size, m.dilation, m.padding, m.stride
    u = torch.nn.functional.unfold(x.double(), k, d, p, s)  # (N, C * kk, L)
    kk = u.shape[1] // c
    return u.reshape(u.shape[0], c, kk, -1).permute(1, 0, 3, 2).reshape(c, -1, kk)


def gptq(
    model: nn.Module,
    spec: SpecLike,
    batches,
    *,
    forward: Callable | None = None,
    config: GPTQConfig = GPTQConfig(),
    names: list[str] | None = None,
    grids: Mapping[str, Grid] | None = None,
) -> dict[str, QuantizedTensor]:
    """GPTQ every layer weight the spec covers, in place, in execution order on the inputs of
    the partly quantized model. Returns {weight name: QuantizedTensor}; the model holds the
    dequantized weights. ``forward(model, batch)`` runs a batch (default ``model(batch)``).
    ``grids``: {layer name: Grid} fixed in advance (e.g. rate-control steps) instead of the spec's."""
    specs = layer_specs(model, spec, names)
    out: dict[str, QuantizedTensor] = {}

    with_float = config.in_order and (config.float_target or config.bias_correct)
    if (config.float_target or config.bias_correct) and not config.in_order:
        raise SpecError("float_target and bias_correct need in_order=True")
    if config.clip and grids is not None:
        raise SpecError("clip searches each layer's grid; it cannot be combined with fixed grids")

    def process(name, inputs, float_inputs=None):
        m = get_module(model, name)
        w = weight_of(m)
        h, c, mu, muf = statistics(m, inputs, float_inputs)
        target = drift_target(w, h, c, config.damp) if config.float_target else w
        if config.clip:
            g = clip_grid(target, specs[name], hessian_weights(h, w.shape))
        else:  # the grid of W, not W*
            g = grids[name] if grids is not None else grid(w, specs[name])
        q = gptq_tensor(target.astype(np.float32), h, specs[name], config, g)
        set_weight(m, q)
        if config.bias_correct and getattr(m, "bias", None) is not None:
            rows = w.shape[0]
            wf, wq = w.reshape(rows, -1).astype(np.float64), q.dequantize().reshape(rows, -1)
            if mu.ndim == 2:  # depthwise: one mean row per channel
                delta = (wf * muf).sum(1) - (wq * mu).sum(1)
            else:
                delta = wf @ muf - wq @ mu
            with torch.no_grad():
                m.bias.add_(torch.from_numpy(delta).to(m.bias.dtype))
        out[f"{name}.weight" if name else "weight"] = q

    sequential(model, list(specs), batches, forward, process, config.in_order, with_float)
    return out

"""BatchNorm folding into the preceding Linear / Conv, and backing it out again.

Folding (per output channel c, ``k_c = gamma_c / sqrt(var_c + eps)``)::

    W'_c = k_c W_c,   b'_c = k_c (b_c - mean_c) + beta_c

and the BatchNorm becomes ``nn.Identity``. The folded layer remembers the BN's output statistics
(mean ``beta``, standard deviation ``|gamma|``) as the attribute ``_nnshare_bn`` (not in the state
dict) as ``{"gamma", "beta"}``; cross-layer equalization divides both by its channel scales,
bias absorption shifts ``beta``, and analytic bias correction reads them.

Backing out (:func:`unfold_batchnorm`) restores the BatchNorm modules for a receiver that keeps
them: ``W = W' / k``, ``b = (b' - beta) / k + mean``. A quantized folded weight stays quantized:
its codes are kept and each channel's scale is divided by ``|k_c|`` (codes are negated where
``k_c < 0``), so the BN architecture is sent at the same bit width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor, scale_shape
from .patterns import BN_TYPES, bn_pairs, check_layer, get_module, set_module


@dataclass(frozen=True, eq=False)
class Fold:
    """One folded BatchNorm: its module names, class and parameters (float64 numpy, per channel)."""

    layer: str
    bn: str
    bn_type: str
    mean: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float
    had_bias: bool

    @property
    def k(self) -> np.ndarray:
        """Per-channel factor ``gamma / sqrt(var + eps)``."""
        return self.gamma / np.sqrt(self.var + self.eps)


def _np(t: torch.Tensor | None, n: int, fill: float) -> np.ndarray:
    return np.full(n, fill) if t is None else t.detach().double().cpu().numpy().copy()


def fold_batchnorm(model: nn.Module, pairs: list[tuple[str, str]] | None = None) -> list[Fold]:
    """Fold every BatchNorm into its layer, in place (``pairs``: explicit (layer, bn) names;
    default: each BN directly after a layer in a Sequential). Returns what was folded.

    The model must be in eval mode semantics: running statistics are used.
    """
    pairs = bn_pairs(model) if pairs is None else pairs
    folds = []
    for lname, bname in pairs:
        layer, bn = get_module(model, lname), get_module(model, bname)
        check_layer(layer, lname)
        if not isinstance(bn, BN_TYPES):
            raise SpecError(f"module {bname!r} is a {type(bn).__name__}, not a BatchNorm")
        if bn.running_mean is None or bn.running_var is None:
            raise SpecError(f"BatchNorm {bname!r} tracks no running statistics; it cannot be folded")
        c = bn.num_features
        if layer.weight.shape[0] != c:
            raise SpecError(f"BatchNorm {bname!r} has {c} channels, layer {lname!r} has a different number")
        f = Fold(
            layer=lname,
            bn=bname,
            bn_type=type(bn).__name__,
            mean=_np(bn.running_mean, c, 0.0),
            var=_np(bn.running_var, c, 1.0),
            gamma=_np(bn.weight if bn.affine else None, c, 1.0),
            beta=_np(bn.bias if bn.affine else None, c, 0.0),
            eps=float(bn.eps),
            had_bias=layer.bias is not None,
        )
        k = f.k
        with torch.no_grad():
            w = layer.weight.double()
            shape = (-1,) + (1,) * (w.dim() - 1)
            layer.weight.copy_((w * torch.from_numpy(k).view(shape)).to(layer.weight.dtype))
            b = np.zeros(c) if layer.bias is None else layer.bias.detach().double().numpy()
            nb = torch.from_numpy(k * (b - f.mean) + f.beta).to(layer.weight.dtype)
            if layer.bias is None:
                layer.bias = nn.Parameter(nb)
            else:
                layer.bias.copy_(nb)
        layer._nnshare_bn = {"gamma": f.gamma.copy(), "beta": f.beta.copy()}
        set_module(model, bname, nn.Identity())
        folds.append(f)
    return folds


def _unfold_quantized(q: QuantizedTensor, k: np.ndarray, name: str) -> QuantizedTensor:
    spec = q.spec
    if spec.granularity == "tensor" or spec.axis % len(q.shape) != 0 and spec.granularity == "channel":
        raise SpecError(f"{name!r}: backing out BN needs scales per output channel (axis 0) or per group")
    if spec.granularity == "group" and spec.axis % len(q.shape) == 0:
        raise SpecError(f"{name!r}: backing out BN needs groups along an input axis, not axis 0")
    sshape = scale_shape(q.shape, spec)
    kk = np.abs(k).reshape((-1,) + (1,) * (len(sshape) - 1)).astype(np.float64)
    scale = (q.params["scale"].astype(np.float64) / kk).astype(np.float32)
    codes = q.codes.copy()
    params = {"scale": scale}
    neg = (k < 0).reshape((-1,) + (1,) * (codes.ndim - 1))
    if spec.symmetric:
        if np.any(neg & (codes == spec.qmin)):
            raise SpecError(
                f"{name!r}: a negative BN gamma would negate code {spec.qmin}; use restricted=True"
            )
        codes = np.where(neg, -codes, codes)
    else:
        zp = q.params["zero_point"]
        qmax = spec.qmax
        codes = np.where(neg, qmax - codes, codes)
        zneg = (k < 0).reshape((-1,) + (1,) * (zp.ndim - 1))
        params["zero_point"] = np.where(zneg, qmax - zp, zp).astype(np.int32)
    return QuantizedTensor(codes=codes.astype(np.int32), params=params, spec=spec, shape=q.shape)


def unfold_batchnorm(
    model: nn.Module, folds: list[Fold], quantized: dict[str, QuantizedTensor] | None = None
) -> dict[str, QuantizedTensor]:
    """Restore the folded BatchNorms in place, turning each layer's weights and bias back: the
    float function is unchanged. The BN affine is the folded one as later transforms changed it
    (CLE scales, absorbed bias); a layer that had no bias keeps one only if it is now non-zero.
    ``quantized``: weights quantized in the folded model (by state-dict name); returns them
    rescaled for the unfolded model (the other entries unchanged), and the model's weights are
    set to their dequantized values."""
    quantized = dict(quantized or {})
    for f in reversed(folds):
        layer = get_module(model, f.layer)
        if not isinstance(get_module(model, f.bn), nn.Identity):
            raise SpecError(f"module {f.bn!r} is not the Identity left by folding")
        eff = getattr(layer, "_nnshare_bn", {"gamma": f.gamma, "beta": f.beta})
        gamma, beta = np.asarray(eff["gamma"], np.float64), np.asarray(eff["beta"], np.float64)
        k = gamma / np.sqrt(f.var + f.eps)
        wname = f"{f.layer}.weight" if f.layer else "weight"
        with torch.no_grad():
            shape = (-1,) + (1,) * (layer.weight.dim() - 1)
            if wname in quantized:
                quantized[wname] = _unfold_quantized(quantized[wname], k, wname)
                w = torch.from_numpy(quantized[wname].dequantize())
            else:
                w = (layer.weight.double() / torch.from_numpy(k).view(shape)).float()
            layer.weight.copy_(w.to(layer.weight.dtype))
            b = (layer.bias.detach().double().numpy() - beta) / k + f.mean
            if f.had_bias or np.abs(b).max(initial=0.0) > 1e-6 * (1.0 + np.abs(f.mean).max(initial=0.0)):
                layer.bias.copy_(torch.from_numpy(b).to(layer.bias.dtype))  # kept if now non-zero
            else:
                layer.bias = None
        c = f.mean.size
        bn = getattr(nn, f.bn_type)(c, eps=f.eps)
        with torch.no_grad():
            bn.running_mean.copy_(torch.from_numpy(f.mean))
            bn.running_var.copy_(torch.from_numpy(f.var))
            bn.weight.copy_(torch.from_numpy(gamma))
            bn.bias.copy_(torch.from_numpy(beta))
        bn.eval()
        set_module(model, f.bn, bn)
        if hasattr(layer, "_nnshare_bn"):
            del layer._nnshare_bn
    return quantized

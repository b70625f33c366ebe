"""Cross-layer equalization (DFQ, Nagel et al. 2019) and bias absorption, in place.

For a chain ``layer1 -> f -> layer2`` with ``f`` positively homogeneous (ReLU, identity; ReLU6
becomes a :class:`~.patterns.ClippedReLU` whose per-channel bound follows the scale, so the float
function stays the same), channel ``i`` of layer1's output is divided by
``s_i = sqrt(r1_i / r2_i)`` and layer2's matching input channel multiplied by it, where ``r1_i``
is the largest |weight| of layer1's output channel i and ``r2_i`` that of layer2's input channel
i. Both ranges become ``sqrt(r1_i r2_i)``. Depthwise convolutions take part as either layer, so
conv -> depthwise -> conv blocks equalize by iterating over the pairs until the scales settle.

Bias absorption moves ``c_i = max(0, beta_i - 3 |gamma_i|)`` (from the folded BatchNorm's output
statistics) out of layer1's bias into layer2's: ``ReLU(x) = ReLU(x - c) + c`` where ``x >= c``.
Through an identity ``c_i = beta_i``, exactly. With zero-padded convolutions as layer2 the border
outputs see the absorbed constant through fewer taps (as in AIMET); elsewhere the function holds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from .patterns import (
    ACT_TYPES,
    BN_TYPES,
    Chain,
    ClippedReLU,
    check_layer,
    get_module,
    is_depthwise,
    set_module,
)


def _check(model: nn.Module, ch: Chain) -> tuple[nn.Module, nn.Module]:
    l1, l2 = get_module(model, ch.first), get_module(model, ch.second)
    check_layer(l1, ch.first)
    check_layer(l2, ch.second)
    if ch.bn is not None and isinstance(get_module(model, ch.bn), BN_TYPES):
        raise SpecError(f"BatchNorm {ch.bn!r} sits between {ch.first!r} and {ch.second!r}: fold it first")
    if ch.act is not None and not isinstance(get_module(model, ch.act), ACT_TYPES):
        raise SpecError(f"activation {ch.act!r} is not ReLU/ReLU6: it is not scale-equivariant")
    n_in = l2.weight.shape[0] if is_depthwise(l2) else l2.weight.shape[1]
    if l1.weight.shape[0] != n_in:
        raise SpecError(f"{ch.first!r} has {l1.weight.shape[0]} outputs, {ch.second!r} {n_in} inputs")
    return l1, l2


def _in_ranges(l2: nn.Module) -> torch.Tensor:
    w = l2.weight.detach().double().abs()
    if is_depthwise(l2):
        return w.reshape(w.shape[0], -1).amax(dim=1)
    return w.transpose(0, 1).reshape(w.shape[1], -1).amax(dim=1)


def _scale_in(l2: nn.Module, s: torch.Tensor) -> None:
    w = l2.weight
    shape = (-1,) + (1,) * (w.dim() - 1) if is_depthwise(l2) else (1, -1) + (1,) * (w.dim() - 2)
    w.copy_((w.double() * s.view(shape)).to(w.dtype))


def _scale_out(l1: nn.Module, s: torch.Tensor) -> None:
    w = l1.weight
    w.copy_((w.double() / s.view((-1,) + (1,) * (w.dim() - 1))).to(w.dtype))
    if l1.bias is not None:
        l1.bias.copy_((l1.bias.double() / s).to(l1.bias.dtype))
    bn = getattr(l1, "_nnshare_bn", None)
    if bn is not None:
        sn = s.numpy()
        bn["gamma"], bn["beta"] = bn["gamma"] / sn, bn["beta"] / sn


def _scale_act(model: nn.Module, name: str | None, s: torch.Tensor) -> None:
    if name is None:
        return
    act = get_module(model, name)
    if isinstance(act, nn.ReLU6):
        set_module(model, name, ClippedReLU((6.0 / s).float()))
    elif isinstance(act, ClippedReLU):
        act.upper.copy_((act.upper.double() / s).float())


def equalize_pair(model: nn.Module, ch: Chain) -> np.ndarray:
    """Equalize one chain in place; returns the channel scales ``s`` applied (float64)."""
    l1, l2 = _check(model, ch)
    with torch.no_grad():
        r1 = l1.weight.detach().double().abs().reshape(l1.weight.shape[0], -1).amax(dim=1)
        r2 = _in_ranges(l2)
        ok = (r1 > 0) & (r2 > 0)
        s = torch.where(ok, torch.sqrt(r1 / torch.where(ok, r2, 1.0)), torch.ones_like(r1))
        _scale_out(l1, s)
        _scale_in(l2, s)
        _scale_act(model, ch.act, s)
    return s.numpy()


def equalize(
    model: nn.Module, chains: list[Chain] | None = None, max_iter: int = 20, tol: float = 1e-4
) -> list[Chain]:
    """Cross-layer equalization of every chain (default: found in the model's Sequentials, see
    :mod:`.patterns`), iterated until no scale moves by more than ``tol``. Returns the chains."""
    from .patterns import chains as find_chains

    chains = find_chains(model) if chains is None else chains
    for ch in chains:
        _check(model, ch)
    for _ in range(max_iter):
        moved = 0.0
        for ch in chains:
            moved = max(moved, float(np.abs(np.log(equalize_pair(model, ch))).max(initial=0.0)))
        if moved < tol:
            break
    return chains


def absorb_bias(
    model: nn.Module, chains: list[Chain] | None = None, n_std: float = 3.0
) -> dict[str, np.ndarray]:
    """Bias absorption for chains whose first layer carries folded BN statistics (others are
    skipped). Returns the absorbed vector ``c`` per first-layer name."""
    from .patterns import chains as find_chains

    chains = find_chains(model) if chains is None else chains
    out = {}
    for ch in chains:
        l1, l2 = _check(model, ch)
        bn = getattr(l1, "_nnshare_bn", None)
        if bn is None or l1.bias is None:
            continue
        act = None if ch.act is None else get_module(model, ch.act)
        if act is None:
            c = bn["beta"].copy()
        else:
            c = np.maximum(0.0, bn["beta"] - n_std * np.abs(bn["gamma"]))
        if not np.any(c > 0) and act is not None:
            continue
        ct = torch.from_numpy(c)
        with torch.no_grad():
            l1.bias.copy_((l1.bias.double() - ct).to(l1.bias.dtype))
            w2 = l2.weight.detach().double()
            if is_depthwise(l2):
                add = w2.reshape(w2.shape[0], -1).sum(dim=1) * ct
            else:
                add = w2.reshape(w2.shape[0], w2.shape[1], -1).sum(dim=2) @ ct
            if l2.bias is None:
                l2.bias = nn.Parameter(torch.zeros(w2.shape[0], dtype=l2.weight.dtype))
            l2.bias.copy_((l2.bias.double() + add).to(l2.bias.dtype))
            if isinstance(act, nn.ReLU6):
                set_module(model, ch.act, ClippedReLU(torch.from_numpy(6.0 - c).float()))
            elif isinstance(act, ClippedReLU):
                act.upper.copy_((act.upper.double() - ct).float())
        bn["beta"] = bn["beta"] - c
        out[ch.first] = c
    return out

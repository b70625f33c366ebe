"""Layer patterns found without tracing: consecutive children of ``nn.Sequential`` containers.

A *chain* is ``layer -> [BatchNorm] -> [activation] -> layer`` among the children of one
Sequential, where layers are Linear / Conv1d / Conv2d (groups 1 or depthwise), the activation is
ReLU, ReLU6, a :class:`ClippedReLU` or nothing (identity), and Identity / Dropout children are
skipped. Models built otherwise pass the pairs explicitly (module names); a pair the transform
cannot handle raises :class:`~nnshare.format.errors.SpecError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..format.errors import SpecError

LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
SKIP_TYPES = (nn.Identity, nn.Dropout)


class ClippedReLU(nn.Module):
    """``clamp(x, 0, upper_c)`` with one upper bound per channel (dim 1): ReLU6 after cross-layer
    equalization, whose bound 6 became ``6 / s_c``. ``upper`` is a buffer, so it is shared."""

    def __init__(self, upper: torch.Tensor):
        super().__init__()
        self.register_buffer("upper", upper.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return torch.minimum(torch.relu(x), self.upper.view(shape))


ACT_TYPES = (nn.ReLU, nn.ReLU6, ClippedReLU)


@dataclass(frozen=True)
class Chain:
    """Two layers with at most a BatchNorm and one activation between them (module names)."""

    first: str
    second: str
    bn: str | None = None
    act: str | None = None


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` ("" = the model)."""
    try:
        return model.get_submodule(name) if name else model
    except AttributeError:
        raise SpecError(f"the model has no module {name!r}") from None


def set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule ``name`` by ``new``."""
    parent, _, child = name.rpartition(".")
    setattr(get_module(model, parent), child, new)


def is_depthwise(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Conv1d | nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels
    )


def check_layer(m: nn.Module, name: str) -> None:
    """Refuse layers the transforms do not handle (grouped but not depthwise convolutions, ...)."""
    if not isinstance(m, LAYER_TYPES):
        raise SpecError(f"module {name!r} is a {type(m).__name__}; expected Linear, Conv1d or Conv2d")
    if isinstance(m, nn.Conv1d | nn.Conv2d) and m.groups > 1 and not is_depthwise(m):
        raise SpecError(f"module {name!r}: grouped convolution with {m.groups} groups is not supported")


def layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Linear / Conv1d / Conv2d of the model, in registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


def _sequentials(model: nn.Module):
    for name, m in model.named_modules():
        if isinstance(m, nn.Sequential):
            prefix = f"{name}." if name else ""
            yield [(prefix + k, c) for k, c in m.named_children()]


def bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, BatchNorm) pairs: a BatchNorm directly after a layer in a Sequential."""
    out = []
    for kids in _sequentials(model):
        for (n1, m1), (n2, m2) in zip(kids, kids[1:], strict=False):
            if isinstance(m1, LAYER_TYPES) and isinstance(m2, BN_TYPES):
                out.append((n1, n2))
    return out


def chains(model: nn.Module) -> list[Chain]:
    """Layer -> [BN] -> [activation] -> layer chains in Sequentials (see module docstring)."""
    out = []
    for kids in _sequentials(model):
        kids = [(n, m) for n, m in kids if not isinstance(m, SKIP_TYPES)]
        for i, (n1, m1) in enumerate(kids):
            if not isinstance(m1, LAYER_TYPES):
                continue
            bn = act = None
            j = i + 1
            if j < len(kids) and isinstance(kids[j][1], BN_TYPES):
                bn, j = kids[j][0], j + 1
            if j < len(kids) and isinstance(kids[j][1], ACT_TYPES):
                act, j = kids[j][0], j + 1
            if j < len(kids) and isinstance(kids[j][1], LAYER_TYPES):
                out.append(Chain(n1, kids[j][0], bn, act))
    return out


def following_activation(model: nn.Module) -> dict[str, str]:
    """Layer name -> name of the activation right after it in a Sequential (Identity / Dropout
    skipped, so a folded BatchNorm counts as absent; an unfolded one breaks the link)."""
    out = {}
    for kids in _sequentials(model):
        kids = [(n, m) for n, m in kids if not isinstance(m, SKIP_TYPES)]
        for (n1, m1), (n2, m2) in zip(kids, kids[1:], strict=False):
            if isinstance(m1, LAYER_TYPES) and isinstance(m2, ACT_TYPES):
                out[n1] = n2
    return out

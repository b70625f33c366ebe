"""A small, deterministic full-tensor training loop for QAT (tests, benchmarks, the 802.11 case).

Data are in-memory tensors; mini-batches are drawn with a seeded generator. Weights and range
parameters may get different learning rates (``range_lr``; min/max ranges train in data units
and usually want a smaller one than beta/gamma or LSQ).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..format.errors import SpecError
from .prepare import range_parameters, weight_parameters


@dataclass
class FitResult:
    """Per-epoch mean training loss; ``diverged`` when a loss or parameter became NaN/Inf."""

    losses: list[float] = field(default_factory=list)
    diverged: bool = False


class Optimizers:
    """Several optimizers stepped together (e.g. Adam for weights, SGD for ranges)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        for o in self.optimizers:
            o.step()


def _build(kind: str, groups: list[dict]) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(groups)
    if kind == "sgd":
        return torch.optim.SGD(groups, momentum=0.9)
    raise SpecError(f"optimizer must be 'adam' or 'sgd', got {kind!r}")


def make_optimizer(
    model: nn.Module,
    lr: float,
    range_lr: float | None = None,
    kind: str = "adam",
    range_kind: str | None = None,
    weight_decay: float = 0.0,
):
    """Adam or SGD (momentum 0.9) with one group for weights and one for range parameters;
    ``range_kind`` (default: ``kind``) may give the range parameters their own optimizer."""
    rp = range_parameters(model)
    wgroup = {"params": weight_parameters(model), "lr": lr, "weight_decay": weight_decay}
    rgroup = {"params": rp, "lr": lr if range_lr is None else range_lr, "weight_decay": 0.0}
    range_kind = range_kind or kind
    groups = [g for g in (wgroup, rgroup) if g["params"]]
    if not groups:
        raise SpecError("nothing to train: every parameter is frozen")
    if range_kind == kind or not rp or not wgroup["params"]:
        return _build(kind if wgroup["params"] else range_kind, groups)
    return Optimizers(_build(kind, [wgroup]), _build(range_kind, [rgroup]))


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int = 10,
    batch_size: int = 64,
    optimizer=None,
    lr: float = 1e-3,
    range_lr: float | None = None,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train ``model`` on (x, y) for ``epochs`` passes; stops early when it diverges.

    ``on_epoch(epoch, mean training loss)`` is called after each finite epoch."""
    opt = optimizer if optimizer is not None else make_optimizer(model, lr, range_lr)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    res = FitResult()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                res.diverged = True
                return res
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        res.losses.append(total / n)
        if hasattr(opt, "epoch_end"):
            opt.epoch_end()
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            res.diverged = True
            return res
        if on_epoch is not None:
            on_epoch(len(res.losses) - 1, res.losses[-1])
    return res


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn) -> float:
    """Mean loss over (x, y) in eval mode; inf when the output is not finite."""
    model.eval()
    v = float(loss_fn(model(x), y))
    model.train()
    return v if math.isfinite(v) else math.inf

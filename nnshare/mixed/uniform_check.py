"""The uniform plan as a floor for a size budget: the widest single bit width whose stream fits,
and the measured output distortion of a plan on calibration inputs, so that
:func:`nnshare.mixed.search` keeps whichever of the allocation and the uniform plan measures
better (a sensitivity table can be wrong; the measurement decides)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from ..plan import Plan
from .sensitivity import run_model, split_batch


def output_distortion(model, plan: Plan, batches: list, forward: Callable | None = None) -> float:
    """Mean squared change of the model's output on ``batches`` (inputs, or (inputs, targets))
    when every tensor is replaced by what ``plan`` makes the receiver rebuild (squared output
    units, pooled over all output elements)."""
    import torch

    tensors = plan.apply(model)
    work = copy.deepcopy(model).eval()
    live = work.state_dict(keep_vars=True)
    with torch.no_grad():
        for n, t in tensors.items():
            if n in live:
                live[n].data.copy_(torch.from_numpy(np.asarray(t.dequantize()).reshape(live[n].shape)))
        was = model.training
        model.eval()
        try:
            tot, count = 0.0, 0
            for b in batches:
                x = split_batch(b, labelled=False)
                ref = run_model(model, x, forward).double()
                got = run_model(work, x, forward).double()
                tot += float((got - ref).pow(2).sum())
                count += ref.numel()
        finally:
            model.train(was)
    return tot / max(count, 1)


def widest_uniform(cands: tuple[int, ...], fits: Callable[[int], bool]) -> int | None:
    """The widest candidate bit width ``b`` with ``fits(b)`` (None when none fits); ``fits`` is
    monotone (a wider uniform plan is never smaller), so the search stops at the first fit."""
    for b in sorted(cands, reverse=True):
        if fits(b):
            return b
    return None


def check_uniform(model, data, plan: Plan, channels: list[tuple[str, int]], cands: tuple[int, ...],
                  make_plan: Callable, fits: Callable[[Plan], bool], forward: Callable | None,
                  max_batches: int | None):
    """Measure ``plan`` against the widest uniform width whose plan ``fits`` the budget.

    ``channels``: (tensor name, channel count) of the allocated tensors; ``make_plan(widths)``
    builds a plan from {name: (C,) widths}. Returns (``(uniform plan, widths, candidate index)``
    when the uniform plan measures strictly better, else None; the info dict of
    :attr:`Allocation.uniform`)."""
    from .sensitivity import batches_of

    def widths(b):
        return {n: np.full(c, b) for n, c in channels}

    ub = widest_uniform(cands, lambda b: fits(make_plan(widths(b))))
    if ub is None:
        return None, {}
    cal = batches_of(data, max_batches)
    uni = make_plan(widths(ub))
    d_alloc = output_distortion(model, plan, cal, forward)
    d_uni = output_distortion(model, uni, cal, forward)
    better = d_uni < d_alloc
    info = {"bits": ub, "distortion": d_uni, "allocated_distortion": d_alloc,
            "chosen": "uniform" if better else "allocated"}
    return ((uni, widths(ub), cands.index(ub)) if better else None), info

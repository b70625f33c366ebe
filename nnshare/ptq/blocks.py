"""Block-by-block calibration for stacks of repeated blocks (transformer layers in an
``nn.ModuleList``): each block's inputs are cached, so quantizing the layers of block b reruns
block b only, not the whole model up to it.

Only used where it is provably the same computation: in the float model's pass, the first
positional input of block b + 1 must equal block b's output (first element of a tuple) on every
batch; the other arguments (masks, position terms) are taken as recorded then. Otherwise the
caller falls back to rerunning the model prefix.
"""

from __future__ import annotations

import torch
from torch import nn


class Stop(Exception):
    """Raised from a hook to end a forward pass once the wanted inputs are recorded."""


def find_blocks(model: nn.Module, names: list[str]) -> list[str]:
    """Names of the children of the longest ``nn.ModuleList`` (>= 2 entries) each of whose
    children holds at least one of ``names``; [] when there is none."""
    best: list[str] = []
    for lname, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) >= 2:
            kids = [f"{lname}.{i}" if lname else str(i) for i in range(len(mod))]
            if all(any(n.startswith(k + ".") for n in names) for k in kids) and len(kids) > len(best):
                best = kids
    return best


def first_output(out):
    return out[0] if isinstance(out, tuple | list) else out


class BlockRecord:
    """Forward hooks recording, per block and batch, the call's arguments and first output."""

    def __init__(self, model: nn.Module, blocks: list[str]):
        self.args: dict[str, list] = {b: [] for b in blocks}
        self.kwargs: dict[str, list] = {b: [] for b in blocks}
        self.outs: dict[str, list] = {b: [] for b in blocks}
        self.handles = []
        for b in blocks:
            m = model.get_submodule(b)
            self.handles.append(m.register_forward_pre_hook(self._pre(b), with_kwargs=True))
            self.handles.append(m.register_forward_hook(self._post(b)))

    def _pre(self, b):
        def hook(_m, args, kwargs):
            self.args[b].append(tuple(a.detach() if torch.is_tensor(a) else a for a in args))
            self.kwargs[b].append(dict(kwargs))

        return hook

    def _post(self, b):
        def hook(_m, _args, out):
            o = first_output(out)
            self.outs[b].append(o.detach() if torch.is_tensor(o) else None)

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def chained(self, blocks: list[str], n_batches: int) -> bool:
        """True when every block ran once per batch with a tensor first argument, and each block's
        input is the previous block's output."""
        for b in blocks:
            a = self.args[b]
            if len(a) != n_batches or any(not x or not torch.is_tensor(x[0]) for x in a):
                return False
        for b0, b1 in zip(blocks, blocks[1:], strict=False):
            for o, a in zip(self.outs[b0], self.args[b1], strict=True):
                if o is None or o.shape != a[0].shape or not torch.equal(o, a[0]):
                    return False
        return True

    def drop_outputs(self) -> None:
        self.outs = {b: [] for b in self.outs}


def run_block(model: nn.Module, rec: BlockRecord, block: str, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Outputs of ``block`` on inputs ``xs`` (one per batch), the other arguments as recorded."""
    m = model.get_submodule(block)
    with torch.no_grad():
        return [
            first_output(m(x, *a[1:], **kw)).detach()
            for x, a, kw in zip(xs, rec.args[block], rec.kwargs[block], strict=True)
        ]


def capture_inputs(modules: dict[str, nn.Module], items, call) -> dict[str, list[torch.Tensor]]:
    """The first input of every module in ``modules`` (name -> module) for each of ``items``,
    running ``call(item)`` under no_grad and stopping it as soon as all of them ran once."""
    got: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    count = [0]

    def hook_for(name):
        def hook(_m, args):
            if len(got[name]) == count[0]:
                got[name].append(args[0].detach())
            if all(len(v) > count[0] for v in got.values()):
                raise Stop

        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in modules.items()]
    try:
        with torch.no_grad():
            for item in items:
                try:
                    call(item)
                except Stop:
                    pass
                count[0] += 1
    finally:
        for h in handles:
            h.remove()
    return got


def capture_in_block(
    model: nn.Module, rec: BlockRecord, block: str, xs: list[torch.Tensor], names: list[str]
) -> dict[str, list[torch.Tensor]]:
    """Inputs of the layers ``names`` (inside ``block``) per batch, running only that block on
    ``xs`` and stopping as soon as all of them ran."""
    m = model.get_submodule(block)
    items = zip(xs, rec.args[block], rec.kwargs[block], strict=True)
    return capture_inputs({n: model.get_submodule(n) for n in names}, items,
                          lambda it: m(it[0], *it[1][1:], **it[2]))

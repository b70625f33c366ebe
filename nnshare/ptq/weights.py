"""Shared parts of the weight-rounding methods: which spec each layer gets, the quantization grid
element by element, building ordinary QuantizedTensors from codes, and capturing layer inputs.

A rounding method (nearest, AdaRound, GPTQ) only chooses the integer codes: the grid (scales and
zero points, from the spec's range method exactly as :func:`nnshare.quant.quantize` computes
them) is the same, so the tensors travel in the same records and the same entropy coders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor, QuantSpec, from_blocks, scale_shape, to_blocks
from ..plan import Plan
from ..quant import ranges
from ..quant.affine import params_from_range, quantize
from .blocks import BlockRecord, capture_in_block, capture_inputs, find_blocks, run_block
from .patterns import check_layer, get_module, layers

SpecLike = QuantSpec | Plan | Mapping[str, QuantSpec]


def layer_specs(model: nn.Module, spec: SpecLike, names: list[str] | None = None) -> dict[str, QuantSpec]:
    """Layer name -> QuantSpec of its weight. ``spec``: one QuantSpec for every layer, a Plan
    (resolved on the weight names with module types) or {layer or weight name: QuantSpec}."""
    found = layers(model)
    if names is not None:
        found = [(n, get_module(model, n)) for n in names]
    for n, m in found:
        check_layer(m, n)
    if isinstance(spec, QuantSpec):
        return {n: spec for n, _ in found}
    wname = {n: f"{n}.weight" if n else "weight" for n, _ in found}
    if isinstance(spec, Plan):
        shapes = {wname[n]: tuple(m.weight.shape) for n, m in found}
        types = {wname[n]: type(m).__name__ for n, m in found}
        res = spec.resolve(shapes, types)
        return {n: res[wname[n]] for n, _ in found if isinstance(res[wname[n]], QuantSpec)}
    if isinstance(spec, Mapping):
        out = {}
        for n, _ in found:
            s = spec.get(n, spec.get(wname[n]))
            if s is not None:
                if not isinstance(s, QuantSpec):
                    raise SpecError(f"layer {n!r}: expected a QuantSpec, got {type(s).__name__}")
                out[n] = s
        return out
    raise SpecError(f"spec must be a QuantSpec, a Plan or a mapping, got {type(spec).__name__}")


@dataclass(frozen=True, eq=False)
class Grid:
    """The quantization grid of one weight tensor: per-row parameters (as sent) and the same
    values broadcast to every element (float64 arrays of the weight's shape)."""

    spec: QuantSpec
    shape: tuple[int, ...]
    scale_rows: np.ndarray  # float32 (n_rows,)
    zp_rows: np.ndarray  # int32 (n_rows,)
    scale: np.ndarray
    zero: np.ndarray
    qmin: np.ndarray
    qmax: np.ndarray

    def tensor(self, codes: np.ndarray) -> QuantizedTensor:
        """An ordinary QuantizedTensor with these codes (clipped to the grid, int32)."""
        codes = np.clip(np.rint(codes), self.qmin, self.qmax).astype(np.int32).reshape(self.shape)
        sshape = scale_shape(self.shape, self.spec)
        params = {"scale": self.scale_rows.reshape(sshape)}
        if not self.spec.symmetric:
            params["zero_point"] = self.zp_rows.reshape(sshape)
        return QuantizedTensor(
            codes=np.ascontiguousarray(codes), params=params, spec=self.spec, shape=self.shape
        )

    def nearest(self, w: np.ndarray) -> np.ndarray:
        """Nearest codes (float64) of ``w`` on this grid."""
        return np.clip(np.rint(w / self.scale) + self.zero, self.qmin, self.qmax)

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        return (codes - self.zero) * self.scale


def grid(w: np.ndarray, spec: QuantSpec) -> Grid:
    """The grid :func:`nnshare.quant.quantize` would use for ``w`` (same range estimate)."""
    w = np.asarray(w, np.float32)
    if spec.rounding != "nearest":
        raise SpecError("AdaRound / GPTQ choose the rounding themselves: use rounding='nearest' in the spec")
    lo, hi = ranges.estimate(to_blocks(w, spec), spec)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    return grid_from_range(w, spec, lo, hi)


def grid_from_range(w: np.ndarray, spec: QuantSpec, lo: np.ndarray, hi: np.ndarray) -> Grid:
    """The grid of ``w`` (its shape and blocks) for the clipping ranges (lo, hi) per block row."""
    w = np.asarray(w, np.float32)
    if spec.rounding != "nearest":
        raise SpecError("AdaRound / GPTQ choose the rounding themselves: use rounding='nearest' in the spec")
    blocks = to_blocks(w, spec)
    s, z = params_from_range(lo, hi, spec)
    qmin, qmax = spec.row_qrange(blocks.shape[0])

    def full(v):
        return from_blocks(
            np.broadcast_to(np.asarray(v, np.float64)[:, None], blocks.shape), w.shape, spec
        ).copy()

    zero = np.zeros(s.shape) if spec.symmetric else z
    return Grid(spec, tuple(w.shape), s, z, full(s), full(zero), full(qmin), full(qmax))


def grid_of(q: QuantizedTensor) -> Grid:
    """The grid of an existing affine QuantizedTensor (e.g. steps chosen by rate control), so a
    rounding method can choose other codes on exactly the same scales and code range."""
    spec, shape = q.spec, tuple(q.shape)
    bshape = to_blocks(np.zeros(shape, np.float32), spec).shape
    s = np.asarray(q.params["scale"], np.float32).reshape(-1)
    zp = np.asarray(q.params.get("zero_point", np.zeros(s.shape, np.int32)), np.int32).reshape(-1)
    qmin, qmax = spec.row_qrange(bshape[0])

    def full(v):
        return from_blocks(np.broadcast_to(np.asarray(v, np.float64)[:, None], bshape), shape, spec).copy()

    zero = np.zeros(s.shape) if spec.symmetric else zp
    return Grid(spec, shape, s, zp, full(s), full(zero), full(qmin), full(qmax))


def weight_of(m: nn.Module) -> np.ndarray:
    return m.weight.detach().float().cpu().numpy().copy()


def set_weight(m: nn.Module, q: QuantizedTensor) -> None:
    """Load the dequantized tensor (what the receiver rebuilds) into the layer's weight."""
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(q.dequantize()).to(m.weight.dtype))


def nearest(model: nn.Module, spec: SpecLike, names: list[str] | None = None) -> dict[str, QuantizedTensor]:
    """Round-to-nearest of every layer weight in place; returns {weight name: QuantizedTensor}."""
    out = {}
    for n, sp in layer_specs(model, spec, names).items():
        m = get_module(model, n)
        q = quantize(weight_of(m), sp)
        set_weight(m, q)
        out[f"{n}.weight" if n else "weight"] = q
    return out


def model_tensors(model: nn.Module, quantized: Mapping[str, QuantizedTensor], float_dtype: str = "fp32"):
    """Every state-dict entry as a tensor for a stream: ``quantized`` where given, float tensors
    (sent as ``float_dtype``) and raw integer tensors otherwise."""
    from ..format.spec import FloatTensor, RawTensor

    out: dict = {}
    for name, v in model.state_dict().items():
        if name in quantized:
            out[name] = quantized[name]
        elif v.dtype.is_floating_point:
            out[name] = FloatTensor(v.detach().float().cpu().numpy().copy(), float_dtype)
        else:
            out[name] = RawTensor(v.detach().cpu().numpy().copy())
    unknown = set(quantized) - set(out)
    if unknown:
        raise SpecError(f"quantized tensors the model does not have: {sorted(unknown)[:3]}")
    return out


def run(model: nn.Module, batch, forward: Callable | None):
    return forward(model, batch) if forward is not None else model(batch)


class Capture:
    """Forward hooks recording the inputs (and optionally outputs) of named modules."""

    def __init__(self, model: nn.Module, names, outputs: bool = False):
        self.inputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self.order: list[str] = []  # names in the order they first ran
        self.outputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self.handles = []
        for n in names:
            self.handles.append(get_module(model, n).register_forward_hook(self._hook(n, outputs)))

    def _hook(self, name, outputs):
        def hook(_m, inp, out):
            if not self.inputs[name]:
                self.order.append(name)
            self.inputs[name].append(inp[0].detach())
            if outputs:
                self.outputs[name].append(out.detach())

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def capture(model: nn.Module, names, batches, forward=None, outputs: bool = False) -> Capture:
    """Run ``batches`` through ``model`` (no grad) recording the named modules' inputs."""
    cap = Capture(model, names, outputs)
    try:
        with torch.no_grad():
            for b in batches:
                run(model, b, forward)
    finally:
        cap.close()
    return cap


def patches(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer input as rows matching ``weight.reshape(out, -1)`` columns: (N, in) for Linear,
    unfolded (N * L, in * k) patches for Conv1d / Conv2d (groups 1)."""
    if isinstance(m, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(m, nn.Conv1d):
        x = x.unsqueeze(2)
        k, d, p, s = (1, *m.kernel_size), (1, *m.dilation), (0, *m.padding), (1, *m.stride)
    else:
        k, d, p, s = m.kernel_size, m.dilation, m.padding, m.stride
    if isinstance(p, str) or m.padding_mode != "zeros":
        raise SpecError("convolutions with string padding or non-zero padding modes are not supported")
    u = torch.nn.functional.unfold(x, k, d, p, s)
    return u.transpose(1, 2).reshape(-1, u.shape[1])


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )


def capture_until(model: nn.Module, names: list[str], batches, forward) -> dict[str, list[torch.Tensor]]:
    """Inputs of ``names`` per batch, stopping each forward pass as soon as all of them ran once
    (the rest of the model is not computed)."""
    return capture_inputs({n: get_module(model, n) for n in names}, batches,
                          lambda b: run(model, b, forward))


def sequential(
    model: nn.Module, names: list[str], batches, forward, process: Callable, in_order: bool = True,
    with_float: bool = False,
) -> None:
    """Process layers in execution order: ``process(name, inputs)`` quantizes a layer in place
    (``process(name, inputs, float_inputs)`` with ``with_float``: the float model's inputs of the
    same layer on the same batches, kept from the first pass).

    With ``in_order`` each layer sees the inputs the model *as modified so far* gives it (one
    forward pass per group, stopped right after the group); otherwise every layer gets the float
    model's inputs from one pass. Consecutive layers with the same input (query / key / value)
    form one group. Layers inside a stack of repeated blocks (:mod:`.blocks`) are reached by
    rerunning their block alone on its cached inputs, not the model prefix.
    """
    batches = list(batches)
    blocks = find_blocks(model, names) if in_order else []
    rec = BlockRecord(model, blocks) if blocks else None
    try:
        first = capture(model, names, batches, forward)
    finally:
        if rec is not None:
            rec.close()
    missing = [n for n in names if n not in first.order]
    if missing:
        raise SpecError(f"layers {missing[:3]} never ran on the calibration batches")
    if rec is not None and not rec.chained(blocks, len(batches)):
        blocks, rec = [], None
    if rec is not None:
        rec.drop_outputs()
    block_of = {n: next((b for b in blocks if n.startswith(b + ".")), None) for n in names}
    groups: list[list[str]] = []
    for n in (n for n in first.order if n in names):
        if groups and _same(first.inputs[n], first.inputs[groups[-1][0]]):
            groups[-1].append(n)
        else:
            groups.append([n])
    cur_block, cur = None, None  # the block whose (quantized-model) inputs are cached in cur
    for k, group in enumerate(groups):
        b = block_of[group[0]]
        if k == 0 or not in_order:
            inputs = first.inputs
        elif b is not None and all(block_of[n] == b for n in group):
            if cur_block != b:
                if cur_block is not None and blocks.index(cur_block) == blocks.index(b) - 1:
                    cur = run_block(model, rec, cur_block, cur)
                else:
                    cur = capture_until(model, [b], batches, forward)[b]
                cur_block = b
            inputs = capture_in_block(model, rec, b, cur, group)
        else:
            inputs = capture_until(model, group, batches, forward)
            cur_block, cur = None, None
        for n in group:
            if with_float:
                process(n, inputs[n], first.inputs[n])
            else:
                process(n, inputs[n])
        if with_float:
            for n in group:
                first.inputs[n] = []
        elif in_order and k == 0:
            first.inputs = {}

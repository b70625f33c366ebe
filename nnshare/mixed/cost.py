"""What an allocation costs: exact stream size and the linear model the solver uses, plus BOPs
and latency tables.

Sizes come from the format itself: the header from the container's layout (docs/format.md), a
quantized record from its scheme (``Scheme.body_bits``, plus the kind byte and CRC), float and
raw records from :mod:`nnshare.format.records`. Nothing here re-derives a record layout.

The solver's model: per-tensor widths use each candidate record's exact size; per-channel widths
(affine) are linear in the chosen widths (``AffineScheme.width_terms``), with the at most 7
padding bits per padded field counted as fixed, so the model is an upper bound of the exact
size and never more than 7 bits per padded field above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError
from ..format.records import CRC_BITS, float_record_bits, raw_record_bits, record_bits
from ..format.schemes import scheme_of
from ..quant.spec import QuantSpec
from .tensors import TensorInfo

__all__ = ["float_record_bits", "raw_record_bits"]
FLOAT_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}


def header_bits(layout: list[tuple[str, tuple[int, ...]]], mode: str = "self") -> int:
    """Exact bits of the stream header (including its CRC), as the container writes it (v2)."""
    from ..format.container import header_bytes

    if mode not in ("self", "agreed"):
        raise SpecError(f"mode must be 'self' or 'agreed', got {mode!r}")
    return 8 * header_bytes(layout, mode)


def quant_record_bits(shape: tuple[int, ...], spec) -> int:
    """Exact bits of a quantized record with packed codes, asked of the spec's scheme."""
    return record_bits(tuple(shape), spec)


@dataclass(frozen=True, eq=False)
class SizeModel:
    """Linear size model for the solver: ``total <= fixed + sum(cost[unit, choice])`` bits.

    ``unit_tensor[i]`` is the index (into ``tensors``) of unit i; ``cost`` is (N, K).
    """

    tensors: tuple[TensorInfo, ...]
    unit_tensor: np.ndarray
    cost: np.ndarray
    fixed: int
    fixed_parts: dict


def size_model(
    quant: list[TensorInfo],
    keep: list[tuple[str, tuple[int, ...], str]],
    base: QuantSpec,
    cands: tuple[int, ...],
    granularity: str,
    mode: str = "self",
    layout: list[tuple[str, tuple[int, ...]]] | None = None,
    padding: bool = True,
) -> SizeModel:
    """Build the linear model.

    ``padding``: count 7 bits per byte-padded field as fixed, so that the model bounds the
    stream from above; without it the model is exact up to those padding bits (for a caller
    that checks the real stream and tightens).

    ``keep``: the other tensors as (name, shape, how) with how in fp32/fp16/bf16 or a raw
    integer dtype name; ``layout``: all tensors in stream order (default: quant then keep).
    """
    if granularity not in ("tensor", "channel"):
        raise SpecError(f"granularity must be 'tensor' or 'channel', got {granularity!r}")
    if granularity == "channel" and base.granularity != "channel":
        raise SpecError("per-channel bit widths need a base spec with per-channel scales")
    if getattr(base, "channel_bits", ()):
        raise SpecError("the base spec must not carry channel_bits")
    scheme = scheme_of(base)
    b = np.asarray(cands, np.float64)
    units, costs = [], []
    rec_fixed = 0
    for i, t in enumerate(quant):
        wire = scheme.wire(base, t.shape)
        if granularity == "channel":
            fixed, slope, padded = scheme.width_terms(t.shape, wire)
            rows = int(t.shape[wire.axis])
            rec_fixed += 8 + CRC_BITS + fixed + (7 * padded if padding else 0)
            units.append(np.full(rows, i))
            costs.append(np.repeat((slope * b)[None, :], rows, axis=0))
        else:  # exact size of each candidate record; what every candidate pays is fixed
            exact = np.array([record_bits(t.shape, scheme.at_bits(wire, int(c))) for c in cands])
            rec_fixed += int(exact.min())
            units.append(np.array([i]))
            costs.append((exact - exact.min()).astype(np.float64)[None, :])
    head, keep_bits = _header_and_kept_bits(quant, keep, mode, layout)
    return SizeModel(
        tensors=tuple(quant),
        unit_tensor=np.concatenate(units),
        cost=np.concatenate(costs, axis=0),
        fixed=int(head + rec_fixed + keep_bits),
        fixed_parts={"header": head, "quantized_records": rec_fixed, "other_tensors": keep_bits},
    )


def _header_and_kept_bits(quant, keep, mode: str, layout) -> tuple[int, int]:
    """Bits of the stream header and of the records of tensors kept in float / raw."""
    keep_bits = 0
    for _name, shape, how in keep:
        n = int(np.prod(shape, dtype=np.int64))
        if how in FLOAT_BITS:
            keep_bits += float_record_bits(n, how)
        else:
            keep_bits += raw_record_bits(n, np.dtype(how).itemsize)
    if layout is None:
        layout = [(t.name, t.shape) for t in quant] + [(n, s) for n, s, _ in keep]
    return header_bits(layout, mode), keep_bits


def coded_size_model(
    quant: list[TensorInfo],
    keep: list[tuple[str, tuple[int, ...], str]],
    arrays: dict[str, np.ndarray],
    base: QuantSpec,
    cands: tuple[int, ...],
    mode: str = "self",
    layout: list[tuple[str, tuple[int, ...]]] | None = None,
    entropy: str = "auto",
) -> SizeModel:
    """Per-tensor widths with entropy-coded codes: each entry of the (T, K) cost table is the
    exact size of the tensor's record at that width as the format writes it (``entropy="auto"``
    keeps packed codes when coding does not pay). Exact, not a bound; one record encode per
    tensor and width."""
    from ..format.container import VERSION
    from ..format.records import encode_record
    from ..quant.registry import quantize

    if getattr(base, "channel_bits", ()):
        raise SpecError("the base spec must not carry channel_bits")
    costs = np.empty((len(quant), len(cands)))
    for i, t in enumerate(quant):
        for k, b in enumerate(cands):
            spec = base.at_bits(int(b))
            rec, _ = encode_record(t.name, quantize(arrays[t.name], spec), entropy=entropy,
                                   version=VERSION)
            costs[i, k] = 8 * len(rec)
    head, keep_bits = _header_and_kept_bits(quant, keep, mode, layout)
    return SizeModel(
        tensors=tuple(quant),
        unit_tensor=np.arange(len(quant)),
        cost=costs,
        fixed=int(head + keep_bits),
        fixed_parts={"header": head, "quantized_records": 0, "other_tensors": keep_bits},
    )


#: Side info an entropy-coded record with per-channel widths pays beyond its packed fields
#: (payload length, model byte, row/column classes, one table per context, payload CRC): an
#: estimate the allocator's exact check corrects.
CODED_SIDE_BITS = 8 * 48


def _entropy_bits(codes: np.ndarray) -> float:
    """Empirical entropy of integer codes times their count (bits): the ideal adaptive size."""
    if codes.size == 0:
        return 0.0
    _, counts = np.unique(codes, return_counts=True)
    p = counts / codes.size
    return float(-(counts * np.log2(p)).sum())


def coded_channel_size_model(
    quant: list[TensorInfo],
    keep: list[tuple[str, tuple[int, ...], str]],
    arrays: dict[str, np.ndarray],
    base: QuantSpec,
    cands: tuple[int, ...],
    mode: str = "self",
    layout: list[tuple[str, tuple[int, ...]]] | None = None,
) -> SizeModel:
    """Per-channel widths with entropy-coded codes (format v2): a channel's cost at width b is
    the empirical entropy of its codes at b (bits; each channel's scale depends on its own range
    only), everything else (spec bytes, scales, widths, zero points at the widest candidate,
    :data:`CODED_SIDE_BITS`) is fixed. An estimate, not a bound: the allocator checks the
    written stream and tightens (``search(..., verify=True)``)."""
    from ..quant.registry import quantize

    if base.granularity != "channel":
        raise SpecError("per-channel bit widths need a base spec with per-channel scales")
    if getattr(base, "channel_bits", ()):
        raise SpecError("the base spec must not carry channel_bits")
    scheme = scheme_of(base)
    units, costs = [], []
    rec_fixed = 0
    for i, t in enumerate(quant):
        wire = scheme.wire(base, t.shape)
        fixed, _, padded = scheme.width_terms(t.shape, wire)
        ax = wire.axis
        rows = int(t.shape[ax])
        table = np.empty((rows, len(cands)))
        for k, b in enumerate(cands):
            q = quantize(arrays[t.name], base.at_bits(int(b)))
            per = np.moveaxis(np.asarray(q.codes), ax, 0).reshape(rows, -1)
            table[:, k] = [_entropy_bits(row) for row in per]
        zp = 0 if wire.symmetric else rows * max(cands)
        rec_fixed += 8 + CRC_BITS + fixed + 7 * padded + zp + CODED_SIDE_BITS
        units.append(np.full(rows, i))
        costs.append(table)
    head, keep_bits = _header_and_kept_bits(quant, keep, mode, layout)
    return SizeModel(
        tensors=tuple(quant),
        unit_tensor=np.concatenate(units),
        cost=np.concatenate(costs, axis=0),
        fixed=int(head + rec_fixed + keep_bits),
        fixed_parts={"header": head, "quantized_records": rec_fixed, "other_tensors": keep_bits},
    )


# ------------------------------------------------------------------ compute cost tables


def macs_per_tensor(model, example, forward=None) -> dict[str, float]:
    """Multiply-accumulates of one forward pass on ``example`` per weight tensor
    (Linear, Conv1d/2d/3d; Embedding lookups count 0)."""
    import torch
    import torch.nn as nn

    out: dict[str, float] = {}
    handles = []
    for mname, mod in model.named_modules():
        key = f"{mname}.weight" if mname else "weight"
        if isinstance(mod, nn.Linear):

            def h(m, i, o, key=key):
                out[key] = out.get(key, 0.0) + float(o.numel()) * m.in_features

        elif isinstance(mod, nn.Conv1d | nn.Conv2d | nn.Conv3d):

            def h(m, i, o, key=key):
                k = int(np.prod(m.kernel_size)) * (m.in_channels // m.groups)
                out[key] = out.get(key, 0.0) + float(o.numel()) * k

        else:
            continue
        handles.append(mod.register_forward_hook(h))
    try:
        with torch.no_grad():
            forward(model, example) if forward is not None else model(example)
    finally:
        for hd in handles:
            hd.remove()
    return out


def bops_costs(
    sm: SizeModel, macs: dict[str, float], cands: tuple[int, ...], act_bits: int, granularity: str
) -> np.ndarray:
    """(N, K) bit operations ``MACs * weight bits * act_bits`` per unit (a channel gets its share)."""
    b = np.asarray(cands, np.float64)
    counts = np.bincount(sm.unit_tensor, minlength=len(sm.tensors))
    per_unit = np.array(
        [
            macs.get(sm.tensors[i].name, 0.0) / (counts[i] if granularity == "channel" else 1)
            for i in sm.unit_tensor
        ]
    )
    return per_unit[:, None] * b[None, :] * float(act_bits)


def latency_costs(
    sm: SizeModel, table: dict[str, dict[int, float]], cands: tuple[int, ...], granularity: str
) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) latency in ms from ``table[name][bits]`` and the mask of widths the table allows
    (a tensor missing from the table costs 0)."""
    if granularity != "tensor":
        raise SpecError("a latency table applies to per-tensor bit widths only")
    n, k = sm.cost.shape
    lat = np.zeros((n, k))
    ok = np.ones((n, k), bool)
    for u, ti in enumerate(sm.unit_tensor):
        row = table.get(sm.tensors[ti].name)
        if row is None:
            continue
        for j, b in enumerate(cands):
            if b in row:
                lat[u, j] = float(row[b])
            else:
                ok[u, j] = False
    return lat, ok

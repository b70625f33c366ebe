"""What an allocation costs: exact stream size (mirrors nnshare.format, docs/format.md) and the
linear model the solver uses, plus BOPs and latency tables.

Stream size, all in bits:

- header: magic 4 B, version 1 B, flags 1 B, varint(#tensors); "self" mode then per tensor
  varint(len(name)) + name + 1 B ndim + varint per dim; "agreed" mode a 4 B fingerprint; CRC 4 B.
- float record: 2 B + values + CRC 4 B; raw integer record: 2 B + values + CRC 4 B.
- quantized record: scheme 1 B + spec 2 B (+ 1 B axis unless per-tensor, + varint group size),
  then side info: per-channel widths at 4 bits each (only with ``channel_bits``, byte-padded),
  one scale per row in ``scale_dtype``, zero points at each row's width (asymmetric only,
  byte-padded); then the codes at each row's width (byte-padded); CRC 4 B.

The solver's model is linear in the chosen widths: codes (and zero points) per unit, everything
else fixed, with the at most 7 padding bits per padded field counted as fixed. So the model is an
upper bound of the exact size, and never more than 7 bits per padded field above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantSpec, scale_shape
from .tensors import TensorInfo

SCALE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}
FLOAT_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}
CHANNEL_WIDTH_BITS = 4  # a per-channel width is sent as (bits - 1) in 4 bits
CRC_BITS = 32


def varint_len(v: int) -> int:
    """Bytes of an unsigned LEB128 varint."""
    n = 1
    v = int(v)
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def _ceil8(bits: int) -> int:
    return 8 * ((int(bits) + 7) // 8)


def header_bits(layout: list[tuple[str, tuple[int, ...]]], mode: str = "self") -> int:
    """Exact bits of the stream header (including its CRC)."""
    if mode not in ("self", "agreed"):
        raise SpecError(f"mode must be 'self' or 'agreed', got {mode!r}")
    n = 6 + varint_len(len(layout))
    if mode == "agreed":
        n += 4
    else:
        for name, shape in layout:
            nb = len(name.encode("utf-8"))
            n += varint_len(nb) + nb + 1 + sum(varint_len(d) for d in shape)
    return 8 * (n + 4)


def float_record_bits(numel: int, dtype: str = "fp32") -> int:
    """Exact bits of a float record."""
    return 16 + numel * FLOAT_BITS[dtype] + CRC_BITS


def raw_record_bits(numel: int, itemsize: int) -> int:
    """Exact bits of a raw integer record."""
    return 16 + 8 * numel * itemsize + CRC_BITS


def quant_record_bits(shape: tuple[int, ...], spec: QuantSpec) -> int:
    """Exact bits of a quantized (affine) record, ``channel_bits`` included."""
    rows = int(np.prod(scale_shape(shape, spec), dtype=np.int64))
    numel = int(np.prod(shape, dtype=np.int64))
    head = 3 + (1 if spec.granularity != "tensor" else 0)
    if spec.granularity == "group":
        head += varint_len(spec.group_size)
    widths = spec.row_bits(rows)
    side = rows * SCALE_BITS[spec.scale_dtype]
    if spec.channel_bits:
        side += _ceil8(CHANNEL_WIDTH_BITS * rows)
    if not spec.symmetric:
        side += _ceil8(int(widths.sum()))
    if spec.granularity == "group":
        payload = _ceil8(numel * spec.bits)
    else:
        per_row = numel // rows if rows else 0
        payload = _ceil8(per_row * int(widths.sum()))
    return 8 * head + side + payload + CRC_BITS


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
    if base.channel_bits:
        raise SpecError("the base spec must not carry channel_bits")
    b = np.asarray(cands, np.float64)
    asym = 0.0 if base.symmetric else 1.0
    units, costs = [], []
    rec_fixed = 0
    for i, t in enumerate(quant):
        spec0 = QuantSpec(**{**base.to_dict(), "bits": int(cands[0])})
        rows = int(np.prod(scale_shape(t.shape, spec0), dtype=np.int64))
        per_row = t.numel // rows
        head = 3 + (1 if base.granularity != "tensor" else 0)
        pad = (7 + (7 if asym else 0)) if padding else 0
        fixed = 8 * head + CRC_BITS + rows * SCALE_BITS[base.scale_dtype] + pad
        if granularity == "channel":
            fixed += _ceil8(CHANNEL_WIDTH_BITS * rows)
            units.append(np.full(rows, i))
            costs.append(np.repeat(((per_row + asym) * b)[None, :], rows, axis=0))
        else:
            units.append(np.array([i]))
            costs.append(((t.numel + asym * rows) * b)[None, :])
        rec_fixed += fixed
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
    from ..format.records import encode_record
    from ..quant.affine import quantize

    if base.channel_bits:
        raise SpecError("the base spec must not carry channel_bits")
    costs = np.empty((len(quant), len(cands)))
    for i, t in enumerate(quant):
        for k, b in enumerate(cands):
            spec = QuantSpec(**{**base.to_dict(), "bits": int(b)})
            rec, _ = encode_record(t.name, quantize(arrays[t.name], spec), entropy=entropy)
            costs[i, k] = 8 * len(rec)
    head, keep_bits = _header_and_kept_bits(quant, keep, mode, layout)
    return SizeModel(
        tensors=tuple(quant),
        unit_tensor=np.arange(len(quant)),
        cost=costs,
        fixed=int(head + keep_bits),
        fixed_parts={"header": head, "quantized_records": 0, "other_tensors": keep_bits},
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

"""Granularity that is sane for a tensor's shape, and what its side information costs.

A per-channel or per-group spec whose scale rows hold one element each sends one scale per
weight (a GRU input weight of shape (384, 1) per channel: 12,288 bits of fp32 scales for 1,536
bits of 4-bit codes): it falls back to one scale per tensor. A group axis shorter than the group
size and side information larger than what quantization saves are reported as warnings.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..format.spec import QuantSpec, n_scales

SCALE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}


def side_info_bits(shape: tuple[int, ...], spec: QuantSpec) -> int:
    """Bits of scales and zero points (and per-channel widths) a spec sends for ``shape``."""
    rows = n_scales(shape, spec)
    bits = rows * SCALE_BITS[spec.scale_dtype]
    if not spec.symmetric:
        bits += int(spec.row_bits(rows).sum()) if spec.channel_bits else rows * spec.bits
    if spec.channel_bits:
        bits += 4 * rows
    return bits


def effective_spec(shape: tuple[int, ...], spec: QuantSpec, name: str = "tensor",
                   float_bits: int = 32) -> tuple[QuantSpec, list[str]]:
    """The spec actually used for ``shape`` and the warnings it deserves.

    - a per-channel / per-group spec whose rows hold a single element (and which sets no
      per-channel widths) becomes per tensor;
    - a group axis shorter than the group size is reported (groups then span the whole axis);
    - side information above what quantization saves over ``float_bits`` per element is
      reported.
    """
    shape = tuple(int(d) for d in shape)
    numel = int(np.prod(shape, dtype=np.int64))
    notes: list[str] = []
    if spec.granularity != "tensor" and len(shape) > 0 and numel > 0 and not spec.channel_bits:
        ax = spec.axis % len(shape) if -len(shape) <= spec.axis < len(shape) else None
        if ax is not None:
            single = numel // max(n_scales(shape, spec), 1) <= 1 and numel > 1
            if spec.granularity == "group" and shape[ax] < spec.group_size:
                then = ("one scale per tensor is used instead" if single else
                        f"each group spans the axis: {n_scales(shape, spec):,} scales")
                notes.append(
                    f"{name}: group axis {spec.axis} has {shape[ax]} elements, fewer than the group "
                    f"size {spec.group_size}; {then}"
                )
            if single:
                spec = dataclasses.replace(spec, granularity="tensor", axis=0, group_size=0)
    side = side_info_bits(shape, spec)
    saved = numel * (float_bits - spec.bits)
    if side > saved and numel > 0:
        notes.append(
            f"{name}: side information ({side:,} bits of scales) exceeds what {spec.bits}-bit codes "
            f"save over float ({saved:,} bits)"
        )
    return spec, notes


"""Granularity: which elements of a tensor share one set of quantization parameters.

Three frozen objects: :class:`PerTensor`, :class:`PerAxis` (one row per slice along ``axis``) and
:class:`PerGroup` (groups of ``size`` consecutive elements along ``axis``). Each knows the shape
of its parameter array, how to view a tensor as rows that share parameters, and the order codes
take in the stream. Numpy only (the receiver uses them too).

The helpers below take either a granularity object or anything with a ``grain`` attribute (a
wire spec or a sender config).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import SpecError

KINDS = ("tensor", "channel", "group")


@dataclass(frozen=True)
class PerTensor:
    """One parameter set for the whole tensor."""

    kind = "tensor"
    axis = 0
    size = 0

    def on(self, shape: tuple[int, ...]) -> PerTensor:
        """The same granularity with a non-negative axis for a tensor of ``shape``."""
        return self


@dataclass(frozen=True)
class PerAxis:
    """One parameter set per slice along ``axis`` (per output channel for axis 0)."""

    axis: int = 0
    kind = "channel"
    size = 0

    def __post_init__(self) -> None:
        _check_int("axis", self.axis)

    def on(self, shape: tuple[int, ...]) -> PerAxis:
        return PerAxis(check_axis(shape, self.axis))


@dataclass(frozen=True)
class PerGroup:
    """One parameter set per group of ``size`` consecutive elements along ``axis``; the last group
    of a row may be shorter, and a group is at most the axis length long."""

    axis: int = 0
    size: int = 1
    kind = "group"

    def __post_init__(self) -> None:
        _check_int("axis", self.axis)
        _check_int("group_size", self.size)
        if self.size < 1:
            raise SpecError("granularity 'group' needs group_size >= 1")

    def on(self, shape: tuple[int, ...]) -> PerGroup:
        return PerGroup(check_axis(shape, self.axis), self.size)


Granularity = PerTensor | PerAxis | PerGroup


def _check_int(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise SpecError(f"{name} must be an integer, got {v!r}")


def make(kind: str, axis: int = 0, group_size: int = 0) -> Granularity:
    """The granularity object for the flat fields ``granularity``, ``axis``, ``group_size``."""
    if kind == "tensor":
        return PerTensor()
    if kind == "channel":
        return PerAxis(axis)
    if kind == "group":
        return PerGroup(axis, group_size)
    raise SpecError(f"granularity must be one of {', '.join(KINDS)}, got {kind!r}")


def grain_of(spec) -> Granularity:
    """The granularity of a spec (or the object itself)."""
    return spec if isinstance(spec, PerTensor | PerAxis | PerGroup) else spec.grain


def check_axis(shape: tuple[int, ...], axis: int) -> int:
    """``axis`` made non-negative for a tensor of ``shape`` (SpecError if out of range)."""
    nd = len(shape)
    if nd == 0:
        raise SpecError("per-channel or per-group quantization needs a tensor with >= 1 dimension")
    if not -nd <= axis < nd:
        raise SpecError(f"axis {axis} out of range for a tensor of shape {tuple(shape)}")
    return axis % nd


def scale_shape(shape: tuple[int, ...], spec) -> tuple[int, ...]:
    """Shape of the parameter array: () per tensor, (C,) per channel, (rows, n_groups) per group."""
    g = grain_of(spec)
    if g.kind == "tensor":
        return ()
    ax = check_axis(shape, g.axis)
    if g.kind == "channel":
        return (int(shape[ax]),)
    length = int(shape[ax])
    rows = math.prod(int(d) for d in shape) // length if length else 0
    return (rows, math.ceil(length / g.size))


def n_rows(shape: tuple[int, ...], spec) -> int:
    """Number of parameter rows (scales) for a tensor of ``shape``."""
    return int(math.prod(scale_shape(shape, spec)))


def group_len(length: int, spec) -> int:
    """Effective group length along the axis: the group size, at most the axis length."""
    return max(1, min(grain_of(spec).size, length))


def to_blocks(x: np.ndarray, spec) -> np.ndarray:
    """View ``x`` as rows that share one parameter set each.

    Returns a 2-D array: per tensor (1, N); per channel (C, N/C) with the channel axis first;
    per group (rows * n_groups, g) with g = min(group_size, axis length) and the ragged last group
    padded by edge values (padding is dropped again by :func:`from_blocks`).
    """
    g = grain_of(spec)
    if g.kind == "tensor":
        return x.reshape(1, -1)
    ax = check_axis(x.shape, g.axis)
    n = int(x.size)
    if g.kind == "channel":
        c = int(x.shape[ax])
        return np.moveaxis(x, ax, 0).reshape(c, n // c if c else 0)
    moved = np.moveaxis(x, ax, -1)
    length = int(moved.shape[-1])
    rows = moved.reshape(n // length if length else int(np.prod(moved.shape[:-1])), length)
    gl = group_len(length, g)
    ng = math.ceil(length / gl) if length else 0
    pad = ng * gl - length
    if pad:
        rows = np.pad(rows, ((0, 0), (0, pad)), mode="edge")
    return rows.reshape(rows.shape[0] * ng, gl)


def from_blocks(blocks: np.ndarray, shape: tuple[int, ...], spec) -> np.ndarray:
    """Inverse of :func:`to_blocks` (drops group padding)."""
    g = grain_of(spec)
    shape = tuple(int(s) for s in shape)
    if g.kind == "tensor":
        return blocks.reshape(shape)
    ax = check_axis(shape, g.axis)
    if g.kind == "channel":
        moved_shape = (shape[ax],) + shape[:ax] + shape[ax + 1 :]
        return np.moveaxis(blocks.reshape(moved_shape), 0, ax)
    length = shape[ax]
    moved_shape = shape[:ax] + shape[ax + 1 :] + (length,)
    rows = int(np.prod(moved_shape[:-1], dtype=np.int64))
    gl = group_len(length, g)
    ng = math.ceil(length / gl) if length else 0
    flat = blocks.reshape(rows, ng * gl)[:, :length]
    return np.moveaxis(flat.reshape(moved_shape), -1, ax)


def stream_order(codes: np.ndarray, spec) -> np.ndarray:
    """Codes flattened in stream order: C order, with the channel axis moved first (channel) or
    the group axis moved last (group)."""
    g = grain_of(spec)
    if g.kind == "tensor":
        return codes.reshape(-1)
    ax = g.axis % codes.ndim
    return np.moveaxis(codes, ax, 0 if g.kind == "channel" else -1).reshape(-1)


def from_stream_order(flat: np.ndarray, shape: tuple[int, ...], spec) -> np.ndarray:
    """Inverse of :func:`stream_order`."""
    g = grain_of(spec)
    if g.kind == "tensor":
        return flat.reshape(shape)
    ax = g.axis % len(shape)
    rest = tuple(d for i, d in enumerate(shape) if i != ax)
    if g.kind == "channel":
        return np.ascontiguousarray(np.moveaxis(flat.reshape((shape[ax],) + rest), 0, ax))
    return np.ascontiguousarray(np.moveaxis(flat.reshape(rest + (shape[ax],)), -1, ax))


def row_len(shape: tuple[int, ...], spec) -> int | None:
    """Length of a row in stream order (for the entropy coder's row/column contexts)."""
    g = grain_of(spec)
    n = math.prod(int(d) for d in shape)
    if len(shape) < 2 or n == 0:
        return None
    if g.kind == "tensor":
        return int(shape[-1])
    if g.kind == "channel":
        return n // int(shape[g.axis % len(shape)])
    return int(shape[g.axis % len(shape)])

"""Which tensors the allocator quantizes, their channel view, and quantization errors per channel.

A "channel" is one slice along the base spec's axis (axis 0: output channels of Linear / Conv
weights, rows of an Embedding); every channel has its own scale, so errors add up over channels.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantSpec, from_blocks, to_blocks
from ..quant.affine import as_float_array, quantize

DEFAULT_BASE = QuantSpec(bits=8, symmetric=True, granularity="channel", axis=0)


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the model: state-dict ``name``, ``shape``, owning module's class name."""

    name: str
    shape: tuple[int, ...]
    module_type: str | None = None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def state_dict_of(model) -> dict[str, np.ndarray]:
    """Float32 numpy arrays of a module's state dict (or of a dict of tensors / arrays)."""
    sd = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    out = {}
    for k, v in sd.items():
        if hasattr(v, "is_floating_point"):
            if not v.is_floating_point():
                continue
        elif np.asarray(v).dtype.kind != "f":
            continue
        out[k] = np.array(as_float_array(v), dtype=np.float32, copy=True)  # never alias the model
    return out


def all_arrays(model) -> dict[str, np.ndarray]:
    """Every tensor of the state dict as numpy: floats as float32 copies, integers as they are
    (they travel as raw records)."""
    sd = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    out = {}
    for k, v in sd.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu()
            v = v.float() if v.is_floating_point() else v
            v = v.numpy()
        arr = np.asarray(v)
        if arr.dtype.kind not in "fiub":
            raise SpecError(f"tensor {k!r} has unsupported dtype {arr.dtype}")
        out[k] = np.array(arr, dtype=np.float32) if arr.dtype.kind == "f" else np.array(arr)
    return out


def module_types_of(model) -> dict[str, str]:
    """Tensor name -> class name of the module that owns it (empty for a plain state dict)."""
    if not hasattr(model, "named_modules"):
        return {}
    out = {}
    for mname, mod in model.named_modules():
        for pname, _ in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            out[f"{mname}.{pname}" if mname else pname] = type(mod).__name__
    return out


def select_tensors(
    model,
    min_ndim: int = 2,
    include: str | None = None,
    exclude: str | None = None,
) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Split the state dict into (quantized, kept in float).

    Quantized: float tensors with ``ndim >= min_ndim`` whose name fully matches ``include``
    (default any) and not ``exclude``. Raises SpecError when nothing is left to quantize.
    """
    sd = state_dict_of(model)
    types = module_types_of(model)
    for pat in (include, exclude):
        if pat is not None:
            try:
                re.compile(pat)
            except re.error as e:
                raise SpecError(f"bad regular expression {pat!r}: {e}") from None
    quant, keep = [], []
    for name, arr in sd.items():
        info = TensorInfo(name, tuple(int(s) for s in arr.shape), types.get(name))
        ok = arr.ndim >= min_ndim and arr.size > 0
        ok = ok and (include is None or re.fullmatch(include, name) is not None)
        ok = ok and (exclude is None or re.fullmatch(exclude, name) is None)
        (quant if ok else keep).append(info)
    if not quant:
        raise SpecError("no tensor of the model is selected for quantization")
    return quant, keep


def channel_spec(base: QuantSpec, bits: int) -> QuantSpec:
    """The spec for one bit width, scales per row of the (C, n) channel view."""
    return dataclasses.replace(base, bits=int(bits), granularity="channel", axis=0)


def channel_view(w: np.ndarray, base: QuantSpec) -> np.ndarray:
    """(C, n) rows sharing one scale: channels along ``base.axis`` (C = 1 for per-tensor scale)."""
    if base.granularity == "tensor":
        return np.asarray(w, np.float32).reshape(1, -1)
    if base.granularity != "channel":
        raise SpecError("mixed precision supports per-tensor or per-channel scales, not groups")
    return to_blocks(np.asarray(w, np.float32), base)


def from_channel_view(rows: np.ndarray, shape: tuple[int, ...], base: QuantSpec) -> np.ndarray:
    """Inverse of :func:`channel_view`."""
    if base.granularity == "tensor":
        return rows.reshape(shape)
    return from_blocks(rows, shape, base)


def fake_quantize_rows(rows: np.ndarray, base: QuantSpec, bits: int) -> np.ndarray:
    """Dequantized rows, each row with its own scale (or one scale for all if per-tensor)."""
    if base.granularity == "tensor":
        spec = dataclasses.replace(base, bits=int(bits))
        return quantize(rows, spec).dequantize()
    return quantize(rows, channel_spec(base, bits)).dequantize()


def fake_quantize_mixed(w: np.ndarray, base: QuantSpec, bits) -> np.ndarray:
    """Quantize-dequantize ``w`` with one bit width (int) or one per channel ((C,) ints)."""
    w = np.asarray(w, np.float32)
    rows = channel_view(w, base)
    b = np.asarray(bits)
    if b.ndim == 0:
        return from_channel_view(fake_quantize_rows(rows, base, int(b)), w.shape, base)
    if b.shape != (rows.shape[0],):
        raise SpecError(f"{b.size} channel bit widths for a tensor with {rows.shape[0]} channels")
    out = np.empty_like(rows)
    for bb in np.unique(b):
        sel = b == bb
        out[sel] = fake_quantize_rows(rows[sel], base, int(bb))
    return from_channel_view(out, w.shape, base)


def channel_errors(
    w: np.ndarray,
    base: QuantSpec,
    candidates: tuple[int, ...],
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """(C, K) sums over each channel of ``weight * (Q_b(w) - w)**2`` for every candidate b.

    ``weight`` (same shape as ``w``; default 1) gives e.g. a diagonal Fisher weighting.
    """
    rows = channel_view(w, base)
    wt = None if weight is None else channel_view(np.asarray(weight, np.float32), base)
    out = np.empty((rows.shape[0], len(candidates)), np.float64)
    for k, b in enumerate(candidates):
        d = fake_quantize_rows(rows, base, b) - rows
        d = d.astype(np.float64) ** 2
        if wt is not None:
            d *= wt
        out[:, k] = d.sum(axis=1)
    return out

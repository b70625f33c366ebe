"""Run a stream in PyTorch without expanding it: ``load_quantized(module, stream)``.

Weight-only int1..16 Linear, Conv1d/2d/3d and Embedding modules keep their integer codes (1..4-bit
codes two to a byte) and scales in memory and dequantize on the fly, so the model's resident
memory shrinks with the stream; outputs equal the dequantized float model's bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .export.modules import QuantConv, QuantEmbedding, QuantLinear, QuantWeight, resident_bytes
from .export.modules import quantized_module as _quantized_module
from .format import read_stream
from .format.errors import FormatError
from .format.lazy import LazyTensor, PackedCodes
from .format.spec import QuantizedTensor

__all__ = ["QuantConv", "QuantEmbedding", "QuantLinear", "QuantWeight", "load_quantized", "resident_bytes"]


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    owner_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    if leaf in owner._parameters:
        owner._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    elif leaf in owner._buffers:
        owner._buffers[leaf] = value
    else:
        raise FormatError(f"tensor {name!r}: the model has no parameter or buffer there")


def load_quantized(module: nn.Module, stream: bytes, *, layout=None) -> nn.Module:
    """Load a stream into ``module`` (which may live on the meta device): every quantized affine
    ``<m>.weight`` of a Linear / Conv / Embedding ``m`` becomes a quantized module holding codes
    and scales; every other tensor is loaded as its decoded float32 (or raw) values. The stream
    must hold exactly the module's state-dict tensors with the same shapes (FormatError
    otherwise). Returns ``module`` (changed in place).

    Memory: the stream is parsed lazily and decoded one record at a time; an affine record with
    packed codes goes straight from the stream's bytes into its packed storage a chunk at a time
    (:class:`nnshare.format.lazy.PackedCodes`), so loading holds the stream, the model and about
    one chunk of int32 codes (one record's for entropy-coded records and other schemes)."""
    current = module.state_dict(keep_vars=True)
    if layout is None:
        layout = [(n, tuple(t.shape)) for n, t in current.items()]
    tensors = dict(read_stream(stream, layout, lazy=True).tensors)
    missing, extra = set(current) - set(tensors), set(tensors) - set(current)
    if missing:
        raise FormatError(f"stream lacks tensors the model needs: {sorted(missing)[:5]}")
    if extra:
        raise FormatError(f"stream holds tensors the model does not have: {sorted(extra)[:5]}")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(current[name].shape):
            raise FormatError(f"tensor {name!r}: stream shape {tuple(t.shape)}, model "
                              f"{tuple(current[name].shape)}")
    for name in list(tensors):
        t = _load_module(module, name, tensors.pop(name))
        if t is not None:
            if isinstance(t, LazyTensor):
                t = t.finish()
            arr = np.ascontiguousarray(t.dequantize())
            _set_tensor(module, name, torch.from_numpy(arr.copy()).to(current[name].dtype))
        del t  # free this record's decoded values before the next one
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers())
            if t.device.type == "meta"]
    if left:
        raise FormatError(f"tensors not in the stream are still on the meta device: {left[:5]} "
                          "(non-persistent buffers: create them before loading)")
    _release_heap()
    return module


def _load_module(module: nn.Module, name: str, record):
    """Replace the owner of weight ``name`` by its quantized module when ``record`` is an affine
    record of a Linear / Conv / Embedding weight (returns None); otherwise return the record (or
    the tensor it was decoded to) for loading as floats."""
    owner_name, _, leaf = name.rpartition(".")
    if leaf != "weight":
        return record
    owner = module.get_submodule(owner_name) if owner_name else module
    if not isinstance(owner, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Embedding):
        return record
    t = record
    if isinstance(t, LazyTensor):
        t = t.packed or t.finish()
    spec = t.wire if isinstance(t, PackedCodes) else getattr(t, "spec", None)
    if not isinstance(t, QuantizedTensor | PackedCodes) or spec.scheme != "affine":
        return record if isinstance(t, PackedCodes) else t
    new = _quantized_module(owner, t)
    if not owner_name:
        raise FormatError("load_quantized needs the quantized layer inside a container module")
    parent_name, _, child = owner_name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, child, new)
    return None


def _release_heap() -> None:
    """Give the decoded codes' freed memory back to the OS (glibc keeps it in the heap)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass

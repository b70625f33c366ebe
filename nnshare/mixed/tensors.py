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
from ..quant.affine import quantize
from ..state import MATRIX_ROLES, model_state

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
    """Float32 copies of a model's float tensors (tied aliases once; see :mod:`nnshare.state`)."""
    st = model_state(model)
    return {k: np.array(v, dtype=np.float32, copy=True) for k, v in st.arrays.items() if v.dtype.kind == "f"}


def float_arrays_of(model) -> dict[str, np.ndarray]:
    """A model's float tensors as float32 arrays, read only: no copy of a float32 tensor (what
    a pass that only reads the weights needs; :func:`state_dict_of` copies)."""
    st = model_state(model)
    return {k: np.asarray(v, dtype=np.float32) for k, v in st.arrays.items() if v.dtype.kind == "f"}


def module_types_of(model) -> dict[str, str]:
    """Tensor name -> class name of the module that owns it (empty for a plain state dict)."""
    return dict(model_state(model).module_types)


def select_tensors(
    model,
    min_ndim: int = 2,
    include: str | None = None,
    exclude: str | None = None,
) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Split the float tensors into (quantized, kept in float).

    Quantized: weight matrices, conv kernels and embeddings (roles ``weight`` / ``embedding``,
    :mod:`nnshare.state`) with ``ndim >= min_ndim`` whose name fully matches ``include`` (default
    any) and not ``exclude``; with ``min_ndim=0`` every float tensor may be chosen. Raises
    SpecError when nothing is left to quantize.
    """
    st = model_state(model)
    for pat in (include, exclude):
        if pat is not None:
            try:
                re.compile(pat)
            except re.error as e:
                raise SpecError(f"bad regular expression {pat!r}: {e}") from None
    quant, keep = [], []
    for name, arr in st.arrays.items():
        if arr.dtype.kind != "f":
            continue
        info = TensorInfo(name, tuple(int(s) for s in arr.shape), st.module_types.get(name))
        ok = arr.ndim >= min_ndim and arr.size > 0
        ok = ok and (min_ndim == 0 or st.roles[name] in MATRIX_ROLES)
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


#: Elements per block of rows in :func:`channel_errors` (bounds its temporaries to ~30 MB).
_BLOCK = 1 << 20


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
    # rows with their own scales are independent: blocks of rows bound the temporaries
    step = rows.shape[0] if base.granularity == "tensor" else max(1, _BLOCK // max(rows.shape[1], 1))
    for a in range(0, rows.shape[0], step):
        blk = rows[a:a + step]
        for k, b in enumerate(candidates):
            d = fake_quantize_rows(blk, base, b)
            d -= blk
            d = d.astype(np.float64) ** 2
            if wt is not None:
                d *= wt[a:a + step]
            out[a:a + step, k] = d.sum(axis=1)
    return out

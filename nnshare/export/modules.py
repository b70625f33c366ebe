"""Weight-only quantized modules: integer codes and scales in memory, dequantized on the fly.

A :class:`QuantWeight` keeps a tensor's codes in the blocks of its quantization (one scale per
row of blocks, see :func:`nnshare.format.spec.to_blocks`): 1..4-bit codes two to a byte, 5..8-bit
codes one byte each, wider codes in int16. ``QuantWeight.dequantize()`` computes float32
``(code - z) * scale`` exactly as the receiver does, so a quantized module's output equals the
dequantized float module's bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..format.grain import PerGroup, stream_order
from ..format.lazy import CHUNK_ELEMENTS, PackedCodes, stream_row_len
from ..format.spec import QuantizedTensor, group_len, to_blocks
from .errors import ExportError


class QuantWeight(nn.Module):
    """Codes (packed), scales and zero points of one affine-quantized tensor.

    Buffers: ``codes`` uint8 (blocks, ceil(g/2)) for <= 4 bits, int8/uint8 (blocks, g) for 5..8
    bits, int16/int32 beyond; ``scale`` float32 (blocks, 1); ``zero_point`` int16 (blocks, 1) when
    asymmetric. ``shape``, ``spec``: the tensor's shape and quantization.
    """

    def __init__(self, q: QuantizedTensor | PackedCodes, chunk: int = CHUNK_ELEMENTS):
        super().__init__()
        spec = q.wire if isinstance(q, PackedCodes) else q.spec
        if spec.scheme != "affine":
            raise ExportError(f"load_quantized runs affine codes; got scheme {spec.scheme!r}")
        self.spec, self.shape = spec, tuple(int(s) for s in q.shape)
        nblocks, self.block_len, per_row = _block_geometry(self.shape, spec)
        self.nibbles = spec.bits <= 4
        self.offset = (1 << (spec.bits - 1)) if spec.symmetric else 0
        if self.nibbles:  # unsigned nibbles, two per byte (low nibble first)
            codes = np.zeros((nblocks, (self.block_len + 1) // 2), np.uint8)
        elif spec.bits <= 8:
            codes = np.zeros((nblocks, self.block_len), np.int8 if spec.symmetric else np.uint8)
        else:
            dt = np.int16 if spec.symmetric and spec.bits <= 16 else np.int32
            codes = np.zeros((nblocks, self.block_len), dt)
        group = PerGroup(1, spec.grain.size) if spec.granularity == "group" else None
        for r0, rows in _stream_rows(q, chunk):  # a chunk of codes at a time, straight into place
            blocks = to_blocks(rows, group) if group is not None else rows
            self._put(codes, r0 * per_row, blocks)
        self.register_buffer("codes", torch.from_numpy(codes))
        scale = np.asarray(q.params["scale"], np.float32).reshape(-1, 1)
        self.register_buffer("scale", torch.from_numpy(scale.copy()))
        if spec.symmetric:
            self.zero_point = None
        else:
            z = np.asarray(q.params["zero_point"], np.int32).reshape(-1, 1)
            self.register_buffer("zero_point", torch.from_numpy(z.astype(np.int32)))

    def _put(self, codes: np.ndarray, b0: int, blocks: np.ndarray) -> None:
        """Store int codes ``blocks`` (k, block_len) as block rows b0 .. b0 + k of ``codes``."""
        k = blocks.shape[0]
        if self.nibbles:
            u = np.add(blocks, self.offset, dtype=np.int32).astype(np.uint8)
            if u.shape[1] % 2:
                u = np.pad(u, ((0, 0), (0, 1)))
            codes[b0:b0 + k] = u[:, 0::2] | (u[:, 1::2] << 4)
        else:
            codes[b0:b0 + k] = blocks

    def _blocks(self, codes: torch.Tensor) -> torch.Tensor:
        """Stored codes (some block rows) as int32 (rows, g)."""
        if self.nibbles:
            c = codes.to(torch.int32)
            both = torch.stack((c & 0xF, c >> 4), dim=-1).reshape(c.shape[0], -1)
            return both[:, : self.block_len] - self.offset
        return codes.to(torch.int32)

    def _dequantize_blocks(self, codes, scale, zero_point) -> torch.Tensor:
        b = self._blocks(codes)
        if zero_point is not None:
            b = b - zero_point
        return b.to(torch.float32) * scale

    def rows_per_index(self) -> int:
        """Block rows per slice along axis 0 when each block lies inside one such slice (per
        channel on axis 0, per group along the last axis of a 2-D tensor), else 0."""
        spec, shape = self.spec, self.shape
        if len(shape) == 2 and spec.granularity == "channel" and spec.axis % 2 == 0:
            return 1
        if len(shape) == 2 and spec.granularity == "group" and spec.axis % 2 == 1:
            return math.ceil(shape[1] / group_len(shape[1], spec))
        return 0

    def dequantize_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """float32 rows ``idx`` (any int shape) of a 2-D tensor, dequantizing only those rows;
        bit-identical to ``dequantize()[idx]``."""
        nb = self.rows_per_index()
        if not nb:
            return self.dequantize()[idx]
        flat = idx.reshape(-1)
        sel = (flat[:, None] * nb + torch.arange(nb)).reshape(-1)
        z = self.zero_point[sel] if self.zero_point is not None else None
        out = self._dequantize_blocks(self.codes[sel], self.scale[sel], z)
        rows = out.reshape(flat.shape[0], -1)[:, : self.shape[1]].contiguous()
        return rows.view(*idx.shape, self.shape[1])

    def dequantize(self) -> torch.Tensor:
        """float32 tensor of ``shape``: ``float32(code - z) * scale``, the receiver's values."""
        out = self._dequantize_blocks(self.codes, self.scale, self.zero_point)
        # canonical strides (size-1 dims too): conv kernels pick their path by stride
        return _from_blocks(out, self.shape, self.spec).contiguous().view(-1).view(self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, bits={self.spec.bits}, granularity={self.spec.granularity}"


def _from_blocks(blocks: torch.Tensor, shape: tuple[int, ...], spec) -> torch.Tensor:
    """torch twin of :func:`nnshare.format.spec.from_blocks`."""
    if spec.granularity == "tensor":
        return blocks.reshape(shape)
    ax = spec.axis % len(shape)
    if spec.granularity == "channel":
        moved = (shape[ax],) + shape[:ax] + shape[ax + 1 :]
        return blocks.reshape(moved).movedim(0, ax)
    length = shape[ax]
    moved = shape[:ax] + shape[ax + 1 :] + (length,)
    rows = math.prod(moved[:-1])
    g = group_len(length, spec)
    ng = math.ceil(length / g) if length else 0
    flat = blocks.reshape(rows, ng * g)[:, :length]
    return flat.reshape(moved).movedim(-1, ax)


def _block_geometry(shape: tuple[int, ...], spec) -> tuple[int, int, int]:
    """(block rows, block length, block rows per stream row) of :func:`to_blocks` for ``shape``."""
    n = math.prod(shape)
    if spec.granularity == "tensor":
        return 1, n, 1
    length = shape[spec.axis % len(shape)]
    if spec.granularity == "channel":
        return length, (n // length if length else 0), 1
    gl = group_len(length, spec)
    ng = math.ceil(length / gl) if length else 0
    return (n // length if length else 0) * ng, gl, ng


def _stream_rows(q, chunk: int):
    """(first stream row, int codes (k, row length)) chunks of a QuantizedTensor or PackedCodes."""
    if isinstance(q, PackedCodes):
        yield from q.rows(chunk)
        return
    length = stream_row_len(tuple(q.shape), q.spec)
    if not length:
        return
    flat = stream_order(np.asarray(q.codes).reshape(tuple(q.shape)), q.spec)
    rows = flat.reshape(-1, length)
    step = max(1, chunk // length)
    for r0 in range(0, rows.shape[0], step):
        yield r0, rows[r0:r0 + step]


class _QuantModule(nn.Module):
    """Shared part: the float module's non-weight state plus a QuantWeight."""

    def __init__(self, base: nn.Module, q: QuantizedTensor):
        super().__init__()
        if tuple(q.shape) != tuple(base.weight.shape):
            raise ExportError(f"weight shape {tuple(q.shape)} does not match the module's "
                              f"{tuple(base.weight.shape)}")
        self.qweight = QuantWeight(q)
        self.bias = base.bias if getattr(base, "bias", None) is not None else None

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (computed on each access)."""
        return self.qweight.dequantize()


class QuantLinear(_QuantModule):
    """Weight-only quantized ``nn.Linear``."""

    def __init__(self, base: nn.Linear, q: QuantizedTensor):
        super().__init__(base, q)
        self.in_features, self.out_features = base.in_features, base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.qweight.dequantize(), self.bias)


class QuantConv(_QuantModule):
    """Weight-only quantized ``nn.Conv1d`` / ``Conv2d`` / ``Conv3d``."""

    def __init__(self, base: nn.Module, q: QuantizedTensor):
        if base.padding_mode != "zeros":
            raise ExportError(f"quantized conv supports padding_mode 'zeros', got {base.padding_mode!r}")
        super().__init__(base, q)
        self._fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(base.weight.shape) - 2]
        self.stride, self.padding, self.dilation, self.groups = (
            base.stride, base.padding, base.dilation, base.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, self.qweight.dequantize(), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class QuantEmbedding(_QuantModule):
    """Weight-only quantized ``nn.Embedding``."""

    def __init__(self, base: nn.Embedding, q: QuantizedTensor):
        super().__init__(base, q)
        self.bias = None
        self.padding_idx, self.max_norm = base.padding_idx, base.max_norm
        if base.max_norm is not None:
            raise ExportError("quantized embedding does not support max_norm")
        self.num_embeddings, self.embedding_dim = base.num_embeddings, base.embedding_dim

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Dequantizes only the looked-up rows when the layout allows (per channel on axis 0,
        per group along the embedding axis)."""
        return self.qweight.dequantize_rows(idx)


def quantized_module(base: nn.Module, q: QuantizedTensor) -> nn.Module | None:
    """The quantized replacement for ``base`` (Linear, Conv1/2/3d, Embedding), else None."""
    if isinstance(base, nn.Linear):
        return QuantLinear(base, q)
    if isinstance(base, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return QuantConv(base, q)
    if isinstance(base, nn.Embedding):
        return QuantEmbedding(base, q)
    return None


def resident_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers (shared tensors counted once)."""
    seen, total = set(), 0
    for t in list(module.parameters()) + list(module.buffers()):
        if t.device.type == "meta" or t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total

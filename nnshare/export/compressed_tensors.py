"""compressed-tensors export: a Hugging Face folder whose weights the ``compressed-tensors``
library decompresses to exactly nnshare's dequantized values.

Layout ("pack-quantized" format, compressed-tensors 0.20): for a module ``M`` whose 2-D
``M.weight`` (out, in) is quantized, the folder's ``model.safetensors`` holds

- ``M.weight_packed``: int32 (out, ceil(in * b / 32)); the codes, offset to unsigned by
  2**(b-1), written LSB first as one dense bit string per row (32 codes fill b words);
- ``M.weight_scale``: float32, (1,) per tensor, (out, 1) per channel, (out, in / g) per group;
- ``M.weight_zero_point`` (asymmetric only): the zero points minus 2**(b-1); per channel and
  group packed the same way along the output dimension, per tensor an int8 (1,);
- ``M.weight_shape``: int64 (2,).

compressed-tensors reconstructs ``float32(q - zp) * scale`` with signed codes
``q = x_int - 2**(b-1)`` and ``zp = z - 2**(b-1)``, so ``q - zp = x_int - z``: the very float32
product nnshare's receiver computes. Every other tensor is written as its decoded float32 (or raw
integer) values. ``config.json`` carries ``quantization_config`` with one config group per
distinct layout, each targeting its modules by name.

Representable: scheme affine, 1..8 bits (one width per tensor), symmetric or asymmetric, per
tensor, per channel on axis 0, or per group along the last axis with the group size dividing the
row length. Anything else raises :class:`ExportError` (or, with ``fallback="dense"``, is written
as dense float32 and left out of the quantization config).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..format.records import Tensor
from ..format.spec import QuantizedTensor, group_len
from .errors import ExportError
from .stream import describe, stream_tensors

FORMAT = "pack-quantized"
TARGET = "compressed-tensors"


def pack_int32(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``bits``-bit integers (rows, cols) densely into int32 words per row, LSB
    first: (rows, ceil(cols * bits / 32)). The layout of compressed-tensors' ``pack_to_int32``."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim != 2:
        raise ExportError(f"pack_int32 needs a 2-D array, got shape {v.shape}")
    if v.size and (v.min() < 0 or v.max() >= (1 << bits)):
        raise ExportError(f"values out of the unsigned {bits}-bit range")
    rows, cols = v.shape
    words = math.ceil(cols * bits / 32)
    bitplanes = ((v[:, :, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(rows, cols * bits)
    padded = np.zeros((rows, words * 32), np.uint8)
    padded[:, : cols * bits] = bitplanes
    packed = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u4").view(np.int32).reshape(rows, words)


def unpack_int32(packed: np.ndarray, bits: int, cols: int) -> np.ndarray:
    """Inverse of :func:`pack_int32`: unsigned int64 (rows, cols)."""
    p = np.ascontiguousarray(packed, dtype=np.int32).view("<u4").view(np.uint8)
    rows = packed.shape[0]
    flat = np.unpackbits(p.reshape(rows, -1), axis=1, bitorder="little")[:, : cols * bits]
    planes = flat.reshape(rows, cols, bits).astype(np.int64)
    return (planes << np.arange(bits)).sum(axis=2)


def ct_layout(name: str, q: QuantizedTensor) -> dict:
    """The compressed-tensors weight arguments for one tensor, or ExportError naming why not."""
    spec = q.spec
    where = f"tensor {name!r} ({describe(spec)})"
    if spec.scheme != "affine":
        raise ExportError(f"{TARGET} holds integer affine codes; {where} uses scheme {spec.scheme!r}")
    if not name.endswith(".weight") or len(q.shape) != 2:
        raise ExportError(
            f"{TARGET} packs 2-D Linear/Embedding weights named '<module>.weight'; {where} has "
            f"shape {tuple(q.shape)}"
        )
    if spec.channel_bits:
        raise ExportError(f"{TARGET} has one bit width per tensor; {where} has a width per channel")
    if spec.bits > 8:
        raise ExportError(f"{TARGET} packs 1..8-bit integers; {where} has {spec.bits} bits")
    strategy, group_size = spec.granularity, None
    if spec.granularity == "channel" and spec.axis % 2 != 0:
        raise ExportError(f"{TARGET} scales channels along the output axis 0; {where}")
    if spec.granularity == "group":
        if spec.axis % 2 != 1:
            raise ExportError(f"{TARGET} groups along the last axis (1); {where}")
        cols = int(q.shape[1])
        group_size = group_len(cols, spec)
        if cols % group_size:
            raise ExportError(
                f"{TARGET} needs the group size to divide the row length; {where} has rows of {cols}"
            )
    rows = int(q.shape[0])
    if spec.bits == 4 and not spec.symmetric and spec.granularity != "tensor" and rows * 4 <= 32:
        # its 4-bit unpack views the transposed one-word zero-point array as bytes and fails
        raise ExportError(f"{TARGET} 0.20 cannot unpack 4-bit zero points of a weight with at most "
                          f"8 rows; {where} has {rows}")
    return {
        "num_bits": int(spec.bits),
        "type": "int",
        "symmetric": bool(spec.symmetric),
        "strategy": strategy,
        "group_size": group_size,
        "dynamic": False,
    }


def ct_tensors(q: QuantizedTensor) -> dict[str, np.ndarray]:
    """The compressed tensors of one quantized 2-D weight (suffixes weight_packed, ...)."""
    spec, (rows, cols) = q.spec, q.shape
    off = 1 << (spec.bits - 1)
    codes = np.asarray(q.codes, np.int64).reshape(rows, cols)
    unsigned = codes + off if spec.symmetric else codes  # asymmetric codes are already in [0, 2**b)
    scale = np.asarray(q.params["scale"], np.float32)
    if spec.granularity == "tensor":
        scale = scale.reshape(1)
    elif spec.granularity == "channel":
        scale = scale.reshape(rows, 1)
    else:
        scale = scale.reshape(rows, -1)
    out = {
        "weight_packed": pack_int32(unsigned, spec.bits),
        "weight_scale": np.ascontiguousarray(scale),
        "weight_shape": np.asarray([rows, cols], np.int64),
    }
    if not spec.symmetric:
        zp = np.asarray(q.params["zero_point"], np.int64).reshape(scale.shape)
        if spec.granularity == "tensor":
            out["weight_zero_point"] = (zp - off).astype(np.int8)
        else:  # compressed-tensors packs zero points along dim 0: pack the transpose by rows
            out["weight_zero_point"] = np.ascontiguousarray(pack_int32(zp.T, spec.bits).T)
    return out


def to_compressed_tensors(
    stream: bytes | Mapping[str, Tensor],
    out_dir: str | os.PathLike,
    *,
    layout=None,
    hf_config: Mapping | None = None,
    fallback: str = "error",
) -> dict:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.json`` (``hf_config`` plus
    ``quantization_config``). ``fallback``: "error" (unsupported quantized tensors raise
    ExportError) or "dense" (they are written as decoded float32). Returns a summary dict:
    packed and dense tensor names and the bytes written."""
    from safetensors.numpy import save_file

    if fallback not in ("error", "dense"):
        raise ExportError(f"fallback must be 'error' or 'dense', got {fallback!r}")
    tensors = stream_tensors(stream, layout)
    arrays: dict[str, np.ndarray] = {}
    groups: dict[str, dict] = {}
    packed, dense = [], []
    for name, t in tensors.items():
        if isinstance(t, QuantizedTensor):
            try:
                args = ct_layout(name, t)
            except ExportError:
                if fallback == "error":
                    raise
                args = None
            if args is not None:
                module = name[: -len(".weight")]
                key = json.dumps(args, sort_keys=True)
                groups.setdefault(key, {"targets": [], "weights": args})["targets"].append(module)
                for suffix, arr in ct_tensors(t).items():
                    arrays[f"{module}.{suffix}"] = arr
                packed.append(name)
                continue
            dense.append(name)
        arrays[name] = np.ascontiguousarray(t.dequantize())
    if not packed:
        raise ExportError(f"the stream has no tensor that {TARGET} can pack")
    config_groups = {}
    for i, g in enumerate(groups.values()):
        config_groups[f"group_{i}"] = {
            "targets": g["targets"],
            "weights": g["weights"],
            "input_activations": None,
            "output_activations": None,
            "format": FORMAT,
        }
    qconfig = {
        "quant_method": "compressed-tensors",
        "format": FORMAT,
        "quantization_status": "compressed",
        "config_groups": config_groups,
        "ignore": [],
    }
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create {out}: {e.strerror or e}") from None
    config = dict(hf_config or {})
    config["quantization_config"] = qconfig
    tmp = out / ".model.safetensors.tmp"
    save_file(arrays, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {
        "packed": packed,
        "dense": dense,
        "bytes": (out / "model.safetensors").stat().st_size,
        "config_groups": len(config_groups),
    }

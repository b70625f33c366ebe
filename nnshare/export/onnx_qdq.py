"""ONNX QDQ export: weights as integer initializers behind DequantizeLinear (opset 21).

The torch module, loaded with the stream's decoded values, is exported with ``torch.onnx.export``
(the dynamo exporter, which needs onnxscript). Every float initializer equal to a quantized
tensor (or to its transpose, as the exporter writes for MatMul) is replaced by

    codes (int4/uint4 for <= 4 bits, int8/uint8 for 5..8, int16/uint16 for 9..16)
    scale (float32: scalar per tensor, (C,) per channel, blocked per group)
    zero point (asymmetric only, same type as the codes)
    DequantizeLinear(codes, scale, zero point; axis, block_size) -> the initializer's name

so the graph's consumers are unchanged and DequantizeLinear's ``(x - zp) * scale`` in float32 is
nnshare's reconstruction. Per-channel widths use the widest code type. Only scheme "affine" is
representable; other schemes raise :class:`ExportError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..format.records import Tensor
from ..format.spec import QuantizedTensor, group_len
from .errors import ExportError, need
from .stream import describe, stream_tensors

OPSET = 21
TARGET = "ONNX QDQ"


def _code_type(spec) -> tuple[int, Any]:
    """(TensorProto data type, numpy dtype) of the codes."""
    from onnx import TensorProto

    ml = need("ml_dtypes", "export")
    if spec.bits <= 4:
        return (TensorProto.INT4, ml.int4) if spec.symmetric else (TensorProto.UINT4, ml.uint4)
    if spec.bits <= 8:
        return (TensorProto.INT8, np.int8) if spec.symmetric else (TensorProto.UINT8, np.uint8)
    return (TensorProto.INT16, np.int16) if spec.symmetric else (TensorProto.UINT16, np.uint16)


def _array(name: str, values: np.ndarray, dtype) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(np.asarray(values).astype(dtype)), name)


def qdq_parts(name: str, q: QuantizedTensor, transposed: bool = False):
    """Initializers and the DequantizeLinear node that rebuild ``q`` (or its 2-D transpose) under
    the tensor name ``name``. Returns (initializers, node)."""
    from onnx import helper

    spec = q.spec
    if spec.scheme != "affine":
        raise ExportError(f"{TARGET} holds integer affine codes; tensor {name!r} ({describe(spec)}) "
                          f"uses scheme {spec.scheme!r}")
    shape = tuple(int(s) for s in q.shape)
    codes = np.asarray(q.codes).reshape(shape)
    scale = np.asarray(q.params["scale"], np.float32)
    zp = np.asarray(q.params["zero_point"]) if not spec.symmetric else None
    attrs: dict[str, int] = {}
    if spec.granularity == "tensor":
        scale = scale.reshape(())
        zp = zp.reshape(()) if zp is not None else None
    else:
        ax = spec.axis % len(shape)
        if spec.granularity == "channel":
            scale = scale.reshape(shape[ax])
            zp = zp.reshape(shape[ax]) if zp is not None else None
        else:
            ng = math.ceil(shape[ax] / group_len(shape[ax], spec))
            moved = shape[:ax] + shape[ax + 1 :] + (ng,)
            scale = np.moveaxis(scale.reshape(moved), -1, ax)
            zp = np.moveaxis(zp.reshape(moved), -1, ax) if zp is not None else None
            attrs["block_size"] = group_len(shape[ax], spec)
        if transposed:
            ax = 1 - ax
            if spec.granularity == "group":
                scale = scale.T
                zp = zp.T if zp is not None else None
        attrs["axis"] = ax
    if transposed:
        codes = codes.T
    _, np_type = _code_type(spec)
    inits = [_array(f"{name}_quantized", codes, np_type), _array(f"{name}_scale", scale, np.float32)]
    inputs = [inits[0].name, inits[1].name]
    if zp is not None:
        inits.append(_array(f"{name}_zero_point", zp, np_type))
        inputs.append(inits[2].name)
    node = helper.make_node("DequantizeLinear", inputs, [name], name=f"{name}_dequantize", **attrs)
    return inits, node


def quantize_initializers(model, tensors: Mapping[str, Tensor]) -> dict[str, str]:
    """Rewrite an ONNX ModelProto in place: each float initializer whose values equal a quantized
    tensor of ``tensors`` (or its 2-D transpose) becomes codes + DequantizeLinear. Raises
    ExportError for a quantized tensor that no initializer holds. Returns {initializer: tensor}."""
    from onnx import TensorProto, numpy_helper

    wanted: dict[bytes, tuple[str, bool]] = {}
    for name, t in tensors.items():
        if not isinstance(t, QuantizedTensor):
            continue
        values = np.ascontiguousarray(t.dequantize())
        wanted.setdefault(values.tobytes() + repr(values.shape).encode(), (name, False))
        if values.ndim == 2:
            tv = np.ascontiguousarray(values.T)
            wanted.setdefault(tv.tobytes() + repr(tv.shape).encode(), (name, True))
    graph = model.graph
    keep, new_nodes, mapping = [], [], {}
    for init in graph.initializer:
        hit = None
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init)
            hit = wanted.get(np.ascontiguousarray(arr).tobytes() + repr(arr.shape).encode())
        if hit is None:
            keep.append(init)
            continue
        src, transposed = hit
        inits, node = qdq_parts(init.name, tensors[src], transposed)
        keep.extend(inits)
        new_nodes.append(node)
        mapping[init.name] = src
    quantized = {n for n, t in tensors.items() if isinstance(t, QuantizedTensor)}
    missing = sorted(quantized - set(mapping.values()))
    if missing:
        raise ExportError(
            f"{TARGET}: the exported graph has no initializer holding quantized tensor(s) "
            f"{missing[:3]} (folded into other constants?)"
        )
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + nodes)
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version < OPSET:
            op.version = OPSET
    return mapping


def strip_debug(model) -> None:
    """Drop the exporter's per-node debug metadata (stack traces with local paths, FX nodes)."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for vi in model.graph.value_info:
        del vi.metadata_props[:]


def to_onnx(
    stream: bytes | Mapping[str, Tensor],
    module,
    example_inputs: Sequence,
    path: str | os.PathLike | None = None,
    *,
    layout=None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_shapes=None,
):
    """Export ``module`` carrying the stream's values to an ONNX QDQ model (opset 21).

    ``example_inputs``: a tuple of example tensors for ``torch.onnx.export``; ``dynamic_shapes``
    is passed on. The module is not changed (a deep copy is loaded). Writes ``path`` when given
    (atomically). Returns the ModelProto."""
    import copy

    onnx = need("onnx", "export")
    need("onnxscript", "export")
    import torch

    from ..share.model import atomic_write

    tensors = stream_tensors(stream, layout)
    for name, t in tensors.items():  # refuse before the (slow) export
        if isinstance(t, QuantizedTensor) and t.spec.scheme != "affine":
            raise ExportError(f"{TARGET} holds integer affine codes; tensor {name!r} "
                              f"({describe(t.spec)}) uses scheme {t.spec.scheme!r}")
    model = copy.deepcopy(module).eval()
    state = model.state_dict()
    arrays = {n: t.dequantize() for n, t in tensors.items()}
    if set(arrays) != set(state):
        raise ExportError(f"{TARGET}: the stream's tensors do not match the module's state dict "
                          f"(e.g. {sorted(set(arrays) ^ set(state))[:3]})")
    decode_into = {n: torch.from_numpy(np.ascontiguousarray(a).copy()).to(state[n].dtype)
                   for n, a in arrays.items()}
    model.load_state_dict(decode_into, strict=True)
    try:
        prog = torch.onnx.export(model, tuple(example_inputs), dynamo=True, opset_version=OPSET,
                                 input_names=input_names, output_names=output_names,
                                 dynamic_shapes=dynamic_shapes, verbose=False)
    except Exception as e:  # the exporter's own errors (unsupported ops, shapes)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export failed: {first}") from None
    proto = prog.model_proto
    strip_debug(proto)
    quantize_initializers(proto, tensors)
    onnx.checker.check_model(proto)
    if path is not None:
        atomic_write(path, proto.SerializeToString())
    return proto

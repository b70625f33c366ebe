"""ONNX QDQ export: DequantizeLinear in onnxruntime rebuilds nnshare's values; the exported
digits MLP and CNN match the torch dequantized models."""

import copy

import numpy as np
import pytest
import torch

import nnshare
from nnshare import QuantSpec
from nnshare.export import ExportError
from nnshare.quant.affine import quantize

onnx = pytest.importorskip("onnx")  # the 'export' extra; `make test` installs it
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from nnshare.export.onnx_qdq import qdq_parts, quantize_initializers, to_onnx  # noqa: E402


def _session(proto):
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


CASES = [
    ((16, 24), QuantSpec(bits=8, granularity="tensor")),
    ((16, 24), QuantSpec(bits=8, granularity="channel", symmetric=False)),
    ((16, 24), QuantSpec(bits=4, granularity="channel")),
    ((16, 24), QuantSpec(bits=4, granularity="group", group_size=8, axis=1, symmetric=False)),
    ((16, 24), QuantSpec(bits=3, granularity="group", group_size=7, axis=1)),  # ragged
    ((16, 24), QuantSpec(bits=2, granularity="group", group_size=5, axis=0, symmetric=False)),
    ((16, 24), QuantSpec(bits=12, granularity="channel", symmetric=False)),
    ((16, 24), QuantSpec(bits=16, granularity="tensor")),
    ((6, 4, 3, 3), QuantSpec(bits=6, granularity="channel", scale_dtype="fp16")),
    ((6, 4, 3, 3), QuantSpec(bits=4, granularity="group", group_size=2, axis=1, symmetric=False)),
    ((6, 4, 3), QuantSpec(bits=5, granularity="channel", axis=2)),
    ((8, 10), QuantSpec(bits=8, granularity="channel", channel_bits=(2, 3, 4, 8, 8, 6, 5, 4))),
]


@pytest.mark.parametrize("shape, spec", CASES, ids=[f"{c[0]}-b{c[1].bits}-{c[1].granularity}" for c in CASES])
def test_dequantize_linear_is_bit_exact(shape, spec):
    from onnx import TensorProto, helper

    rng = np.random.default_rng(len(shape) * 7 + spec.bits)
    q = quantize(rng.standard_normal(shape).astype(np.float32) * 0.1, spec)
    want = q.dequantize()
    parts = [qdq_parts("w", q)]
    if len(shape) == 2:
        parts.append(qdq_parts("wt", q, transposed=True))
    inits = [i for p in parts for i in p[0]]
    shapes = [shape, shape[::-1]]
    outs = [helper.make_tensor_value_info(p[1].output[0], TensorProto.FLOAT, s)
            for p, s in zip(parts, shapes, strict=False)]
    graph = helper.make_graph([p[1] for p in parts], "dq", [], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    onnx.checker.check_model(model)
    got = _session(model).run(None, {})
    assert np.array_equal(got[0].view(np.uint32), want.view(np.uint32))
    if len(shape) == 2:
        assert np.array_equal(got[1], want.T)
    kind = parts[0][0][0].data_type
    expect = {(True, 4): TensorProto.INT4, (False, 4): TensorProto.UINT4, (True, 8): TensorProto.INT8,
              (False, 8): TensorProto.UINT8, (True, 16): TensorProto.INT16, (False, 16): TensorProto.UINT16}
    width = 4 if spec.bits <= 4 else 8 if spec.bits <= 8 else 16
    assert kind == expect[(spec.symmetric, width)]


SPECS = [
    QuantSpec(bits=8, granularity="channel"),
    QuantSpec(bits=4, granularity="group", group_size=16, axis=1, symmetric=False),
]


@pytest.mark.parametrize("spec", SPECS, ids=["int8-channel", "uint4-group16"])
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_onnxruntime_matches_torch_dequantized(request, digits, which, spec, tmp_path):
    model = request.getfixturevalue(f"trained_{which}")
    _, _, xte, _ = digits
    plan = {n: spec for n, p in model.state_dict().items() if p.ndim >= 2}
    data = nnshare.encode(model, plan)
    ref = nnshare.decode(data, into=copy.deepcopy(model))
    path = tmp_path / "m.onnx"
    proto = to_onnx(data, model, (xte[:2],), path, input_names=["x"],
                    dynamic_shapes=({0: torch.export.Dim("batch")},))
    out = _session(onnx.load(str(path))).run(None, {"x": xte.numpy()})[0]
    with torch.no_grad():
        want = ref(xte).numpy()
    assert np.allclose(out, want, rtol=1e-5, atol=1e-5)
    assert (out.argmax(1) == want.argmax(1)).all()
    floats = [i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
              and len(i.dims) >= 2 and not i.name.endswith("_scale")]
    assert floats == []  # every weight is an integer initializer
    dq = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    assert len(dq) == len(plan)
    code_bytes = sum(len(i.raw_data) for i in proto.graph.initializer if i.name.endswith("_quantized"))
    want = sum((p.numel() + 1) // 2 if spec.bits <= 4 else p.numel() for n, p in model.state_dict().items()
               if n in plan)
    assert code_bytes == want
    payload = sum(len(i.raw_data) for i in proto.graph.initializer)
    assert payload < 0.35 * 4 * sum(p.numel() for p in model.parameters())
    assert path.stat().st_size - payload < 8192  # graph, names and shapes

def test_missing_initializer_and_mismatched_module(trained_mlp):
    from onnx import helper

    spec = QuantSpec(bits=8, granularity="channel")
    data = nnshare.encode(trained_mlp, {"0.weight": spec})
    tensors = nnshare.format.read_stream(data).tensors
    empty = helper.make_model(helper.make_graph([], "g", [], []))
    with pytest.raises(ExportError, match=r"no initializer holding quantized tensor\(s\) \['0.weight'\]"):
        quantize_initializers(empty, tensors)
    with pytest.raises(ExportError, match="do not match the module"):
        to_onnx(data, torch.nn.Sequential(torch.nn.Linear(64, 10)), (torch.zeros(1, 64),))

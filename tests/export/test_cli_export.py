"""`nnshare export`: each target from the command line; one-line errors, exit 2, no output."""

import json
import sys

import numpy as np
import pytest
import torch

import nnshare
from nnshare import QuantSpec
from nnshare.cli import main
from nnshare.digits import digits_mlp

pytest.importorskip("compressed_tensors")
pytest.importorskip("onnxruntime")


def cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["nnshare", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    d = tmp_path_factory.mktemp("s")
    m = digits_mlp()
    g = QuantSpec(bits=4, granularity="group", group_size=16, axis=1, symmetric=False)
    plan = {n: g for n, p in m.state_dict().items() if p.ndim == 2}
    (d / "g4.nnsh").write_bytes(nnshare.encode(m, plan))
    ragged = QuantSpec(bits=4, granularity="group", group_size=24, axis=1)
    (d / "ragged.nnsh").write_bytes(nnshare.encode(m, {"0.weight": ragged}))
    t4 = QuantSpec(bits=4, granularity="tensor", scale_dtype="bf16")
    plan_t4 = {n: t4 if p.ndim == 2 else "bf16" for n, p in m.state_dict().items()}
    (d / "t4.nnsh").write_bytes(nnshare.encode(m, plan_t4))
    return d, m


def test_compressed_tensors_and_onnx(monkeypatch, capsys, streams, tmp_path):
    d, m = streams
    code, out, err = cli(monkeypatch, capsys, "export", d / "g4.nnsh", "--to", "compressed-tensors",
                         "-o", tmp_path / "ct")
    assert code == 0, err
    assert "3 packed weights in 1 config group(s), 0 dense" in out
    cfg = json.loads((tmp_path / "ct" / "config.json").read_text())["quantization_config"]
    assert cfg["config_groups"]["group_0"]["weights"]["group_size"] == 16
    code, out, err = cli(monkeypatch, capsys, "export", d / "g4.nnsh", "--to", "onnx", "-o",
                         tmp_path / "m.onnx", "--module", "nnshare.digits:digits_mlp",
                         "--input-shape", "1,64")
    assert code == 0, err
    assert "3 DequantizeLinear weights" in out
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((5, 64), dtype=np.float32)
    ref = nnshare.decode((d / "g4.nnsh").read_bytes(), into=digits_mlp(seed=3))
    with torch.no_grad():
        assert np.allclose(sess.run(None, {"input": x})[0], ref(torch.from_numpy(x)).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["ragged.nnsh", "--to", "compressed-tensors"], "error: compressed-tensors needs the group size to "
         "divide the row length; tensor '0.weight' (affine 4-bit symmetric group 24 on axis 1)"),
        (["t4.nnsh", "--to", "nnr", "--nncodec-python", "/nonexistent/python"], "does not exist"),
        (["g4.nnsh", "--to", "nnr", "--nncodec-python", sys.executable],
         "error: NNR has no zero point; tensor '0.weight' (affine 4-bit asymmetric group 16 on axis 1)"),
        (["g4.nnsh", "--to", "tflite"], "error: --to must be one of compressed-tensors, onnx, nnr"),
        (["g4.nnsh", "--to", "onnx"], "needs --module"),
        (["g4.nnsh", "--to", "onnx", "--module", "nnshare.digits:nope", "--input-shape", "1,64"],
         "cannot load --module"),
        (["g4.nnsh", "--to", "onnx", "--module", "nnshare.digits:digits_mlp", "--input-shape", "a,b"],
         "--input-shape must be"),
        (["g4.nnsh", "--to", "compressed-tensors", "--module", "x:y"], "--module does not apply to --to "
         "compressed-tensors"),
        (["g4.nnsh", "--to", "compressed-tensors", "--fallback", "skip"], "fallback must be"),
        (["missing.nnsh", "--to", "onnx"], "file not found"),
    ],
)
def test_errors_are_one_line(monkeypatch, capsys, streams, tmp_path, args, needle):
    d, _ = streams
    args = [d / args[0], *args[1:]] if args[0].endswith(".nnsh") else args
    target = tmp_path / "out"
    code, out, err = cli(monkeypatch, capsys, "export", *args, "-o", target)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert not target.exists()

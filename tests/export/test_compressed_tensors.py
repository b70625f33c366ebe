"""compressed-tensors export: the library's own decompression gives nnshare's values bit for bit."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare import QuantSpec
from nnshare.export import ExportError, to_compressed_tensors
from nnshare.export.compressed_tensors import pack_int32, unpack_int32
from nnshare.format import decode_arrays

ct = pytest.importorskip("compressed_tensors")  # the 'export' extra; `make test` installs it


def _mlp(seed=0, widths=(64, 96, 10)):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def ct_decompress(folder, skeleton):
    """compressed-tensors' load path: apply the folder's config, compress, load, decompress."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import QuantizationConfig, apply_quantization_config
    from safetensors.torch import load_file

    cfg = json.loads((folder / "config.json").read_text())["quantization_config"]
    qc = QuantizationConfig.model_validate(cfg)
    apply_quantization_config(skeleton, qc)
    comp = ModelCompressor(quantization_config=qc)
    comp.compress_model(skeleton)
    skeleton.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    comp.decompress_model(skeleton)
    return {k: v.numpy() for k, v in skeleton.state_dict().items()}


LAYOUTS = [
    QuantSpec(bits=8, granularity="tensor"),
    QuantSpec(bits=8, granularity="tensor", symmetric=False),
    QuantSpec(bits=8, granularity="channel"),
    QuantSpec(bits=8, granularity="channel", symmetric=False, scale_dtype="fp16"),
    QuantSpec(bits=4, granularity="channel", restricted=True),
    QuantSpec(bits=4, granularity="group", group_size=32, axis=1),
    QuantSpec(bits=4, granularity="group", group_size=16, axis=1, symmetric=False, scale_dtype="bf16"),
    QuantSpec(bits=4, granularity="group", group_size=128, axis=1),  # capped at the row length
    QuantSpec(bits=3, granularity="group", group_size=32, axis=1, symmetric=False),
    QuantSpec(bits=2, granularity="channel", symmetric=False),
    QuantSpec(bits=5, granularity="tensor", symmetric=False),
    QuantSpec(bits=1, granularity="channel", symmetric=False),
]


@pytest.mark.parametrize("spec", LAYOUTS, ids=lambda s: f"b{s.bits}-{s.granularity}-{s.symmetric}")
def test_decompression_is_bit_exact(tmp_path, spec):
    model = _mlp()
    data = nnshare.encode(model, {"0.weight": spec, "2.weight": spec, "0.bias": "fp16"})
    ref = decode_arrays(data)
    info = to_compressed_tensors(data, tmp_path)
    assert info["packed"] == ["0.weight", "2.weight"] and info["dense"] == []
    got = ct_decompress(tmp_path, _mlp(seed=1))
    assert set(ref) <= set(got)
    for k in ref:
        assert got[k].dtype == np.float32
        assert np.array_equal(got[k].view(np.uint32), ref[k].view(np.uint32)), k


def test_packed_size_is_analytic(tmp_path):
    spec = QuantSpec(bits=3, granularity="group", group_size=32, axis=1)
    data = nnshare.encode(_mlp(), {"0.weight": spec})
    to_compressed_tensors(data, tmp_path)
    from safetensors.numpy import load_file

    t = load_file(str(tmp_path / "model.safetensors"))
    assert t["0.weight_packed"].shape == (96, 64 * 3 // 32)
    assert t["0.weight_scale"].shape == (96, 2)
    assert t["0.weight_packed"].dtype == np.int32


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
def test_pack_matches_library(bits):
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32

    rng = np.random.default_rng(bits)
    v = rng.integers(0, 1 << bits, size=(5, 77))
    ours = pack_int32(v, bits)
    theirs = pack_to_int32(torch.from_numpy(v - (1 << (bits - 1))).to(torch.int8), bits).numpy()
    assert np.array_equal(ours, theirs)
    assert np.array_equal(unpack_int32(ours, bits, 77), v)


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_few_rows(tmp_path, bits):
    """One packed word of zero points per group column (rows * bits <= 32)."""
    torch.manual_seed(bits)
    model = nn.Sequential(nn.Linear(64, 2))
    spec = QuantSpec(bits=bits, granularity="group", group_size=16, axis=1)
    data = nnshare.encode(model, {"0.weight": spec})
    to_compressed_tensors(data, tmp_path)
    got, ref = ct_decompress(tmp_path, nn.Sequential(nn.Linear(64, 2))), decode_arrays(data)
    assert all(np.array_equal(got[k], ref[k]) for k in ref)
    if bits != 4:
        asym = nnshare.encode(model, {"0.weight": QuantSpec(bits=bits, granularity="group", group_size=16,
                                                            axis=1, symmetric=False)})
        to_compressed_tensors(asym, tmp_path / "a")
        got, ref = ct_decompress(tmp_path / "a", nn.Sequential(nn.Linear(64, 2))), decode_arrays(asym)
        assert all(np.array_equal(got[k], ref[k]) for k in ref)


def test_mixed_layouts_get_one_group_each(tmp_path):
    plan = {"0.weight": QuantSpec(bits=4, granularity="group", group_size=32, axis=1),
            "2.weight": QuantSpec(bits=8, granularity="channel", symmetric=False)}
    data = nnshare.encode(_mlp(), plan)
    info = to_compressed_tensors(data, tmp_path, hf_config={"model_type": "mlp"})
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert info["config_groups"] == 2 and cfg["model_type"] == "mlp"
    targets = sorted(t for g in cfg["quantization_config"]["config_groups"].values() for t in g["targets"])
    assert targets == ["0", "2"]
    ref = decode_arrays(data)
    got = ct_decompress(tmp_path, _mlp(seed=3))
    assert all(np.array_equal(got[k], ref[k]) for k in ref)


@pytest.mark.parametrize(
    "spec, shape, needle",
    [
        (QuantSpec(bits=4, granularity="group", group_size=24, axis=1), (8, 64), "divide the row length"),
        (QuantSpec(bits=12, granularity="channel"), (8, 64), "1..8-bit"),
        (QuantSpec(bits=8, granularity="channel", axis=1), (8, 64), "output axis 0"),
        (QuantSpec(bits=4, granularity="group", group_size=16, axis=0), (8, 64), "last axis"),
        (QuantSpec(bits=8, granularity="channel", channel_bits=(4,) * 7 + (8,)), (8, 64),
         "width per channel"),
        (QuantSpec(bits=8, granularity="channel"), (4, 2, 3, 3), "shape (4, 2, 3, 3)"),
        (QuantSpec(bits=4, granularity="group", group_size=16, axis=1, symmetric=False), (2, 64),
         "at most 8 rows"),
    ],
)
def test_unsupported_layouts_are_named(tmp_path, spec, shape, needle):
    state = {"m.weight": torch.randn(*shape)}
    data = nnshare.encode(state, {"m.weight": spec})
    with pytest.raises(ExportError, match="tensor 'm.weight'") as e:
        to_compressed_tensors(data, tmp_path)
    assert needle in str(e.value)
    assert not (tmp_path / "model.safetensors").exists()


def test_dense_fallback_keeps_values(tmp_path):
    state = {"conv.weight": torch.randn(4, 2, 3, 3), "fc.weight": torch.randn(8, 32)}
    spec = QuantSpec(bits=8, granularity="channel")
    data = nnshare.encode(state, {"conv.weight": spec, "fc.weight": spec})
    info = to_compressed_tensors(data, tmp_path, fallback="dense")
    assert info["dense"] == ["conv.weight"] and info["packed"] == ["fc.weight"]
    from safetensors.numpy import load_file

    t = load_file(str(tmp_path / "model.safetensors"))
    assert np.array_equal(t["conv.weight"], decode_arrays(data)["conv.weight"])
    with pytest.raises(ExportError, match="fallback"):
        to_compressed_tensors(data, tmp_path, fallback="skip")
    only_conv = nnshare.encode({"conv.weight": state["conv.weight"]}, {"conv.weight": spec})
    with pytest.raises(ExportError, match="no tensor"):
        to_compressed_tensors(only_conv, tmp_path / "x", fallback="dense")

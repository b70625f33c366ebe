"""Real checkpoints in and out: folders, sharded indexes, bf16 kept bf16, tied tensors coded once
and restored shared, safetensors' deduplicating save_model files, --dtype."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch
from safetensors.torch import save_model

import nnshare
from nnshare.errors import ModelFileError
from nnshare.io import load_checkpoint, read_safetensors, save_safetensors
from nnshare.state import model_state

CLI = [sys.executable, "-m", "nnshare.cli"]


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 16)
        self.mid = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight  # tied


def test_bf16_model_round_trips_as_bf16(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.LayerNorm(16)).to(torch.bfloat16)
    src = {k: v.clone() for k, v in m.state_dict().items()}
    save_torch(src, str(tmp_path / "m.safetensors"))
    assert run("encode", tmp_path / "m.safetensors", "-o", tmp_path / "m.nnsh", "--preset",
               "w8-channel").returncode == 0
    r = run("decode", tmp_path / "m.nnsh", "-o", tmp_path / "d.safetensors")
    assert r.returncode == 0, r.stderr
    got = load_torch(str(tmp_path / "d.safetensors"))
    assert {k: v.dtype for k, v in got.items()} == {k: torch.bfloat16 for k in src}
    for k in ("0.bias", "1.weight", "1.bias"):  # kept in float: exact, and sent as bf16 (16 bits)
        assert torch.equal(got[k], src[k]), k
    rep = json.loads(run("inspect", tmp_path / "m.nnsh", "--json").stdout)
    assert {t["name"]: t["scheme"] for t in rep["tensors"]}["0.bias"] == "bf16"
    err = (got["0.weight"].float() - src["0.weight"].float()).abs().max()
    assert err <= src["0.weight"].float().abs().max() / 127 + 1e-2
    # --dtype overrides; the API's state dict keeps bf16 too
    assert run("decode", tmp_path / "m.nnsh", "-o", tmp_path / "f.safetensors", "--dtype",
               "fp32").returncode == 0
    assert load_torch(str(tmp_path / "f.safetensors"))["0.bias"].dtype == torch.float32
    sd = nnshare.decode((tmp_path / "m.nnsh").read_bytes(), state_dict=True)
    assert sd["1.weight"].dtype == torch.bfloat16


def test_tied_weights_are_coded_once_and_restored_shared(tmp_path):
    m = Tied()
    st = model_state(m)
    assert st.ties == {"head.weight": "emb.weight"}
    data = nnshare.encode(m, "w8-channel")
    rep = nnshare.inspect(data)
    names = [r.name for r in rep.rows]
    assert names.count("emb.weight") == 1 and "head.weight" not in names
    untied = nnshare.encode({k: v.clone() for k, v in m.state_dict().items()}, "w8-channel")
    assert len(untied) - len(data) >= 50 * 16  # the second copy's codes are not sent
    fresh = Tied()
    with torch.no_grad():
        fresh.emb.weight.zero_()
    nnshare.decode(data, into=fresh)
    assert fresh.head.weight is fresh.emb.weight and fresh.emb.weight.abs().sum() > 0
    arrays = nnshare.decode(data)
    assert arrays["head.weight"] is arrays["emb.weight"]
    sd = nnshare.decode(data, state_dict=True)
    assert sd["head.weight"] is sd["emb.weight"]
    # to a file and back: one copy in the file, the tie in its metadata
    (tmp_path / "t.nnsh").write_bytes(data)
    assert run("decode", tmp_path / "t.nnsh", "-o", tmp_path / "t.safetensors").returncode == 0
    a, _, ties = read_safetensors(tmp_path / "t.safetensors")
    assert "head.weight" not in a and ties == {"head.weight": "emb.weight"}
    assert load_checkpoint(tmp_path / "t.safetensors").ties == {"head.weight": "emb.weight"}


def test_safetensors_save_model_files_load(tmp_path):
    m = Tied()
    save_model(m, str(tmp_path / "dedup.safetensors"))  # drops one of the tied names
    st = load_checkpoint(tmp_path / "dedup.safetensors")
    assert len(st.ties) == 1 and set(st.arrays) | set(st.ties) == set(m.state_dict())
    r = run("encode", tmp_path / "dedup.safetensors", "-o", tmp_path / "d.nnsh")
    assert r.returncode == 0, r.stderr
    fresh = Tied()
    nnshare.decode((tmp_path / "d.nnsh").read_bytes(), into=fresh)
    w = m.mid.weight.detach()
    assert torch.allclose(fresh.mid.weight, w, atol=float(w.abs().max()) / 127 + 1e-7)  # ptq-t8


def test_folder_and_sharded_index(tmp_path):
    rng = np.random.default_rng(0)
    a = {"a.weight": rng.normal(size=(8, 8)).astype(np.float32), "a.bias": np.zeros(8, np.float32)}
    b = {"b.weight": rng.normal(size=(4, 8)).astype(np.float32), "pos_ids": np.arange(5)}
    d = tmp_path / "sharded"
    d.mkdir()
    save_safetensors(a, d / "model-00001-of-00002.safetensors")
    save_safetensors(b, d / "model-00002-of-00002.safetensors")
    wm = {k: "model-00001-of-00002.safetensors" for k in a}
    wm.update({k: "model-00002-of-00002.safetensors" for k in b})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    for path in (d, d / "model.safetensors.index.json"):
        st = load_checkpoint(path)
        assert set(st.arrays) == set(wm) and st.roles["pos_ids"] == "index"
        assert st.arrays["pos_ids"].dtype == np.int64
    r = run("encode", d, "-o", tmp_path / "s.nnsh", "--preset", "w4-channel")
    assert r.returncode == 0, r.stderr
    got = nnshare.decode((tmp_path / "s.nnsh").read_bytes())
    assert np.array_equal(got["pos_ids"], b["pos_ids"]) and got["pos_ids"].dtype == np.int64
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../evil.safetensors"}}))
    with pytest.raises(ModelFileError, match="not found beside the index"):
        load_checkpoint(d)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("encode", empty, "-o", tmp_path / "e.nnsh")
    assert r.returncode == 2 and "no weights file" in r.stderr


def test_safetensors_reader_refuses_damage(tmp_path):
    save_safetensors({"w": np.ones((3, 3), np.float32)}, tmp_path / "ok.safetensors")
    blob = (tmp_path / "ok.safetensors").read_bytes()
    for i, bad in enumerate([blob[:20], b"\xff" * 8 + blob[8:], blob[:-4]]):
        (tmp_path / f"bad{i}.safetensors").write_bytes(bad)
        with pytest.raises(ModelFileError):
            load_checkpoint(tmp_path / f"bad{i}.safetensors")

"""The command line: real files, one-line errors with exit status 2, no half-written outputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from nnshare.link import Link

CLI = [sys.executable, "-m", "nnshare.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 40), torch.nn.ReLU(), torch.nn.Linear(40, 16))
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    torch.save(sd, d / "model.pt")
    save_file({k: v.numpy() for k, v in sd.items()}, str(d / "model.safetensors"))
    return d


def test_encode_inspect_decode_agreed(model_files, tmp_path):
    out = tmp_path / "enc.nnsh"
    r = run("encode", model_files / "model.pt", "-o", out, "--preset", "ptq-t8", "--mode", "agreed")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size * 8 == 27_824  # format v2: 20-byte header
    r = run("inspect", out, "--like", model_files / "model.safetensors", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["shared_bits"] == 27_456 and rep["total_bits"] == 8 * out.stat().st_size
    r = run("inspect", out, "--like", model_files / "model.pt")
    assert "27,456" in r.stdout and "73." in r.stdout
    dec = tmp_path / "dec.safetensors"
    r = run("decode", out, "-o", dec, "--like", model_files / "model.pt")
    assert r.returncode == 0, r.stderr
    arrays = load_file(str(dec))
    ref = load_file(str(model_files / "model.safetensors"))
    assert set(arrays) == set(ref)
    assert np.array_equal(arrays["0.bias"], ref["0.bias"])
    assert np.abs(arrays["0.weight"] - ref["0.weight"]).max() <= np.abs(ref["0.weight"]).max() / 254 + 1e-7


def test_encode_with_bits_options(model_files, tmp_path):
    out = tmp_path / "e.nnsh"
    r = run("encode", model_files / "model.safetensors", "-o", out, "--bits", "3",
            "--granularity", "group", "--group-size", "7", "--axis", "1", "--asymmetric")
    assert r.returncode == 0, r.stderr
    rep = json.loads(run("inspect", out, "--json").stdout)
    schemes = {t["name"]: t["scheme"] for t in rep["tensors"]}
    assert schemes["0.weight"] == "affine u3 g7@1" and schemes["0.bias"] == "fp32"


@pytest.mark.parametrize("args, msg", [
    (["encode", "missing.pt", "-o", "x.nnsh"], "model file not found"),
    (["encode", "junk.pt", "-o", "x.nnsh"], "cannot read"),
    (["encode", "model.pt", "-o", "x.nnsh", "--bits", "17"], "bits must be in 1..16"),
    (["encode", "model.pt", "-o", "x.nnsh", "--preset", "nope"], "unknown preset"),
    (["encode", "model.pt", "-o", "x.nnsh", "--bits", "4", "--preset", "ptq-t8"], "only one of"),
    (["decode", "junk.pt", "-o", "x.safetensors"], "wrong magic"),
    (["inspect", "missing.nnsh"], "file not found"),
    (["encode", "model.pt", "-o", "no/such/dir/x.nnsh"], "cannot write"),
    (["encode", "model.pt", "-o", "."], "is a directory"),
    (["encode", "model.pt", "-o", "x.nnsh", "--plan", "plan_bad_rules.json"], "'rules' list"),
    (["encode", "model.pt", "-o", "x.nnsh", "--plan", "plan_bad_type.json"], "must be an integer"),
    (["encode", "model.pt", "-o", "x.nnsh", "--plan", "plan_bad_rule.json"], "JSON object"),
])
def test_bad_input_is_one_line_and_exit_2(model_files, tmp_path, args, msg):
    (tmp_path / "junk.pt").write_bytes(b"not a model at all")
    (tmp_path / "plan_bad_rules.json").write_text('{"rules": {"a": 1}}')
    (tmp_path / "plan_bad_type.json").write_text('{"rules": [{"spec": {"group_size": "4"}}]}')
    (tmp_path / "plan_bad_rule.json").write_text('{"rules": [1]}')
    (tmp_path / "model.pt").write_bytes((model_files / "model.pt").read_bytes())
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], r.stderr
    assert not (tmp_path / "x.nnsh").exists() and not (tmp_path / "x.safetensors").exists()


def test_truncated_stream_leaves_no_output(model_files, tmp_path):
    out = tmp_path / "enc.nnsh"
    assert run("encode", model_files / "model.pt", "-o", out).returncode == 0
    cut = tmp_path / "cut.nnsh"
    cut.write_bytes(out.read_bytes()[:-10])
    r = run("decode", cut, "-o", tmp_path / "d.safetensors")
    assert r.returncode == 2 and "truncated at byte" in r.stderr
    assert not (tmp_path / "d.safetensors").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_decode_in_two_processes_writes_the_same_file(tmp_path):
    from nnshare.format import write_stream
    from nnshare.format.forked_decode import MIN_VALUES
    from nnshare.quant.rate import quantize_tensor

    rng = np.random.default_rng(0)
    shapes = {"emb": (1024, 512), "a.weight": (512, 512), "b.weight": (512, 512), "b.bias": (512,)}
    qs = {k: quantize_tensor(rng.standard_normal(sh).astype(np.float32) * 0.05, 0.01)
          for k, sh in shapes.items()}
    assert sum(q.numel for q in qs.values()) > MIN_VALUES  # big enough to fork
    (tmp_path / "s.nnsh").write_bytes(write_stream(qs, entropy="auto")[0])
    for n in (1, 2):
        r = run("decode", tmp_path / "s.nnsh", "-o", tmp_path / f"d{n}.safetensors", "--processes", n)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "d2.safetensors").read_bytes() == (tmp_path / "d1.safetensors").read_bytes()
    for bad, msg in (("0", "--processes must be a positive integer, got 0"), ("two", "'--processes'")):
        r = run("decode", tmp_path / "s.nnsh", "-o", tmp_path / "x.safetensors", "--processes", bad)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and msg in lines[0], r.stderr
    assert not (tmp_path / "x.safetensors").exists()


class Evil:
    """Any non-tensor object: loading it would need unpickling a class."""


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"w": Evil()}, tmp_path / "evil.pt")
    r = run("encode", tmp_path / "evil.pt", "-o", tmp_path / "x.nnsh")
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_digits_demo_quick(tmp_path):
    r = run("demo", "--digits", "--quick", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "digits_demo.json").read_text())
    by = {(row["bits"], row["granularity"]): row for row in res["rows"]}
    assert by[(8, "tensor")]["accuracy"] >= res["float32_accuracy"] - 0.01
    assert by[(2, "tensor")]["stream_bits"] < by[(8, "tensor")]["stream_bits"] / 3


def test_bf16_safetensors_input(tmp_path):
    from safetensors.torch import save_file as save_torch

    torch.manual_seed(0)
    save_torch({"w": torch.randn(4, 3).bfloat16(), "b": torch.randn(4).bfloat16()},
               str(tmp_path / "m.safetensors"))
    r = run("encode", tmp_path / "m.safetensors", "-o", tmp_path / "m.nnsh")
    assert r.returncode == 0, r.stderr
    rep = json.loads(run("inspect", tmp_path / "m.nnsh", "--json").stdout)
    assert {t["name"] for t in rep["tensors"]} == {"w", "b", "__nnshare_meta__"}
    assert {t["name"]: t["scheme"] for t in rep["tensors"]}["b"] == "bf16"  # kept in its own dtype


def test_encode_under_a_budget(model_files, tmp_path):
    out = tmp_path / "b.nnsh"
    r = run("encode", model_files / "model.pt", "-o", out, "--budget-bits", "12000", "--mode", "agreed")
    assert r.returncode == 0, r.stderr
    assert 8 * out.stat().st_size <= 12_000
    rep = json.loads(run("inspect", out, "--like", model_files / "model.pt", "--json").stdout)
    assert rep["total_bits"] <= 12_000
    assert any("mixed" in t["scheme"] for t in rep["tensors"])
    r = run("encode", model_files / "model.pt", "-o", out, "--airtime", "2.5", "--link", "mcs=0",
            "--mixed", "tensor")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size <= Link().max_stream_bytes(2.5)  # the one airtime model
    rep = json.loads(run("inspect", out, "--json", "--airtime", "--link", "mcs=0").stdout)
    assert rep["airtime"]["total_us"] <= 2500
    r = run("inspect", out, "--airtime", "--link", "mcs=4,bw=80,nss=2")
    assert r.returncode == 0 and "HE MCS4 (16-QAM 3/4) 80 MHz 2SS" in r.stdout
    assert "fixed per-PPDU" in r.stdout
    r = run("inspect", out, "--link", "mcs=4")
    assert r.returncode == 2 and "give --airtime" in r.stderr
    r = run("inspect", out, "--airtime", "--link", "mcs=12")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "MCS must be 0-11" in r.stderr


def test_impossible_budget_is_one_line(model_files, tmp_path):
    r = run("encode", model_files / "model.pt", "-o", tmp_path / "b.nnsh", "--budget-bytes", "100")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "below the fixed part" in r.stderr
    assert not (tmp_path / "b.nnsh").exists()


def test_rate_control_target(model_files, tmp_path):
    out = tmp_path / "r.nnsh"
    r = run("encode", model_files / "model.pt", "-o", out, "--target-bpp", "3", "--method", "rdo")
    assert r.returncode == 0, r.stderr
    rep = json.loads(run("inspect", out, "--json").stdout)
    assert 2.7 <= rep["shared_bits"] / 3256 <= 3.0  # codes, scales, entropy tables: <= target
    assert any(" ec:" in t["scheme"] for t in rep["tensors"])
    dec = tmp_path / "r.safetensors"
    assert run("decode", out, "-o", dec).returncode == 0


def test_update_chain_and_wrong_base(model_files, tmp_path):
    base = load_file(str(model_files / "model.safetensors"))
    rng = np.random.default_rng(0)
    new = {k: v + 0.01 * rng.standard_normal(v.shape).astype(np.float32) for k, v in base.items()}
    save_file(new, str(tmp_path / "new.safetensors"))
    u = tmp_path / "u.nnsu"
    r = run("encode", tmp_path / "new.safetensors", "--base", model_files / "model.pt", "-o", u,
            "--target-sqnr", "25", "--state-out", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    dec = tmp_path / "d.safetensors"
    r = run("decode", u, "--base", model_files / "model.safetensors", "-o", dec)
    assert r.returncode == 0, r.stderr
    got = load_file(str(dec))
    err = sum(np.sum((got[k] - new[k]) ** 2) for k in base)
    energy = sum(np.sum((new[k] - base[k]) ** 2) for k in base)
    assert 10 * np.log10(energy / err) >= 24.7  # the update's SQNR target (25 dB), float32 slack
    r = run("decode", u, "--base", tmp_path / "new.safetensors", "-o", tmp_path / "x.safetensors")
    assert r.returncode == 2 and "base fingerprint mismatch" in r.stderr
    r = run("decode", u, "-o", tmp_path / "x.safetensors")
    assert r.returncode == 2 and "give --base" in r.stderr
    assert not (tmp_path / "x.safetensors").exists()
    r = run("inspect", u)
    assert r.returncode == 2 and "update stream" in r.stderr and "base" in r.stderr
    r = run("inspect", u, "--base", model_files / "model.pt", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["kind"] == "update" and rep["total_bits"] == 8 * u.stat().st_size
    assert len(rep["base_fingerprint"]) == 16 and rep["chain_fingerprint"] is None
    r = run("inspect", tmp_path / "s", "--json")  # the chain state is a stream too
    assert r.returncode == 0 and json.loads(r.stdout)["kind"] == "state"

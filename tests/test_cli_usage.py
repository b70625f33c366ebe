"""Every usage error of the command line: one line ``error: ...`` naming the flag, status 2, no
traceback, no output file; refused flag combinations; --version; no torch on the receiver path."""

import subprocess
import sys

import pytest
import torch

CLI = [sys.executable, "-m", "nnshare.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("u")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    torch.save(m.state_dict(), d / "m.pt")
    import nnshare

    (d / "m.nnsh").write_bytes(nnshare.encode(m))
    return d


USAGE = [
    (["encode", "m.pt", "-o", "x.nnsh", "--bit", "4"], "No such option: --bit"),
    (["encode", "m.pt"], "Missing option '-o'"),
    (["encode", "m.pt", "-o", "x.nnsh", "--bits", "four"], "'--bits'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["encode"], "Missing argument"),
    (["encode", "m.pt", "-o", "x.nnsh", "--preset", "w4-g32", "--granularity", "channel"],
     "--granularity has no effect with --preset"),
    (["encode", "m.pt", "-o", "x.nnsh", "--budget-bits", "9000", "--link", "mcs=6"], "--link"),
    (["encode", "m.pt", "-o", "x.nnsh", "--airtime", "1.5"], "--airtime needs the link"),
    (["encode", "m.pt", "-o", "x.nnsh", "--airtime", "1.5", "--link", "mcs=12"], "MCS must be 0-11"),
    (["encode", "m.pt", "-o", "x.nnsh", "--airtime", "1.5", "--link", "speed=9"], "link option 'speed=9'"),
    (["inspect", "x.nnsh", "--airtime"], "--airtime needs the link"),
    (["fetch", "192.168.1.2:5005", "-o", "y"], "loopback interface only"),
    (["encode", "m.pt", "-o", "x.nnsh", "--base", "m.pt", "--target-sqnr", "20", "--mode", "agreed"],
     "--mode has no effect with --base"),
    (["encode", "m.pt", "-o", "x.nnsh", "--base", "m.pt", "--target-sqnr", "20", "--entropy", "auto"],
     "--entropy has no effect with --base"),
    (["encode", "m.pt", "-o", "x.nnsh", "--base", "m.pt"], "needs --target-sqnr"),
    (["encode", "m.pt", "-o", "x.nnsh", "--method", "rdo"], "--method applies to a rate target"),
    (["encode", "m.pt", "-o", "x.nnsh", "--target-sqnr", "20", "--entropy", "none"],
     "--entropy has no effect with --target-sqnr"),
    (["encode", "m.pt", "-o", "x.nnsh", "--bits", "4", "--group-size", "8"], "--group-size applies"),
    (["encode", "m.pt", "-o", "x.nnsh", "--mode", "other"], "--mode must be one of self, agreed"),
    (["encode", "m.pt", "-o", "x.nnsh", "--state-out", "s"], "--state-out applies to an update"),
    (["encode", "m.pt", "-o", "x.nnsh", "--bits", "0"], "--bits must be in 1..16"),
    (["encode", "m.pt", "-o", "x.nnsh", "--budget-bits", "9000", "--candidates", "4,x"], "--candidates"),
    (["decode", "m.nnsh", "-o", "x.safetensors", "--dtype", "int3"], "--dtype must be one of"),
    (["decode", "m.nnsh", "-o", "x.safetensors", "--base", "m.pt"], "--base has no effect"),
    (["inspect", "m.nnsh", "--bogus"], "No such option: --bogus"),
    (["demo", "--quick", "--full"], "--quick or --full"),
    (["encode", "m.pt", "-o", "x.nnsh", "--budget-bytes", "0"], "--budget-bytes must be positive"),
    (["encode", "m.pt", "-o", "x.nnsh", "--airtime", "-1", "--link", "mcs=3"], "--airtime must be positive"),
    (["encode", "m.pt", "-o", "x.nnsh", "--target-sqnr", "20", "--plan-out", "p.json"],
     "--plan-out has no effect with --target-sqnr"),
]


def in_process(args, capsys):
    """The command line in this process (as the `nnshare` script runs it): status, out, err."""
    from nnshare.cli import main

    try:
        main([str(a) for a in args])
        rc = 0
    except SystemExit as e:
        rc = int(e.code or 0)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("args, msg", USAGE)
def test_usage_error_is_one_line_status_2(folder, args, msg, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    rc, out, err = in_process(args, capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], err
    assert "Traceback" not in err and out == ""
    assert not (folder / "x.nnsh").exists() and not (folder / "x.safetensors").exists()


def test_usage_errors_in_a_real_process(folder):
    """The same through the installed entry point's interpreter: no traceback, status 2."""
    for args, msg in (USAGE[0], USAGE[1], USAGE[5]):
        r = run(*args, cwd=folder)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and msg in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1


def test_version_and_bare_help(folder):
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == "nnshare 0.1.0"
    r = run()
    assert r.returncode == 2 and "encode" in r.stdout and "Traceback" not in r.stderr


def test_python_dash_m_nnshare_is_the_cli(folder):
    r = subprocess.run([sys.executable, "-m", "nnshare", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "nnshare 0.1.0", r.stderr
    r = subprocess.run([sys.executable, "-m", "nnshare", "inspect", str(folder / "missing.nnsh")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_inspect_decode_help_do_not_import_torch(folder, tmp_path):
    probe = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['nnshare'] + sys.argv[1:]\n"
        "runpy.run_module('nnshare.cli', run_name='__main__')\n"
    )
    for args in (["inspect", folder / "m.nnsh"], ["inspect", folder / "m.nnsh", "--json"],
                 ["decode", folder / "m.nnsh", "-o", tmp_path / "d.safetensors"], ["--help"],
                 ["encode", "--help"]):
        r = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, (args, r.stderr)
    assert (tmp_path / "d.safetensors").exists()


def test_inspect_piped_is_not_truncated(tmp_path, capsys):
    torch.manual_seed(0)
    name = "encoder.layers.0.self_attention.query_key_value_projection.weight"
    torch.save({name: torch.randn(16, 16)}, tmp_path / "w.pt")
    assert in_process(["encode", tmp_path / "w.pt", "-o", tmp_path / "w.nnsh"], capsys)[0] == 0
    rc, out, _ = in_process(["inspect", tmp_path / "w.nnsh"], capsys)  # stdout is not a terminal
    assert rc == 0 and name in out and "…" not in out


def test_encode_json_and_plan_out(folder, tmp_path, capsys):
    import json

    rc, out, err = in_process(["encode", folder / "m.pt", "-o", tmp_path / "a.nnsh", "--bits", "5",
                               "--granularity", "channel", "--plan-out", tmp_path / "plan.json", "--json"],
                              capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["bytes"] == (tmp_path / "a.nnsh").stat().st_size
    assert summary["bits"] == 8 * summary["bytes"]
    assert summary["quality"]["worst_tensor"] in ("0.weight", "2.weight")
    rc, _, err = in_process(["encode", folder / "m.pt", "-o", tmp_path / "b.nnsh", "--plan",
                             tmp_path / "plan.json"], capsys)
    assert rc == 0, err
    assert (tmp_path / "a.nnsh").read_bytes() == (tmp_path / "b.nnsh").read_bytes()
    rep = json.loads(in_process(["inspect", tmp_path / "a.nnsh", "--json"], capsys)[1])
    spec = {t["name"]: t["spec"] for t in rep["tensors"]}
    assert spec["0.weight"]["kind"] == "quantized" and spec["0.weight"]["bits"] == 5
    assert spec["0.weight"]["granularity"] == "channel" and spec["0.weight"]["axis"] == 0
    assert spec["1.running_var"] == {"kind": "float", "dtype": "fp32"}
    assert "1.num_batches_tracked" not in spec  # counters only with --counters


def test_update_reports_delta_quality(folder, tmp_path, capsys):
    import json

    import numpy as np
    from safetensors.numpy import save_file

    from nnshare.io import load_state

    base = load_state(folder / "m.pt")
    rng = np.random.default_rng(0)
    new = {k: (v + 0.01 * rng.standard_normal(v.shape)).astype(v.dtype) if v.dtype.kind == "f"
           else np.asarray(v + 3) for k, v in base.items()}
    save_file(new, str(tmp_path / "new.safetensors"))
    rc, out, err = in_process(["encode", tmp_path / "new.safetensors", "--base", folder / "m.pt", "-o",
                               tmp_path / "u.nnsu", "--target-sqnr", "25", "--json"], capsys)
    assert rc == 0, err
    q = json.loads(out)["quality"]
    assert q["zeroed"] == [] and q["worst_sqnr_db"] >= 24

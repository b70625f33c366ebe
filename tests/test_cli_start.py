"""``nnshare inspect`` and ``nnshare decode`` of a model stream stay on the receiver's side: they
import neither torch nor numba (nor scipy or the sender's quantizers), even where all are
installed. Import time is what makes a CLI call slow (torch ~2.3 s, numba + its cache ~0.7 s)."""

import subprocess
import sys

import numpy as np

from nnshare.format import read_stream, write_stream
from nnshare.quant import QuantSpec, quantize

HEAVY = ("torch", "numba", "llvmlite", "scipy", "nnshare.quant", "nnshare.plan", "nnshare.mixed")

# Runs the CLI in a fresh interpreter (nothing blocked), then lists the heavy modules it loaded.
_PROBE = (
    "import runpy, sys\n"
    "heavy = sys.argv[1].split(',')\n"
    "sys.argv = ['nnshare'] + sys.argv[2:]\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('nnshare.cli', run_name='__main__')\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "print('LOADED', sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.')\n"
    "                   for h in heavy)), 'EXIT', code)\n"
)


def _run(*args) -> str:
    r = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY), *map(str, args)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_inspect_and_decode_import_neither_torch_nor_numba(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.laplace(size=(256, 300)).astype(np.float32)  # 76,800 entropy-coded codes
    q = {"fc.weight": quantize(w, QuantSpec(bits=6)), "fc.bias": quantize(w[0], QuantSpec(bits=8))}
    data, _ = write_stream(q, entropy="always")
    (tmp_path / "m.nnsh").write_bytes(data)
    assert _run("inspect", tmp_path / "m.nnsh") == "LOADED [] EXIT 0"
    assert _run("inspect", tmp_path / "m.nnsh", "--json") == "LOADED [] EXIT 0"
    out = tmp_path / "d.safetensors"
    assert _run("decode", tmp_path / "m.nnsh", "-o", out) == "LOADED [] EXIT 0"
    from safetensors.numpy import load_file

    got = load_file(out)
    ref = read_stream(data).tensors
    for name in q:  # the decoded file holds what the receiver rebuilds, exactly
        np.testing.assert_array_equal(got[name], ref[name].dequantize())


def test_probe_sees_heavy_imports(tmp_path):
    """The probe itself works: encoding (the sender's side) does load the quantizers."""
    np.save(tmp_path / "w.npy", np.ones((4, 4), np.float32))
    line = _run("encode", "--help")
    assert line.endswith("EXIT 0")
    assert "nnshare.quant" not in line  # --help stays light too
    from safetensors.numpy import save_file

    save_file({"w": np.ones((4, 4), np.float32)}, str(tmp_path / "w.safetensors"))
    line = _run("encode", tmp_path / "w.safetensors", "-o", tmp_path / "w.nnsh")
    assert "'nnshare.quant'" in line and line.endswith("EXIT 0"), line


def test_inspect_accounts_without_decoding_codes(monkeypatch):
    """inspect checks framing, CRCs and entropy headers but never runs the entropy decoder."""
    from nnshare.format.lazy import LazyTensor
    from nnshare.share.inspect import inspect

    rng = np.random.default_rng(1)
    w = rng.laplace(size=(64, 300)).astype(np.float32)
    data, _ = write_stream({"w": quantize(w, QuantSpec(bits=6, granularity="channel"))}, entropy="always")
    full = read_stream(data)
    monkeypatch.setattr(LazyTensor, "finish", lambda self: (_ for _ in ()).throw(AssertionError))
    ins = inspect(data)
    assert ins.total_bits == 8 * len(data) == sum(s.bits for s in full.sections)
    row = ins.rows[0]
    assert "ec:" in row.scheme and row.fields["granularity"] == "channel"
    assert row.payload_bits + row.side_bits + row.record_bits + row.pad_bits == row.total_bits

"""Crafted hostile streams against the decoder: time and peak RSS per case, before and after.

    .venv/bin/python bench/hostile.py [--before DIR]

Every case of issue 11 (``tests/format/hostile.py``: valid CRCs throughout) and honest reference
streams are written to files, then each is decoded (``read_stream``) in a fresh process with
numba and with ``NNSHARE_NO_NUMBA=1``: wall time of the decode, RSS growth over the warmed-up
process (ru_maxrss), and the outcome (decoded, or the FormatError). ``--before DIR``: a copy of
the tree before the decoding budget (e.g. ``git archive 8c36159 | tar -x -C DIR``), decoded the
same way (cases it would let allocate tens of GB are skipped there). Writes
bench/results/hostile.json and docs/benchmarks/hostile.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "format"))

TIMEOUT = 150  # seconds per child (a first decode and a traced second one)

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from nnshare.format import FormatError, read_stream
from nnshare.format.entropy import rans
if hasattr(rans, "load_compiled"):  # a decoder loads numba only for large streams: here always
    rans.load_compiled()
warm = np.load(sys.argv[2])
read_stream(warm.tobytes())  # imports, numba cache load
import tracemalloc
data = open(sys.argv[1], "rb").read()

def once():
    try:
        st = read_stream(data)
        return ("decoded %d elements" % sum(int(np.prod(s)) for _, s in st.layout),
                sum(t.codes.nbytes if hasattr(t, "codes") else t.values.nbytes
                    for t in st.tensors.values()))
    except FormatError as e:
        return "FormatError: " + str(e)[:110], 0

r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
out, nbytes = once()
dt, cpu = time.perf_counter() - t, time.process_time() - c
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024
tracemalloc.start()
once()
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
budget = nbytes + 16 * len(data) + (4 << 20)
print(json.dumps({"s": dt, "cpu_s": cpu, "rss_mb": rss, "peak_mb": peak / 2**20,
                  "budget_mb": budget / 2**20, "outcome": out}))
"""


def _single_state(fn):
    """``fn()`` with rANS lanes off (the layout the tree before the lanes reads)."""
    from nnshare.format.entropy import rans

    keep = rans.lanes
    rans.lanes = lambda n: 1
    try:
        return fn()
    finally:
        rans.lanes = keep


def cases() -> dict[str, tuple[bytes, str, bool]]:
    """name -> (stream, what it is, which trees run it: "both", "before" or "after")."""
    import hostile as H

    from nnshare.format import write_stream
    from nnshare.quant import QuantSpec, quantize

    out = {}
    rng = np.random.default_rng(0)
    w = rng.laplace(size=(1024, 1024)).astype(np.float32)
    honest, _ = write_stream({"w": quantize(w, QuantSpec(bits=8))}, entropy="always")
    out["honest 1M-param entropy-coded (8-bit Laplace)"] = (honest, "honest", "after")
    one = _single_state(lambda: write_stream({"w": quantize(w, QuantSpec(bits=8))},
                                             entropy="always")[0])
    out["honest 1M-param, one rANS state (the layout before lanes)"] = (one, "honest", "before")
    small, _ = write_stream({"w": quantize(w[:64], QuantSpec(bits=8))}, entropy="always")
    out["honest 65k-param entropy-coded"] = (small, "honest", "both")
    const = {"w": quantize(np.zeros(4096 * 16300, np.float32) + 0.5, QuantSpec(bits=8))}
    zeros, _ = write_stream(const, entropy="always")
    out["honest constant 66.8M-param (16 KB)"] = (zeros, "honest", "after")
    z1 = _single_state(lambda: write_stream(const, entropy="always")[0])
    out["honest constant 66.8M-param, one state"] = (z1, "honest", "before")
    d16, _ = H.zero_bit_stream(16 * 1024)
    out["zero-bit 16 KB, 1024 lanes"] = (d16, "crafted", "after")
    d16s, _ = H.zero_bit_stream(16 * 1024, interleaved=False)
    out["zero-bit 16 KB, one state"] = (d16s, "crafted", "both")
    d1k, _ = H.zero_bit_stream(1123, interleaved=False)
    out["zero-bit 1,123 B, one state"] = (d1k, "crafted", "both")
    n = 4096 * (1 << 20)
    big = H.header([("t0", (n,))]) + H.affine_entropy_record(H.zero_bit_payload(1 << 20), n)
    out["zero-bit 1 MB (17 GB of output)"] = (big, "crafted", "after")
    out["slot table, 1 record"] = (H.slot_table_stream(1), "crafted", "both")
    out["slot tables, 300 records"] = (H.slot_table_stream(300), "crafted", "both")
    m = 12 * (1 << 20) // 256 * 256
    out["range-coder tables (12M codes)"] = (H.stream_of([H.range_tables_payload(m)], m, 16),
                                             "crafted", "both")
    try:
        x, clean, extra, none = H.range_payload_variants()
        for name, p in (("clean", clean), ("trailing word", extra), ("no words", none)):
            out[f"range payload, {name}"] = (H.stream_of([p], x.size), "crafted" if name != "clean"
                                             else "honest", "both")
    except Exception:  # constriction missing on this machine
        pass
    return out


def run(tree: Path, path: Path, warm: Path, numba: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    if not numba:
        env["NNSHARE_NO_NUMBA"] = "1"
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(warm)],
                           capture_output=True, text=True, env=env, timeout=TIMEOUT,
                           cwd=tree)  # cwd: `-c` puts it first on the path
    except subprocess.TimeoutExpired:
        return {"s": None, "rss_mb": None, "outcome": f"> {TIMEOUT} s (killed; two decodes)"}
    if r.returncode:
        return {"s": None, "rss_mb": None, "outcome": f"crashed ({r.returncode}): "
                + (r.stderr.strip().splitlines() or [""])[-1][:100]}
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, default=None)
    ap.add_argument("--only", default=None, help="run only cases whose name contains this; "
                    "merge them into the existing results")
    args = ap.parse_args()
    from nnshare.format import write_stream
    from nnshare.quant import QuantSpec, quantize

    cs = cases()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.npy"
        q = quantize(np.linspace(-1, 1, 4096, dtype=np.float32), QuantSpec(bits=8))
        np.save(warm, np.frombuffer(write_stream({"w": q}, entropy="always")[0], np.uint8))
        for name, (data, kind, trees) in cs.items():
            if args.only is not None and args.only not in name:
                continue
            path = Path(tmp) / "s.nnsh"
            path.write_bytes(data)
            row = {"case": name, "kind": kind, "bytes": len(data)}
            for label, tree in (("after", ROOT), ("before", args.before)):
                if tree is None or trees not in ("both", label):
                    continue
                for nb in (True, False):
                    row[f"{label}_{'numba' if nb else 'numpy'}"] = run(tree, path, warm, nb)
            rows.append(row)
            print(json.dumps(row), flush=True)
    old = ROOT / "bench/results/hostile.json"
    if args.only is not None and old.exists():  # merge into the earlier run, in case order
        done = {r["case"]: r for r in json.loads(old.read_text())["rows"]}
        for r in rows:  # this tree's columns replaced, the before tree's kept
            done.setdefault(r["case"], {}).update(r)
        rows = [done[n] for n in cs if n in done]
    res = {"rows": rows, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "before_tree": str(args.before) if args.before else None}
    (ROOT / "bench/results").mkdir(exist_ok=True)
    (ROOT / "bench/results/hostile.json").write_text(json.dumps(res, indent=1) + "\n")
    write_doc(res)


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if r["s"] is None:
        return r["outcome"]
    peak = f", peak {r['peak_mb']:.1f} / {r['budget_mb']:.1f} MB" if "peak_mb" in r else ""
    cpu = r.get("cpu_s", r["s"])
    return f"{cpu:.3f} s CPU, +{r['rss_mb']:.0f} MB RSS{peak}"


def write_doc(res: dict) -> None:
    md = ["# Hostile streams: the decoding budget", "",
          "`bench/hostile.py`: each crafted stream of `tests/format/hostile.py` (valid CRCs) and "
          "honest references, decoded by `read_stream` in a fresh warmed-up process, one "
          "thread, on a 2-core machine shared with other jobs: CPU time of the decode, "
          "peak-RSS growth (ru_maxrss) and the traced peak (tracemalloc) against the budget "
          "(decoded arrays + 16 x stream bytes + 4 MiB). *before*: the tree before the budget "
          "(cases that would allocate tens of GB not run there); *after*: this tree. numpy = "
          "`NNSHARE_NO_NUMBA=1`.",
          "", "| case | bytes | before, numba | before, numpy | after, numba | after, numpy | "
          "outcome after |", "|---|---:|---|---|---|---|---|"]
    for r in res["rows"]:
        after = r.get("after_numba") or {}
        md.append(f"| {r['case']} ({r['kind']}) | {r['bytes']:,} | {_cell(r.get('before_numba'))} "
                  f"| {_cell(r.get('before_numpy'))} | {_cell(r.get('after_numba'))} | "
                  f"{_cell(r.get('after_numpy'))} | {after.get('outcome', '')} |")
    md += ["", "The budget's constants are in docs/format.md (\"Decoding budget\").", ""]
    path = ROOT / "docs" / "benchmarks" / "hostile.md"
    path.write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()

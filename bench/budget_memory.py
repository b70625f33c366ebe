"""Peak memory of the MiniLM budget searches (issue 19: <= 3x the float32 model size), each in
a fresh process.

    python bench/budget_memory.py [--tree DIR --label NAME]

- **data-free**: ``nnshare encode MODEL.safetensors --budget-bytes 12000000`` under
  ``/usr/bin/time -v`` (maximum resident set size, user + sys CPU), against the same command on
  a 64 x 64 tensor (the interpreter and the imports).
- **task-quality**: ``nnshare.compress`` (max drop 0.01 of the embedding cosine, absolute) in a
  child process: its peak RSS minus its RSS before the call (model and evaluation data loaded;
  Linux ``clear_refs`` resets the peak), and the same for the search alone (sensitivities
  computed before the reset and passed in).

The model: all-MiniLM-L6-v2 where its wheel and sentence-transformers are installed, else the
random BERT of its shapes (bench/minilm_standin.py, 22.7M float32 parameters, 91 MB) and a
cosine of mean-pooled embeddings of fixed random token sequences. ``--tree DIR`` runs the
children on another checkout's ``nnshare`` (e.g. before a change) and stores the rows under
``--label``; the stream's SHA-256 is recorded, so runs of two trees show the same bytes.

Writes bench/results/budget_memory.json and docs/benchmarks/budget_memory.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench/results/budget_memory.json"
DOC = ROOT / "docs/benchmarks/budget_memory.md"
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1"}


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> float:
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _task():
    """(model, evaluate, calibration, forward, budget, source)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from minilm_standin import STANDIN, standin_task

    from nnshare.mixed import Budget

    try:
        import sentence_transformers  # noqa: F401
        from task_models import minilm_case

        c = minilm_case(False)
        return c.model, c.evaluate, c.calib, c.forward, Budget(max_drop=0.01, relative=False), \
            "all-MiniLM-L6-v2 (32 sentences)"
    except ImportError:
        model, ev, calib, fwd = standin_task()
        return model, ev, calib, fwd, Budget(max_drop=0.01, relative=False), STANDIN


def child(search_only: bool) -> None:
    """One compress in this process; prints a JSON line."""
    import torch

    torch.set_num_threads(1)
    import nnshare
    from nnshare.mixed.task_weights import task_weights

    model, ev, calib, fwd, budget, source = _task()
    n = sum(p.numel() for p in model.state_dict().values() if p.dtype.is_floating_point)
    weights = task_weights(model, "output", calib, forward=fwd) if search_only else None
    rss0 = _reset_peak()
    t = time.process_time()
    r = nnshare.compress(model, ev, budget=budget, calibration=calib, forward=fwd,
                         sensitivity=weights)
    cpu = time.process_time() - t
    peak = _status_mb("VmHWM")
    print(json.dumps({"source": source, "params": n, "rss_before_mb": rss0, "peak_mb": peak,
                      "over_start_mb": peak - rss0, "cpu_s": cpu, "bytes": r.nbytes,
                      "family": r.family, "evaluations": r.evaluations,
                      "sha256": hashlib.sha256(r.data).hexdigest()}))


def _time_v(cmd: list[str], env: dict, cwd: Path) -> dict:
    # cwd: ``python -m`` puts the working directory first on sys.path, ahead of PYTHONPATH
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env,
                       check=True, cwd=cwd)
    f = {ln.split(":")[0].strip(): ln.rsplit(":", 1)[1].strip() for ln in r.stderr.splitlines() if ":" in ln}
    return {"peak_mb": int(f["Maximum resident set size (kbytes)"]) / 1024,
            "cpu_s": float(f["User time (seconds)"]) + float(f["System time (seconds)"])}


def data_free(env: dict, td: Path) -> dict:
    import numpy as np
    from safetensors.numpy import save_file

    sys.path.insert(0, str(ROOT / "bench"))
    from minilm_standin import minilm_tensors

    sd, source = minilm_tensors()
    model = td / "model.safetensors"
    save_file(sd, str(model))
    save_file({"w": np.zeros((64, 64), np.float32)}, str(td / "tiny.safetensors"))
    base = [sys.executable, "-m", "nnshare", "encode"]
    tiny = _time_v([*base, str(td / "tiny.safetensors"), "--budget-bytes", "12000000", "-o",
                    str(td / "tiny.nns")], env, td)
    big = _time_v([*base, str(model), "--budget-bytes", "12000000", "-o", str(td / "m.nns")], env, td)
    data = (td / "m.nns").read_bytes()
    n = sum(int(v.size) for v in sd.values())
    return {"source": source, "params": n, "imports_peak_mb": tiny["peak_mb"], **big,
            "over_imports_mb": big["peak_mb"] - tiny["peak_mb"], "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def run_child(env: dict, search_only: bool) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", *(["--search-only"] if search_only else [])],
                       capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def markdown(res: dict) -> str:
    lines = ["## Budget search memory (issue 19)", ""]
    any_row = next(iter(res["runs"].values()))
    mb = 4 * any_row["data_free"]["params"] / 2**20
    lines += [
        f"Model: {any_row['data_free']['source']}, {any_row['data_free']['params']:,} float32"
        f" parameters ({mb:.1f} MiB; every number here in MiB, RSS / 1024 kB). Each number from a"
        " fresh process, one thread;"
        " `python bench/budget_memory.py` (`--tree DIR --label NAME` measures another checkout)."
        f" Target: peak <= 3x the model = {3 * mb:.0f} MB above the start. Data-free: `nnshare"
        " encode MODEL --budget-bytes 12000000`, /usr/bin/time's maximum RSS minus that of the"
        " same command on a 64 x 64 tensor (interpreter and imports). Task-quality:"
        " `nnshare.compress` (cosine drop <= 0.01), peak RSS minus the RSS before the call"
        " (model and evaluation data loaded); \"search only\": the sensitivities computed"
        " before the start. CPU s = user + sys (load in the last column).",
        "",
        "| code | data-free peak / over imports MB | task-quality peak over start MB"
        " | search only over start MB | task-quality stream B, evaluations | CPU s (data-free; task)"
        " | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in res["runs"].items():
        d, c, s = r["data_free"], r["compress"], r["search_only"]
        lines.append(
            f"| {label} | {d['peak_mb']:.0f} / **{d['over_imports_mb']:.0f}**"
            f" ({d['over_imports_mb'] / mb:.1f}x)"
            f" | **{c['over_start_mb']:.0f}** ({c['over_start_mb'] / mb:.1f}x) | {s['over_start_mb']:.0f}"
            f" ({s['over_start_mb'] / mb:.1f}x) | {c['bytes']:,}, {c['evaluations']}"
            f" | {d['cpu_s']:.1f}; {c['cpu_s']:.1f} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    groups: dict = {}
    for label, r in res["runs"].items():
        groups.setdefault((r["data_free"]["sha256"], r["compress"]["sha256"]), []).append(label)
    same = "; ".join(", ".join(g) + f" (task-quality {k[1][:16]})" for k, g in groups.items())
    lines += ["", "Rows with the same stream bytes (SHA-256 of both streams equal): " + same + "."]
    lines += ["", *("- " + x for x in res.get("notes", []))]
    return "\n".join(lines) + "\n"


NOTES = [
    "What the memory was (before, measured by stages on the random stand-in of MiniLM's shapes,"
    " RSS peaks over each"
    " stage's start): the sensitivities (`task_weights`, float32 Gauss-Newton accumulators and"
    " autograd) +226 MB, transient; the working copy of the model 91 MB for the whole search;"
    " quantizing every tensor first +262 MB (the TCQ of the 11.7M-value word embedding held a"
    " float64 copy and int64 paths of it, 94 MB each, then the int32 codes of every tensor,"
    " 91 MB, stayed while the stream was written); writing the stream +291 MB on top (the"
    " entropy coder's model choice on the word embedding); every passing stream kept.",
    "3b1956e: each tensor is quantized where its record is written and loaded into the working"
    " copy there (`task_rate.write_quantized`, the codes of one tensor at a time); the trellis"
    " runs on tensors over 1M values a block of 2^20 values at a time with the rate tables of the"
    " same sampled stripes (`tcq.tcq_codes_blocks`: int32 codes, no float64 copy; the same codes,"
    " tested); only the best stream so far is kept; the working copy is dropped before the"
    " chosen stream is read back; with the entropy-model speed work of 81d5d1b (contexts in one"
    " compiled pass, median from one histogram). On the stand-in that work alone took the"
    " task-quality peak 588 -> 516 MiB over start (the same stream).",
    "This work (\"after\", against main 1e85ac1 in the same run; the same streams, SHA-256"
    " above): data-free, the weight sensitivity reads the model's float32 arrays (it copied the"
    " whole model, 87 MiB) and the plan's quality check compares codes with the original in one"
    " compiled pass (it dequantized each tensor: 45 MiB for the word embedding, plus float64"
    " blocks); task-quality, the step cap and clamp take max |x| from min and max (they made"
    " float64 and absolute copies of the word embedding, 94 + 94 MB, for every step tried) and"
    " the compiled rANS encoder gathers its words in a growing uint32 buffer (it allocated n + 2"
    " uint64 words up front: 94 MB for the word embedding). Int32 codes and int32 trellis levels"
    " already went through the model choice, the contexts and the rANS loop without copies."
    " MiniLM TCQ8 fixed-step encode (`bench/speed.py` `fixed_encode`, step 0.002877), CPU s over"
    " 2 x 3 interleaved runs at load 2.7-3.0: main 2.06-2.33, this work 2.05-2.27 (the same"
    " bytes).",
    "Data-free, 2.4x: under the target. Earlier `--tree` rows measured the data-free command of"
    " the checkout the bench ran from (`python -m` puts the working directory first on"
    " sys.path); it now runs in a temporary directory.",
    "Task-quality, 4.1x: missed. The \"search only\" column (2.0x) starts after the sensitivity"
    " pass and reuses its freed heap; returning that heap after the pass (`malloc_trim`: 198 ->"
    " 124 MiB resident) left the peak at 387 MiB, so the search itself needs ~260 MiB over the"
    " trimmed state: the working copy (87 MiB) and, on the 11.7M-value word embedding, its int32"
    " codes (45 MiB), the dequantized copy loaded into the working copy (45 MiB), then the entropy"
    " coder's int32 trellis levels (45 MiB), quantizer ids (11 MiB) and int16 contexts (22 MiB)."
    " Next: int16 levels, dequantizing straight into the working copy, or coding the embedding"
    " by stripes.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--search-only", action="store_true")
    ap.add_argument("--tree", type=Path, default=ROOT)
    ap.add_argument("--label", default="this tree")
    a = ap.parse_args()
    if a.child:
        child(a.search_only)
        return
    env = {**os.environ, **ENV, "PYTHONPATH": f"{a.tree.resolve()}:{ROOT / 'bench'}"}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as td:
        row = {"data_free": data_free(env, Path(td))}
    row["compress"] = run_child(env, False)
    row["search_only"] = run_child(env, True)
    row["load"] = [load0, os.getloadavg()[0]]
    row["date"] = time.strftime("%m-%d %H:%M", time.gmtime())
    print(json.dumps(row, indent=1))
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    res["runs"][a.label] = row
    res["notes"] = NOTES
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2))
    DOC.write_text(markdown(res))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Long fuzz run of format v2: random and CRC-recomputed mutations of every stream kind.

    .venv/bin/python bench/fuzz.py [--inputs 100000] [--seed 1]

Writes bench/results/fuzz.json and docs/benchmarks/fuzz.md. Every input must raise FormatError or
decode; anything else (another exception) is counted and listed. Per input: decode time (worst
reported, with the stream size); the process's peak RSS is sampled every 1,000 inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(v, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "format"))

import numpy as np  # noqa: E402

from nnshare.format import FormatError  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from fuzzing import corpus, mutate

    samples = corpus()
    for s in samples:  # warm up (imports, numba compilation) outside the measurement
        s.decode(s.data)
    rss0 = rss_mb()
    rng = np.random.default_rng(args.seed)
    per = {s.name: {"inputs": 0, "format_error": 0, "decoded": 0, "crc_recomputed": 0,
                    "worst_ms": 0.0, "bytes": len(s.data)} for s in samples}
    other: list[dict] = []
    worst = (0.0, "", 0)
    rss_trace = []
    t0 = time.perf_counter()
    for k in range(args.inputs):
        s = samples[k % len(samples)]
        data, crc = mutate(s, rng)
        p = per[s.name]
        p["inputs"] += 1
        p["crc_recomputed"] += crc
        t = time.perf_counter()
        try:
            s.decode(data)
            p["decoded"] += 1
        except FormatError:
            p["format_error"] += 1
        except Exception as e:  # a finding
            other.append({"sample": s.name, "error": f"{type(e).__name__}: {e}"[:200],
                          "input": data.hex()})
        dt = 1000 * (time.perf_counter() - t)
        p["worst_ms"] = max(p["worst_ms"], dt)
        if dt > worst[0]:
            worst = (dt, s.name, len(data))
        if k % 1000 == 0:
            rss_trace.append(rss_mb())
    elapsed = time.perf_counter() - t0
    res = {
        "inputs": args.inputs,
        "seed": args.seed,
        "seconds": elapsed,
        "inputs_per_s": args.inputs / elapsed,
        "other_exceptions": len(other),
        "findings": other[:20],
        "worst_ms": worst[0],
        "worst_sample": worst[1],
        "worst_input_bytes": worst[2],
        "rss_start_mb": rss0,
        "rss_peak_mb": rss_mb(),
        "rss_growth_mb": rss_mb() - rss0,
        "per_sample": per,
        "numba": _has_numba(),
    }
    out = ROOT / "bench" / "results" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    write_doc(res)
    print(json.dumps({k: v for k, v in res.items() if k not in ("per_sample", "findings")}, indent=2))


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401

        return True
    except ImportError:
        return False


def write_doc(res: dict) -> None:
    rows = "\n".join(
        f"| {n} | {p['bytes']} | {p['inputs']:,} | {p['crc_recomputed']:,} | {p['format_error']:,} "
        f"| {p['decoded']:,} | {p['worst_ms']:.1f} |"
        for n, p in res["per_sample"].items()
    )
    text = f"""# Fuzzing format v2

`bench/fuzz.py`: {res['inputs']:,} mutated inputs over one small v2 stream of every stream kind
(models packed and entropy-coded with every record kind, per-channel widths and a codebook
included; an update; a chained update; a chain state; features), from `tests/format/fuzzing.py`
(CI runs every single-byte change and truncation of the same samples plus 3,000 mutations).
About two thirds of the mutations edit one header or record and recompute its CRC, so the parser
behind the CRC sees them; the rest are raw byte edits, insertions and deletions. numba
{'installed' if res['numba'] else 'not installed'}; one thread.

- **Exceptions other than FormatError: {res['other_exceptions']}.** No hang.
- {res['inputs_per_s']:,.0f} inputs/s ({res['seconds']:.1f} s in all).
- Worst decode time {res['worst_ms']:.1f} ms ({res['worst_sample']}, {res['worst_input_bytes']} bytes).
- Peak RSS {res['rss_peak_mb']:.0f} MB, {res['rss_growth_mb']:.1f} MB above the start after warm-up.

| sample | bytes | inputs | CRC recomputed | FormatError | decoded | worst ms |
|---|---:|---:|---:|---:|---:|---:|
{rows}
"""
    path = ROOT / "docs" / "benchmarks" / "fuzz.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    main()

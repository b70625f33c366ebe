"""Long fuzz run of format v2: random and CRC-recomputed mutations of every stream kind.

    .venv/bin/python bench/fuzz.py --inputs 500000 --seed 1 --part a      # one process
    NNSHARE_NO_NUMBA=1 .venv/bin/python bench/fuzz.py --inputs 500000 --seed 2 --part b
    .venv/bin/python bench/fuzz.py --merge                                 # -> fuzz.json, doc

Every input must raise FormatError or decode; anything else (another exception) is counted and
listed. Per input: decode CPU time, compared with the unmutated sample's per byte (worst ratio
reported); every 100th input under tracemalloc, its peak against the decoding budget
(3 x the returned arrays + 16 x stream bytes + 4 MiB, see tests/format/test_fuzz_v2.py); the
process's peak RSS every 1,000 inputs. A part writes bench/results/fuzz_parts/PART.json every
5,000 inputs, so an interrupted run still reports the count it reached; ``--merge`` sums the
parts into bench/results/fuzz.json and docs/benchmarks/fuzz.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(v, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "format"))

import numpy as np  # noqa: E402

from nnshare.format import FormatError  # noqa: E402

PARTS = ROOT / "bench" / "results" / "fuzz_parts"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _honest_s_per_byte(s) -> float:
    best = 1e9
    for _ in range(5):
        t = time.process_time()
        s.decode(s.data)
        best = min(best, time.process_time() - t)
    return best / len(s.data)


def run_part(inputs: int, seed: int, part: str) -> None:
    from fuzzing import corpus, mutate, output_bytes

    from nnshare.format.entropy import rans

    rans.load_compiled()  # a decoder loads numba only for large streams: the numba parts use it
    samples = corpus(lanes=True)
    for s in samples:  # warm up (imports, numba compilation) outside the measurement
        s.decode(s.data)
    honest = {s.name: _honest_s_per_byte(s) for s in samples}
    rss0 = rss_mb()
    rng = np.random.default_rng(seed)
    per = {s.name: {"inputs": 0, "format_error": 0, "decoded": 0, "crc_recomputed": 0,
                    "worst_ms": 0.0, "bytes": len(s.data), "honest_us_per_byte":
                    1e6 * honest[s.name]} for s in samples}
    res = {"part": part, "seed": seed, "numba": rans.available(), "inputs": 0, "other": [],
           "worst_ms": 0.0, "worst_sample": "", "worst_time_ratio": 0.0,
           "worst_peak_over_budget": 0.0, "traced": 0, "rss_start_mb": rss0, "seconds": 0.0,
           "per_sample": per}
    t0 = time.perf_counter()
    path = PARTS / f"{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    for k in range(inputs):  # the 40 KB rANS-lanes sample every 50th input
        s = samples[-1] if k % 50 == 49 else samples[k % (len(samples) - 1)]
        data, crc = mutate(s, rng)
        p = per[s.name]
        p["inputs"] += 1
        p["crc_recomputed"] += crc
        traced = k % 100 == 0
        if traced:
            tracemalloc.start()
        t = time.process_time()  # CPU time: the 2-core machine's other jobs do not count
        out = None
        try:
            out = s.decode(data)
            p["decoded"] += 1
        except FormatError:
            p["format_error"] += 1
        except Exception as e:  # a finding
            res["other"].append({"sample": s.name, "error": f"{type(e).__name__}: {e}"[:200],
                                 "input": data.hex()[:4000]})
        dt = time.process_time() - t
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            budget = 3 * output_bytes(out) + 16 * len(data) + (4 << 20)
            res["worst_peak_over_budget"] = max(res["worst_peak_over_budget"], peak / budget)
            res["traced"] += 1
        else:  # traced decodes run slower: not timed against the honest one
            ratio = dt / max(len(data), 1) / honest[s.name]
            res["worst_time_ratio"] = max(res["worst_time_ratio"], ratio)
        p["worst_ms"] = max(p["worst_ms"], 1000 * dt)
        if 1000 * dt > res["worst_ms"]:
            res.update(worst_ms=1000 * dt, worst_sample=s.name, worst_input_bytes=len(data))
        res["inputs"] = k + 1
        if (k + 1) % 5000 == 0 or k + 1 == inputs:
            res.update(seconds=time.perf_counter() - t0, rss_peak_mb=rss_mb())
            res["rss_growth_mb"] = res["rss_peak_mb"] - rss0
            path.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "per_sample"}, indent=1))


def merge() -> None:
    parts = [json.loads(p.read_text()) for p in sorted(PARTS.glob("*.json"))]
    total = sum(p["inputs"] for p in parts)
    per: dict = {}
    for p in parts:
        for name, q in p["per_sample"].items():
            m = per.setdefault(name, {**q, "inputs": 0, "format_error": 0, "decoded": 0,
                                      "crc_recomputed": 0, "worst_ms": 0.0})
            for key in ("inputs", "format_error", "decoded", "crc_recomputed"):
                m[key] += q[key]
            m["worst_ms"] = max(m["worst_ms"], q["worst_ms"])
    worst = max(parts, key=lambda p: p["worst_ms"])
    res = {
        "inputs": total,
        "parts": [{k: p.get(k) for k in ("part", "seed", "numba", "inputs", "seconds",
                                          "rss_growth_mb", "rss_peak_mb")} for p in parts],
        "inputs_per_s": sum(p["inputs"] / max(p["seconds"], 1e-9) for p in parts),
        "other_exceptions": sum(len(p["other"]) for p in parts),
        "findings": [f for p in parts for f in p["other"]][:20],
        "worst_ms": worst["worst_ms"], "worst_sample": worst["worst_sample"],
        "worst_input_bytes": worst.get("worst_input_bytes", 0),
        "worst_time_ratio": max(p["worst_time_ratio"] for p in parts),
        "worst_peak_over_budget": max(p["worst_peak_over_budget"] for p in parts),
        "traced": sum(p["traced"] for p in parts),
        "rss_growth_mb": max(p.get("rss_growth_mb", 0.0) for p in parts),
        "per_sample": per,
    }
    out = ROOT / "bench" / "results" / "fuzz.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    write_doc(res)
    print(json.dumps({k: v for k, v in res.items() if k not in ("per_sample", "findings")},
                     indent=2))


def write_doc(res: dict) -> None:
    rows = "\n".join(
        f"| {n} | {p['bytes']:,} | {p['inputs']:,} | {p['crc_recomputed']:,} | "
        f"{p['format_error']:,} | {p['decoded']:,} | {p['worst_ms']:.1f} | "
        f"{p['honest_us_per_byte']:.2f} |"
        for n, p in res["per_sample"].items()
    )
    parts = "; ".join(f"{p['part']}: {p['inputs']:,} inputs, seed {p['seed']}, "
                      f"{'numba' if p['numba'] else 'numpy path (NNSHARE_NO_NUMBA=1)'}, "
                      f"{p['seconds']:.0f} s" for p in res["parts"])
    text = f"""# Fuzzing format v2

`bench/fuzz.py`: {res['inputs']:,} mutated inputs over one small v2 stream of every stream kind
(models packed and entropy-coded with every record kind, per-channel widths and a codebook
included; one with a 32-lane rANS payload; an update; a chained update; a chain state;
features), from `tests/format/fuzzing.py` (CI runs every single-byte change and truncation of
the small samples plus 20,000 mutations). About two thirds of the mutations edit one header or
record and recompute its CRC, so the parser behind the CRC sees them; the rest are raw byte
edits, insertions and deletions. One thread per process; {parts}.

- **Exceptions other than FormatError: {res['other_exceptions']}.** No hang.
- {res['inputs_per_s']:,.0f} inputs/s in all.
- Worst decode CPU time {res['worst_ms']:.1f} ms ({res['worst_sample']}, {res['worst_input_bytes']} bytes),
  on a 2-core machine shared with other jobs. Worst CPU time per byte over the unmutated sample's:
  {res['worst_time_ratio']:.1f}x (a mutated input that decodes fewer bytes pays the fixed cost).
- Memory against the budget (every 100th input traced, {res['traced']:,} in all): worst peak
  {res['worst_peak_over_budget']:.2f} x (3 x the returned arrays + 16 x stream bytes + 4 MiB);
  process peak RSS {res['rss_growth_mb']:.1f} MB above the start after warm-up.

| sample | bytes | inputs | CRC recomputed | FormatError | decoded | worst ms | honest us/byte |
|---|---:|---:|---:|---:|---:|---:|---:|
{rows}
"""
    path = ROOT / "docs" / "benchmarks" / "fuzz.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--part", default="a")
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    if args.merge:
        merge()
    else:
        run_part(args.inputs, args.seed, args.part)


if __name__ == "__main__":
    main()

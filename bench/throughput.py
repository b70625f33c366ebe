"""Encode / decode throughput of a 50M-parameter synthetic model, one thread, MB/s of float32.

    .venv/bin/python bench/throughput.py [--params 50e6] [--repeat 3]

Writes bench/results/throughput.json and docs/benchmarks/throughput.md. The machine's memory
copy speed (numpy copy of the same 200 MB) is measured in the same run as the ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nnshare  # noqa: E402
from nnshare.format import decode_arrays  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def synthetic_model(n_params: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Gaussian weight matrices of 4096 columns (He-scaled) with biases, ~n_params in total."""
    rng = np.random.default_rng(seed)
    cols = 4096
    rows_total = int(n_params) // (cols + 1)
    layers = 12
    out = {}
    for i in range(layers):
        rows = rows_total // layers
        out[f"layer{i}.weight"] = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(
            (2 / cols) ** 0.5
        )
        out[f"layer{i}.bias"] = rng.standard_normal(rows, dtype=np.float32) * np.float32(0.01)
    return out


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, res = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=float, default=50e6)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = synthetic_model(args.params)
    n = sum(a.size for a in model.values())
    mb = 4 * n / 1e6
    flat = np.concatenate([a.reshape(-1) for a in model.values()])
    dst = np.empty_like(flat)
    t_copy, _ = best_of(lambda: np.copyto(dst, flat), args.repeat)
    rows = []
    for plan_name, plan in [
        ("8-bit per tensor", nnshare.uniform(8)),
        ("8-bit per channel", nnshare.uniform(8, "channel")),
        ("4-bit per tensor", nnshare.uniform(4)),
        ("4-bit per channel", nnshare.uniform(4, "channel")),
    ]:
        t_enc, data = best_of(lambda plan=plan: nnshare.encode(model, plan), args.repeat)
        t_dec, arrays = best_of(lambda data=data: decode_arrays(data), args.repeat)
        assert set(arrays) == set(model)
        rows.append(
            {
                "plan": plan_name,
                "params": n,
                "stream_bytes": len(data),
                "encode_s": t_enc,
                "decode_s": t_dec,
                "encode_MBps": mb / t_enc,
                "decode_MBps": mb / t_dec,
            }
        )
        print(f"{plan_name:18s} encode {mb / t_enc:7.0f} MB/s  decode {mb / t_dec:7.0f} MB/s", flush=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, one thread",
        "params": n,
        "float32_MB": mb,
        "memcpy_MBps": mb / t_copy,
        "targets": {"encode_MBps": 300, "decode_MBps": 500},
        "rows": rows,
    }
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/throughput.json").write_text(json.dumps(result, indent=2))
    lines = [
        "## Encode / decode throughput (issue 2)",
        "",
        f"{n / 1e6:.1f}M float32 parameters ({mb:.0f} MB), 12 Gaussian 4096-column matrices + biases;"
        f" {result['machine']}; best of {args.repeat}. `python bench/throughput.py`.",
        f"Memory copy of the same {mb:.0f} MB in this run: **{mb / t_copy:,.0f} MB/s** (the ceiling).",
        "Targets: encode >= 300 MB/s, decode >= 500 MB/s.",
        "",
        "| plan | stream bytes | encode MB/s | decode MB/s |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['plan']} | {r['stream_bytes']:,} | {r['encode_MBps']:,.0f} | {r['decode_MBps']:,.0f} |"
        )
    (ROOT / "docs/benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs/benchmarks/throughput.md").write_text("\n".join(lines) + "\n")
    print(f"memcpy {mb / t_copy:,.0f} MB/s; wrote bench/results/throughput.json")


if __name__ == "__main__":
    main()

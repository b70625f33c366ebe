"""Encode / decode throughput of a 50M-parameter synthetic model, one thread, MB/s of float32.

    .venv/bin/python bench/throughput.py [--params 50e6] [--repeat 3]

Encode: ``nnshare.encode`` of float32 arrays (quantize, pack, the quality report), MB/s of the
float32 input; decode: ``decode_arrays`` (parse, CRC, unpack, dequantize), MB/s of the float32
output, i.e. the same 4 bytes per parameter both ways. Wall and CPU time (``time.process_time``)
are both the best of ``--repeat``; the load average is recorded (the machine is shared). The
memory copy of the same bytes (numpy copy into a buffer already touched) is measured in the same
run as the ceiling.

Writes bench/results/throughput.json and docs/benchmarks/throughput.md.
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
from nnshare.format import decode_arrays, kernels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


NOTES = """
### Where the time went, and what changed (issue 19)

Profiled with cProfile (CPU-time timer) on the 50M model at 8 bits per tensor, before the change:
an encode took 0.51 s CPU, of which the quality report (`share/quality.py`: SQNR and "decoded to
zeros" per tensor) took 0.33 s, because it built the dequantized float32 copy of every tensor
(0.04 s) and then converted original and copy to float64 (0.27 s); quantization (numpy, three
passes: divide, rint, cast) 0.07 s; packing 0.03 s; and four copies of the 50 MB payload (numpy
`tobytes`, the record's `bytearray`, its `bytes`, the stream's join) about 0.05 s. A decode
spent its time in unpacking to int32 codes (0.02 s) and in dequantizing them (0.04-0.05 s),
plus the CRCs (0.01 s).

Now, for arrays of at least 32k elements with numba installed (the `fast` extra):
`nnshare.format.kernels` packs int codes in one compiled pass and, on decode, unpacks and
dequantizes in one pass straight into the float32 output (`read_stream(..., dequantized=True)`,
used by `decode_arrays` / `decode_model`; the int32 codes are never built); the affine
quantizer rounds, clamps and casts in one pass (`nnshare.quant._affine_fast`), and the quality
report reads the original and the int codes once (four interleaved float64 partial sums) instead
of building two float64 copies; records are joined without the intermediate `bytes` copy. The
numpy paths stay (small arrays, no numba, `NNSHARE_NO_NUMBA=1`) and give the same bytes and the
same float32 values (tests/format/test_kernels.py, tests/quant/test_affine_fast.py). What is left
is memory traffic: an encode reads the float32 input three times (range, quantize, quality) and
writes and reads the int32 codes; a decode writes the float32 output once (its first touch of
fresh pages, i.e. page faults, is a large part of the decode's CPU time).
"""


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


def best_of(fn, repeat: int) -> tuple[float, float, object]:
    """(best wall s, best CPU s, result) of ``repeat`` calls."""
    best, best_cpu, res = float("inf"), float("inf"), None
    for _ in range(repeat):
        res = None
        t, c = time.perf_counter(), time.process_time()
        res = fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu, res


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
    dst = np.ones_like(flat)
    t_copy, c_copy, _ = best_of(lambda: np.copyto(dst, flat), args.repeat)
    dst = flat = None  # free 400 MB before the runs
    nnshare.encode({"w": model["layer0.weight"][:64]}, nnshare.uniform(4))  # compile / load caches
    load = [os.getloadavg()]
    rows = []
    for plan_name, plan in [
        ("8-bit per tensor", nnshare.uniform(8)),
        ("8-bit per channel", nnshare.uniform(8, "channel")),
        ("4-bit per tensor", nnshare.uniform(4)),
        ("4-bit per channel", nnshare.uniform(4, "channel")),
    ]:
        t_enc, c_enc, data = best_of(lambda plan=plan: nnshare.encode(model, plan), args.repeat)
        t_dec, c_dec, arrays = best_of(lambda data=data: decode_arrays(data), args.repeat)
        assert set(arrays) == set(model)
        del arrays
        load.append(os.getloadavg())
        rows.append(
            {
                "plan": plan_name,
                "params": n,
                "stream_bytes": len(data),
                "encode_s": t_enc,
                "decode_s": t_dec,
                "encode_cpu_s": c_enc,
                "decode_cpu_s": c_dec,
                "encode_MBps": mb / t_enc,
                "decode_MBps": mb / t_dec,
                "encode_cpu_MBps": mb / c_enc,
                "decode_cpu_MBps": mb / c_dec,
            }
        )
        print(f"{plan_name:18s} encode {mb / t_enc:7.0f} MB/s (CPU {mb / c_enc:7.0f})  "
              f"decode {mb / t_dec:7.0f} MB/s (CPU {mb / c_dec:7.0f})  load {load[-1][0]:.1f}", flush=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, one thread",
        "params": n,
        "float32_MB": mb,
        "memcpy_MBps": mb / t_copy,
        "memcpy_cpu_MBps": mb / c_copy,
        "targets": {"encode_MBps": 1000, "decode_MBps": 2000},
        "load_average_1_5_15": [list(x) for x in load],
        "numba": bool(kernels.fast(kernels.MIN_ELEMENTS)),
        "rows": rows,
    }
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/throughput.json").write_text(json.dumps(result, indent=2))
    lo, hi = min(x[0] for x in load), max(x[0] for x in load)
    lines = [
        "## Encode / decode throughput (issues 2 and 19)",
        "",
        f"{n / 1e6:.1f}M float32 parameters ({mb:.0f} MB), 12 Gaussian 4096-column matrices + biases;"
        f" {result['machine']}, numba {'on' if result['numba'] else 'off'}; best of {args.repeat}."
        " `python bench/throughput.py`. MB/s of float32 bytes (4 per parameter): the encoder's input,"
        " the decoder's output. Encode is `nnshare.encode` (quantize, pack, the quality report);"
        " decode is `decode_arrays` (parse, CRCs, unpack, dequantize).",
        f"Memory copy of the same {mb:.0f} MB in this run: **{mb / t_copy:,.0f} MB/s** wall, "
        f"{mb / c_copy:,.0f} MB/s CPU (the ceiling). 1-minute load average {lo:.1f}-{hi:.1f} on "
        f"{os.cpu_count()} cores during the run (wall time suffers first when it is high).",
        "Targets (issue 19): encode >= 1,000 MB/s, decode >= 2,000 MB/s.",
        "",
        "| plan | stream bytes | encode MB/s wall | encode MB/s CPU | decode MB/s wall | decode MB/s CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['plan']} | {r['stream_bytes']:,} | {r['encode_MBps']:,.0f} | {r['encode_cpu_MBps']:,.0f}"
            f" | {r['decode_MBps']:,.0f} | {r['decode_cpu_MBps']:,.0f} |"
        )
    lines += ["", NOTES.strip()]
    (ROOT / "docs/benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs/benchmarks/throughput.md").write_text("\n".join(lines) + "\n")
    print(f"memcpy {mb / t_copy:,.0f} MB/s; wrote bench/results/throughput.json")


if __name__ == "__main__":
    main()

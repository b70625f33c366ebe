"""Encode / decode speed of nnshare and NNCodec 2.1.3 side by side, in the same run.

Small models (bench/speed_models.py: the 3,256-coefficient CSI encoder, a digits MLP and CNN, a
GRU and a tiny transformer of 100k-200k parameters): NNCodec at one qp (dependent quantization,
its defaults); nnshare rate-controlled (``encode_rate``, TCQ8 and nearest rounding) to the same
stream size, entropy-coded. all-MiniLM-L6-v2 (22.7M parameters): NNCodec at qp -34; nnshare at
one global step whose MSE equals NNCodec's (bits at equal MSE interpolated in log MSE between
two encodes), single-threaded and with 2 processes (the "processes 2" rows encode with
``write_stream(processes=2)`` and decode with ``decode_arrays(data, processes=2)``: the caller
and one forked child, split by element count). Encode and decode times: median of
``--reps`` runs, wall and CPU time (time.process_time; with 2 processes the children's CPU
time too), one thread per process, with the load average at each measurement. ``--profile``
adds a cProfile of one nnshare encode per case: CPU time by module.

    python bench/speed.py [--quick] [--skip-minilm] [--reps 5] [--profile]

Writes bench/results/speed.json and docs/benchmarks/speed.md.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import speed_models  # noqa: E402
from speed_report import write_markdown  # noqa: E402
from vs_nncodec import load_npz, nnc_step, numel, run_nncodec, total_sse  # noqa: E402

from nnshare.format import decode_arrays, write_stream  # noqa: E402
from nnshare.quant import entropy_memo  # noqa: E402
from nnshare.quant.rate import DEFAULT_LAM_SCALE, LAMBDA_HIGH_RATE, quantize_tensor  # noqa: E402
from nnshare.share.rated import encode_rate  # noqa: E402

PROCESSES = (1, 2)
OUT = ROOT / "bench" / "results" / "speed.json"


def cpu_now() -> float:
    """CPU seconds of this process and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn, reps: int):
    """(median wall s, median CPU s, load average at the end, last result) over ``reps`` calls,
    each cold: the encoder's remembered model fits are cleared first (a repeat would reuse them)."""
    wall, cpu, res = [], [], None
    for _ in range(reps):
        entropy_memo.clear()
        t0, c0 = time.perf_counter(), cpu_now()
        res = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(cpu_now() - c0)
    return float(np.median(wall)), float(np.median(cpu)), os.getloadavg()[0], res


def nncodec_point(tensors, qp, reps, tmp: Path) -> dict:
    path = tmp / "input.npz"
    np.savez(path, **tensors)
    la = os.getloadavg()[0]
    r = run_nncodec({"mode": "models", "input": str(path), "reps": reps,
                     "runs": [{"tag": f"qp{-qp}", "kwargs": {"qp": qp}}]}, tmp)[0]
    rec = load_npz(tmp / f"{r['tag']}.npz")
    n = numel(tensors)
    return {"qp": qp, "bytes": r["bytes"], "bpp": 8 * r["bytes"] / n, "mse": total_sse(tensors, rec) / n,
            "enc_s": r["enc_s"], "dec_s": r["dec_s"], "enc_cpu_s": r.get("enc_cpu_s"),
            "dec_cpu_s": r.get("dec_cpu_s"), "load": (la + os.getloadavg()[0]) / 2}


def decode_point(data: bytes, tensors: dict, reps: int, processes: int = 1) -> dict:
    dw, dc, la, rec = timed(lambda: decode_arrays(data, processes=processes), reps)
    n = numel(tensors)
    return {"bytes": len(data), "bpp": 8 * len(data) / n, "mse": total_sse(tensors, rec) / n,
            "dec_s": dw, "dec_cpu_s": dc, "dec_load": la}


def rated_point(tensors, target_bits: float, method: str, reps: int) -> dict:
    """encode_rate to NNCodec's stream size: a first call measures nnshare's stream overhead
    (header, record framing: stream bits - estimated payload bits), the timed calls target the
    stream bits minus that overhead."""
    n = numel(tensors)
    first = encode_rate(tensors, bits=target_bits, method=method, warn=False)
    overhead = 8 * len(first.data) - (first.result.bits + _fine_bits(first))
    target = target_bits - max(overhead, 0.0)
    ew, ec, la, r = timed(lambda: encode_rate(tensors, bits=target, method=method, warn=False), reps)
    p = {"codec": f"nnshare {method} (rate-controlled)", "method": method, "target_bpp": target / n,
         "iterations": r.result.iterations, "enc_s": ew, "enc_cpu_s": ec, "enc_load": la}
    p.update(decode_point(r.data, tensors, reps))
    return p


def _fine_bits(rated) -> float:
    from nnshare.quant.rate import tensor_bits

    return sum(tensor_bits(t) for n, t in rated.tensors.items()
               if n not in rated.result.tensors and hasattr(t, "spec"))


def fixed_encode(tensors, step: float, method: str, processes: int = 1) -> bytes:
    """One global step, quantized and entropy-coded; with processes > 1 each forked worker
    quantizes and codes its share of the tensors (``write_stream(prepare=...)``)."""
    lam = DEFAULT_LAM_SCALE[method] * LAMBDA_HIGH_RATE
    return write_stream(tensors, mode="self", entropy="auto", processes=processes,
                        prepare=lambda _k, v: quantize_tensor(v, step, method=method, lam=lam))[0]


def fixed_point(tensors, step, method, reps, processes=1) -> dict:
    ew, ec, la, data = timed(lambda: fixed_encode(tensors, step, method, processes), reps)
    p = {"codec": f"nnshare {method} (step {step:.4g})", "method": method, "step": step,
         "processes": processes, "enc_s": ew, "enc_cpu_s": ec, "enc_load": la}
    p.update(decode_point(data, tensors, reps, processes))
    return p


def profile_encode(fn) -> dict:
    """CPU seconds by source module of one call (cProfile own time), largest first."""
    entropy_memo.clear()
    pr = cProfile.Profile(time.process_time)
    pr.enable()
    fn()
    pr.disable()
    by: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in pstats.Stats(pr).stats.items():
        key = file.split("/nnshare/")[-1] if "/nnshare/" in file else (
            "numpy" if "numpy" in file else func if file == "~" else Path(file).name)
        key = "numpy/builtins" if key.startswith("<") or key == "numpy" else key
        by[key] = by.get(key, 0.0) + tt
    total = sum(by.values())
    top = sorted(by.items(), key=lambda kv: -kv[1])[:8]
    return {"total_s": total, "top": [[k, v] for k, v in top]}


def small_case(name, tensors, qp, reps, tmp, profile) -> dict:
    n = numel(tensors)
    print(f"[{name}] {n:,} parameters, {len(tensors)} tensors", flush=True)
    nnc = nncodec_point(tensors, qp, reps, tmp)
    print(f"  NNCodec qp {qp}: {nnc['bpp']:.3f} b/p mse {nnc['mse']:.3g} enc {nnc['enc_s']*1e3:.1f} ms "
          f"dec {nnc['dec_s']*1e3:.1f} ms", flush=True)
    out = {"params": n, "tensors": len(tensors), "nncodec": nnc, "nnshare": []}
    for method in ("tcq", "nearest"):
        p = rated_point(tensors, 8 * nnc["bytes"], method, reps)
        out["nnshare"].append(p)
        print(f"  {p['codec']}: {p['bpp']:.3f} b/p mse {p['mse']:.3g} enc {p['enc_s']*1e3:.1f} ms "
              f"({p['iterations']} it) dec {p['dec_s']*1e3:.1f} ms", flush=True)
    if profile:
        target = out["nnshare"][0]["target_bpp"] * n
        out["profile"] = profile_encode(lambda: encode_rate(tensors, bits=target, method="tcq", warn=False))
    return out


def minilm_case(reps, tmp, profile, qp=-34) -> dict:
    tensors = speed_models.minilm()
    n = numel(tensors)
    print(f"[minilm] {n:,} parameters, {len(tensors)} tensors", flush=True)
    nnc = nncodec_point(tensors, qp, 1, tmp)
    print(f"  NNCodec qp {qp}: {nnc['bpp']:.3f} b/p mse {nnc['mse']:.3g} enc {nnc['enc_s']:.2f} s "
          f"dec {nnc['dec_s']:.2f} s", flush=True)
    out = {"params": n, "tensors": len(tensors), "nncodec": nnc, "nnshare": []}
    for method, s0 in (("tcq", nnc_step(qp)), ("nearest", nnc_step(qp) * 1.78)):
        a = fixed_point(tensors, s0, method, 1)  # MSE ~ step^2: one correction to NNCodec's MSE
        s1 = s0 * math.sqrt(nnc["mse"] / a["mse"])
        pts = [a]
        for procs in PROCESSES:
            p = fixed_point(tensors, s1, method, reps, procs)
            pts.append(p)
            out["nnshare"].append(p)
            print(f"  {p['codec']} x{procs}: {p['bpp']:.3f} b/p mse {p['mse']:.3g} enc {p['enc_s']:.2f} s "
                  f"(cpu {p['enc_cpu_s']:.2f}) dec {p['dec_s']:.2f} s", flush=True)
        xs = sorted((math.log(q["mse"]), q["bpp"]) for q in pts[:2])
        out["nnshare"][-1]["bpp_at_nnc_mse"] = out["nnshare"][-2]["bpp_at_nnc_mse"] = float(
            np.interp(math.log(nnc["mse"]), [x for x, _ in xs], [y for _, y in xs]))
        if profile and method == "tcq":
            out["profile"] = profile_encode(lambda s=s1: fixed_encode(tensors, s, "tcq"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 repetition, no MiniLM")
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--only", default="", help="comma list of cases")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--qp", type=int, default=-30, help="NNCodec's qp for the small models")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(OUT.read_text())
        write_markdown(saved, ROOT / "docs" / "benchmarks" / "speed.md")
        return
    import torch

    torch.set_num_threads(1)
    reps = 1 if args.quick else args.reps
    names = list(speed_models.SMALL) + ([] if args.quick or args.skip_minilm else ["minilm"])
    if args.only:
        names = [x for x in dict.fromkeys(names + ["minilm"]) if x in args.only.split(",")]
    results = json.loads(OUT.read_text())["results"] if args.only and OUT.exists() else {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name in names:
            if name == "minilm":
                results[name] = minilm_case(min(reps, 5), tmp, args.profile)
            else:
                tensors = speed_models.SMALL[name]()
                results[name] = small_case(name, tensors, args.qp, reps, tmp, args.profile)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} CPU cores, numpy {np.__version__}", "qp_small": args.qp,
            "reps": reps, "numba": _numba()}
    if names == ["minilm"] and OUT.exists():  # the small models' rows are the earlier run's
        old = json.loads(OUT.read_text())["meta"]
        meta.update(small_date=old.get("small_date", old["date"]), reps=old["reps"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    write_markdown({"meta": meta, "results": results}, ROOT / "docs" / "benchmarks" / "speed.md")
    print(f"wrote {OUT}", flush=True)


def _numba() -> str:
    try:
        import numba

        return numba.__version__
    except ImportError:
        return "absent"


if __name__ == "__main__":
    main()

"""Run NNCodec 2.1.3 on tensors from an .npz file; executed inside bench/.nncodec-venv.

Usage: python nnc_driver.py JOB.json  (written by bench/vs_nncodec.py). The job lists runs
(qp, use_dq, ...); for each run the driver times compress/decompress (median of ``reps``, wall
and CPU time of the process), writes
the decoded tensors to ``<out_dir>/<tag>.npz`` and one JSON line per run to stdout.
Mode "updates": the inputs are a sequence of difference dicts coded with compress_differences and
(optionally) temporal context adaptation (tca), the context kept across rounds on both sides.
torchvision is stubbed during the import (the registry's build cannot load with CPU torch and the
coding path never uses it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import time
from pathlib import Path

import numpy as np


def _import_nnc():
    """NNCodec's ``nnc`` module, torchvision stubbed by the one stub in nnshare/export/nnr_driver.py
    (loaded by path: this venv does not install nnshare)."""
    path = Path(__file__).resolve().parents[2] / "nnshare" / "export" / "nnr_driver.py"
    spec = importlib.util.spec_from_file_location("nnr_driver", path)
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    return driver.import_nncodec()[0]


def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: np.ascontiguousarray(z[k], dtype=np.float32) for k in z.files}


def _quiet(fn, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*a, **kw)


def _base():
    return {"parameters": {}, "put_node_depth": {}, "device_id": 0, "parameter_id": {}}


def run_models(nnc, job) -> None:
    params = _load(job["input"])
    for run in job["runs"]:
        kw = dict(run["kwargs"])
        enc_t, dec_t, enc_c, dec_c, bs, rec = [], [], [], [], None, None
        for _ in range(job.get("reps", 1)):
            t0, c0 = time.perf_counter(), time.process_time()
            bs = _quiet(nnc.compress, params, bitstream_path=None, return_bitstream=True,
                        verbose=False, **kw)
            enc_t.append(time.perf_counter() - t0)
            enc_c.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            rec = _quiet(nnc.decompress, bytearray(bs))
            dec_t.append(time.perf_counter() - t0)
            dec_c.append(time.process_time() - c0)
        np.savez(f"{job['out_dir']}/{run['tag']}.npz", **{k: np.asarray(v) for k, v in rec.items()})
        print(json.dumps({"tag": run["tag"], "bytes": len(bs), "enc_s": float(np.median(enc_t)),
                          "dec_s": float(np.median(dec_t)), "enc_cpu_s": float(np.median(enc_c)),
                          "dec_cpu_s": float(np.median(dec_c))}), flush=True)


def run_updates(nnc, job) -> None:
    deltas = [_load(p) for p in job["inputs"]]
    for run in job["runs"]:
        kw = dict(run["kwargs"])
        tca = kw.pop("tca", False)
        enc_base, dec_base = _base(), _base()
        sizes, enc_t, dec_t, recs = [], 0.0, 0.0, {}
        for i, d in enumerate(deltas):
            t0 = time.perf_counter()
            bs = _quiet(nnc.compress, d, bitstream_path=None, return_bitstream=True,
                        verbose=False, compress_differences=True, approx_param_base=enc_base,
                        tca=tca, update_base_param=tca, **kw)
            enc_t += time.perf_counter() - t0
            t0 = time.perf_counter()
            rec = _quiet(nnc.decompress, bytearray(bs), approx_param_base=dec_base,
                         update_base_param=tca)
            dec_t += time.perf_counter() - t0
            sizes.append(len(bs))
            for k, v in rec.items():
                recs[f"r{i}/{k}"] = np.asarray(v)
        np.savez(f"{job['out_dir']}/{run['tag']}.npz", **recs)
        print(json.dumps({"tag": run["tag"], "bytes": sizes, "enc_s": enc_t, "dec_s": dec_t}),
              flush=True)


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    nnc = _import_nnc()
    (run_updates if job["mode"] == "updates" else run_models)(nnc, job)


if __name__ == "__main__":
    main()

"""The smallest stream that keeps the task working: nnshare.compress vs NNCodec 2.1.3, same run.

Per model (bench/task_models.py): nnshare.compress(model, evaluate, max_drop, calibration) — the
measured-metric search over sensitivity-weighted steps and the uniform global step; NNCodec with
its defaults, qp swept over every integer -46..-6, its stream taken as the smallest whose metric
and every larger stream's stay within tolerance. Both streams carry every float tensor (1-D
included; bookkeeping counters left out by both) and names (nnshare self-describing mode). The
metric is measured on the decoded tensors for both codecs. Tolerances: accuracy >= 0.995 x float,
loss / MSE <= 1.05 x float.

Writes bench/results/task_budget.json, docs/benchmarks/task_budget.md, docs/img/task_budget_*.png.
Usage: python bench/task_budget.py [--quick] [--only NAME ...] [--skip-nncodec]
(``--only minilm`` adds all-MiniLM-L6-v2; ``--only minilm --nncodec-missing`` runs NNCodec at the
qps the JSON lacks and merges them, keeping nnshare's stored result; ``--reuse-nncodec`` reruns
nnshare only for the cases named and keeps NNCodec's stored points, marked "reused".)
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from task_models import CASES  # noqa: E402
from vs_nncodec import run_nncodec  # noqa: E402

import nnshare  # noqa: E402
from nnshare.mixed import Budget  # noqa: E402
from nnshare.state import model_state  # noqa: E402

QPS = list(range(-46, -5))
RESULTS = ROOT / "bench" / "results" / "task_budget.json"
DOC = ROOT / "docs" / "benchmarks" / "task_budget.md"
IMG = ROOT / "docs" / "img"


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> float:
    """Reset the process's peak RSS (Linux: clear_refs 5) and return the current RSS in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak RSS (MB) since the last reset."""
    return _status_mb("VmHWM")


def float_tensors(model) -> dict[str, np.ndarray]:
    st = model_state(model).without_counters()
    return {k: np.ascontiguousarray(v, np.float32) for k, v in st.arrays.items() if v.dtype.kind == "f"}


def load_into(model, rec: dict[str, np.ndarray]):
    m = copy.deepcopy(model)
    sd = m.state_dict()
    for k, v in rec.items():
        sd[k] = torch.from_numpy(np.array(v)).to(sd[k].dtype).reshape(sd[k].shape)
    m.load_state_dict(sd)
    return m.eval()


def smallest_within(points: list[dict]) -> dict | None:
    """The smallest stream whose metric and every larger stream's are within tolerance."""
    best = None
    for p in sorted(points, key=lambda p: -p["bytes"]):
        if not p["ok"]:
            break
        best = p
    return best


def nncodec_sweep(case, budget: Budget, ref: float, tmp: Path, qps: list[int]) -> list[dict]:
    tensors = float_tensors(case.model)
    path = tmp / "input.npz"
    np.savez(path, **tensors)
    runs = [{"tag": f"qp{-qp}", "kwargs": {"qp": qp}} for qp in qps]
    t0 = time.perf_counter()
    res = run_nncodec({"mode": "models", "input": str(path), "reps": 1, "runs": runs}, tmp)
    pts = []
    for qp, r in zip(qps, res, strict=True):
        with np.load(tmp / f"{r['tag']}.npz", allow_pickle=False) as z:
            rec = {k: np.asarray(z[k]) for k in z.files}
        metric = case.evaluate(load_into(case.model, rec))
        pts.append({"qp": qp, "bytes": r["bytes"], "metric": metric, "ok": budget.meets(metric, ref),
                    "enc_s": r["enc_s"]})
    print(f"  NNCodec: {len(pts)} streams in {time.perf_counter() - t0:.1f} s", flush=True)
    return pts


def run_case(key: str, quick: bool, skip_nncodec: bool, tmp: Path) -> dict:
    t0 = time.perf_counter()
    case = CASES[key](quick)
    n = sum(int(a.size) for a in float_tensors(case.model).values())
    ref = case.evaluate(case.model)
    print(f"{case.name}: {n:,} parameters, float {case.metric} {ref:.5g} "
          f"(trained in {time.perf_counter() - t0:.1f} s)", flush=True)
    budget = Budget(max_drop=case.max_drop, higher_is_better=case.higher_is_better,
                    relative=getattr(case, "relative", True))

    def show(k, p):
        print(f"  nnshare eval {k:2d}: {p.family:7s} 2^{p.log2_step:+.3f} {p.bytes:7,d} B "
              f"{case.metric} {p.metric:.5g} {'ok' if p.ok else '--'}", flush=True)

    rss0 = reset_peak_rss()
    t1, c1 = time.perf_counter(), time.process_time()
    r = nnshare.compress(case.model, case.evaluate, budget=budget, calibration=case.calib, progress=show,
                         forward=getattr(case, "forward", None))
    secs, cpu = time.perf_counter() - t1, time.process_time() - c1
    peak = peak_rss_mb()
    load = os.getloadavg()[0]
    # the metric of the chosen stream, decoded from its bytes into a fresh copy
    check = case.evaluate(nnshare.decode(r.data, into=copy.deepcopy(case.model)))
    uni = smallest_within([{"bytes": p.bytes, "ok": p.ok} for p in r.trace if p.family == "uniform"])
    out = {
        "date": time.strftime("%m-%d %H:%M", time.gmtime()), "name": case.name, "note": case.note,
        "metric": case.metric, "params": n,
        "higher_is_better": case.higher_is_better, "max_drop": case.max_drop, "float_metric": ref,
        "allowed": budget.allowed(ref),
        "nnshare": {"bytes": r.nbytes, "metric": r.metric, "decoded_metric": check, "family": r.family,
                    "evaluations": r.evaluations, "seconds": secs, "cpu_s": cpu, "load_avg_1min": load,
                    "rss_before_mb": rss0, "peak_rss_mb": peak, "model_mb": 4 * n / 2**20,
                    "sensitivity_s": r.seconds["sensitivity"],
                    "channels": {k: [c.axis, int(c.rel.size)] for k, c in r.weights.channels.items()},
                    "uniform_bytes": uni["bytes"] if uni else None,
                    "worst_sqnr_db_by_role": {k: round(v, 2) for k, v in r.quality.by_role().items()},
                    "trace": [{"family": p.family, "log2_step": p.log2_step, "bytes": p.bytes,
                               "metric": p.metric, "ok": p.ok} for p in r.trace]},
    }
    print(f"  nnshare: {r.nbytes:,} B ({r.family}), {case.metric} {r.metric:.5g}, {r.evaluations} "
          f"evaluations, {secs:.1f} s wall, {cpu:.1f} s CPU (load {load:.1f}), peak RSS {peak:.0f} MB "
          f"(before {rss0:.0f} MB)", flush=True)
    if not skip_nncodec:
        set_nncodec(out, nncodec_sweep(case, budget, ref, tmp, QPS))
    return out


def set_nncodec(out: dict, pts: list[dict]) -> None:
    """NNCodec's points (by qp), its smallest stream under the monotone rule and any passing one,
    and nnshare's ratios to them, into a case's result."""
    pts = sorted(pts, key=lambda p: p["qp"])
    best = smallest_within(pts)
    ok = [p for p in pts if p["ok"]]
    any_ok = min(ok, key=lambda p: p["bytes"]) if ok else None
    out["nncodec"] = {"points": pts, "best": best, "any": any_ok}
    nb = out["nnshare"]["bytes"]
    out.pop("ratio", None)
    out.pop("ratio_any", None)
    if any_ok:
        out["ratio_any"] = nb / any_ok["bytes"]
    if best:
        out["ratio"] = nb / best["bytes"]
        print(f"  NNCodec: qp {best['qp']} {best['bytes']:,} B, {out['metric']} {best['metric']:.5g}; "
              f"nnshare / NNCodec = {out['ratio']:.3f}", flush=True)


def nncodec_missing(key: str, old: dict, quick: bool, tmp: Path) -> dict:
    """Sweep only the qps of QPS the stored result lacks (same model, same evaluation) and merge."""
    case = CASES[key](quick)
    ref = case.evaluate(case.model)
    if abs(ref - old["float_metric"]) > 1e-9 * max(1.0, abs(ref)):
        raise SystemExit(f"{key}: float metric {ref} differs from the stored {old['float_metric']}")
    budget = Budget(max_drop=case.max_drop, higher_is_better=case.higher_is_better,
                    relative=getattr(case, "relative", True))
    have = {p["qp"]: p for p in old.get("nncodec", {}).get("points", [])}
    todo = [q for q in QPS if q not in have]
    print(f"{case.name}: NNCodec qps to add: {todo}", flush=True)
    pts = list(have.values()) + (nncodec_sweep(case, budget, ref, tmp, todo) if todo else [])
    set_nncodec(old, pts)
    return old


def plot(res: dict, key: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    nn_ = res["nnshare"]
    for fam, style in (("channel", "^"), ("task", "o"), ("hybrid", "v"), ("uniform", "s")):
        pts = sorted((p for p in nn_["trace"] if p["family"] == fam), key=lambda p: p["bytes"])
        if pts:
            ax.plot([p["bytes"] for p in pts], [p["metric"] for p in pts], style, ms=4, alpha=0.8,
                    label=f"nnshare {fam} (measured)")
    if "nncodec" in res:
        pts = res["nncodec"]["points"]
        ax.plot([p["bytes"] for p in pts], [p["metric"] for p in pts], "k.-", lw=0.8, ms=3,
                label=f"NNCodec qp {min(p['qp'] for p in pts)}..{max(p['qp'] for p in pts)}")
        if res["nncodec"]["best"]:
            b = res["nncodec"]["best"]
            ax.plot([b["bytes"]], [b["metric"]], "kD", ms=7, mfc="none", label=f"NNCodec {b['bytes']:,} B")
    ax.plot([nn_["bytes"]], [nn_["metric"]], "r*", ms=12, label=f"nnshare {nn_['bytes']:,} B")
    ax.axhline(res["allowed"], color="r", lw=0.6, ls="--", label="tolerance")
    ax.axhline(res["float_metric"], color="g", lw=0.6, ls=":", label="float")
    ax.set_xscale("log")
    ax.set_xlabel("stream bytes")
    ax.set_ylabel(res["metric"])
    lo = min(res["allowed"], res["float_metric"])
    span = abs(res["float_metric"] - res["allowed"])
    ax.set_ylim(lo - 4 * span, lo + 5 * span) if res["higher_is_better"] else ax.set_ylim(lo - 3 * span,
                                                                                         lo + 6 * span)
    ax.set_title(res["name"], fontsize=10)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    name = f"task_budget_{key}.png"
    fig.savefig(IMG / name, dpi=110)
    plt.close(fig)
    return name


def markdown(results: dict, meta: dict) -> str:
    L = ["# Smallest stream within a task tolerance: nnshare.compress vs NNCodec 2.1.3", "",
         f"Generated by `bench/task_budget.py` (last run {meta['date']}, {meta['machine']}), both codecs "
         "single-threaded. nnshare: `nnshare.compress(model, evaluate, max_drop, calibration)` — the "
         "measured-metric search over four families of steps: per-channel steps where the output "
         "Gauss-Newton diagonal says a tensor's rows or columns differ enough to pay for their bf16 "
         "scales (\"channel\"), sensitivity-weighted per-tensor steps (\"task\"; output sensitivity "
         "on 128-256 training inputs, 1-D tensors included), the uniform step for the weight matrices "
         "with measured steps for 1-D tensors and embeddings (\"hybrid\"), and the uniform global step; "
         "a family stops once a failing stream of it is at least as large as the best found. TCQ, "
         "entropy-coded, self-describing stream (names included). NNCodec: defaults (dependent "
         "quantization, 1-D tensors at nonweight_qp -75), qp every integer -46..-6 on every model, its "
         "stream = the smallest whose metric and every larger stream's stay within tolerance. Both "
         "streams carry every float tensor; metrics measured on the decoded tensors. Tolerance: "
         "accuracy >= 0.995 x float, loss / MSE <= 1.05 x float, MiniLM cosine >= 0.99.", "",
         "| model | params | metric | float | tolerance | NNCodec bytes (qp) | nnshare bytes (family) | "
         "nnshare / NNCodec | NNCodec any passing qp | nnshare / that | nnshare uniform only | "
         "evaluations | search s wall / CPU | peak RSS over start, MB | run |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        nn_ = r["nnshare"]
        b = r.get("nncodec", {}).get("best")
        nnc = f"{b['bytes']:,} ({b['qp']})" if b else "—"
        ratio = f"**{r['ratio']:.3f}**" if "ratio" in r else "—"
        if nn_["uniform_bytes"]:
            uni = f"{nn_['uniform_bytes']:,}"
        else:
            fails = [p["bytes"] for p in nn_["trace"] if p["family"] == "uniform" and not p["ok"]]
            uni = f"fails at {max(fails):,}" if fails else "—"
        a = r.get("nncodec", {}).get("any")
        any_s = f"{a['bytes']:,} ({a['qp']})" if a else "—"
        ratio_any = f"{r['ratio_any']:.3f}" if "ratio_any" in r else "—"
        cpu = f" / {nn_['cpu_s']:.0f}" if "cpu_s" in nn_ else ""
        rss = f"{nn_['peak_rss_mb'] - nn_['rss_before_mb']:.0f}" if "peak_rss_mb" in nn_ else "—"
        L.append(f"| {r['name']} | {r['params']:,} | {r['metric']} | {r['float_metric']:.4g} | "
                 f"{r['allowed']:.4g} | {nnc} | {nn_['bytes']:,} ({nn_['family']}) | {ratio} | {any_s} | "
                 f"{ratio_any} | {uni} | {nn_['evaluations']} | {nn_['seconds']:.0f}{cpu} | {rss} | "
                 f"{r.get('date', '')} |")
    L += ["", "Target: nnshare <= 0.75 x NNCodec's bytes on every model. \"NNCodec any passing qp\" is the "
          "smallest NNCodec stream within tolerance ignoring larger streams that fail (the most "
          "favourable reading for NNCodec: with 41 noisy measurements, one failing qp above blocks "
          "every smaller stream under the issue's rule; nnshare's search measures 10-22 points). \"Peak "
          "RSS over start\": the process's peak RSS during the search minus its RSS before it (model and "
          "evaluation data loaded).", ""]
    for r in results.values():
        if r.get("plot"):
            L += [f"![{r['name']}](../img/{r['plot']})", ""]
    L += meta.get("notes", [])
    return "\n".join(L) + "\n"


NOTES = [
    "## Notes", "",
    "- **Per-channel steps** (family \"channel\") pay where one tensor holds channels of very different "
    "sensitivity: the GRU's `weight_hh_l0` (85 % of its parameters; rows = the three gates x 96 units, "
    "shares 0.004-11.7) gets 288 bf16 steps: 10.3 kB against 13.2 kB with one step per tensor (0.92x "
    "NNCodec before, 0.72x now). The autoencoder's first layer (per input pixel: the digits' border "
    "pixels are always 0) and last layer (per output pixel), 9.6 kB against 10.0 kB. On MiniLM 36 "
    "matrices get per-row or per-column steps: 9.40 MB against 9.71 MB per tensor. Embedding tables "
    "stay per tensor: a row the calibration never looks up has a zero Gauss-Newton diagonal, and "
    "giving those rows coarse steps cost MiniLM 7 % in a first run. On the tiny LM no channel split "
    "pays for its scales (predicted saving below twice the 16 bits per channel).",
    "- **Hybrid** (uniform step for the weight matrices, measured steps for 1-D tensors and embeddings) "
    "wins on the MLP and the tiny LM, where the per-tensor output sensitivities of the matrices "
    "mislead (the LM's metric is the next-token loss, the sensitivity the logits' MSE) but the "
    "embeddings (4.7 bits per parameter at the matrices' step) and 1-D tensors are worth their own "
    "steps: LM 11.4 kB against 12.5 kB for the uniform plan (0.82x -> 0.75x NNCodec).",
    "- **Metric noise decides the accuracy rows.** The digits test set has 450 images (0.5 % is 2 "
    "images); under the issue's rule one unlucky NNCodec qp among 41 blocks all smaller ones: on the "
    "MLP NNCodec's smallest passing stream (qp -12, 12.9 kB) is smaller than nnshare's (1.03x). Read "
    "the MLP row as parity. The other rows hold under both readings except the GRU (0.85x of "
    "NNCodec's smallest passing qp).",
    "- **The search** measures 10-22 streams; a family stops as soon as a failing stream of it is at "
    "least as large as the best one found (on MiniLM the hybrid and uniform families take one and "
    "two evaluations). Each evaluation loads the dequantized records of the written stream into one "
    "working copy of the model, tensor by tensor (what the receiver rebuilds; the bench decodes the "
    "chosen stream again into a fresh model: `decoded_metric` in the JSON).",
    "- **all-MiniLM-L6-v2: 9.42 MB, 0.719x NNCodec (qp -31, 13.10 MB), 14 evaluations, 37 s wall "
    "/ 37 s CPU** on a quiet machine (load 0.9; rerun 03:05 with `--reuse-nncodec minilm` on the "
    "final code, so every family was measured: channel, task, hybrid, uniform): the 60 s target "
    "holds. An earlier run under load average 14 took 590 s wall / 69 s CPU for 10 evaluations. Peak "
    "RSS 1,320 MB, 634 MB above the 686 MB before the search (7x the 91 MB model; the 3x target of "
    "the speed issue is not met): the working copy of the model, the codes of every tensor (int32) "
    "while the stream is written and the trellis' float64 temporaries on the 11.7M-entry word "
    "embedding sit on top of each other. The chosen stream leaves the pooler (unused by the mean-"
    "pooled embedding) at 0 dB SQNR and the attention key biases (softmax ignores them) at 3.7-5.9 "
    "dB; compress warns about all five. NNCodec's 41 qps on MiniLM: "
    "-40..-22 from the earlier run, the other 22 added by `--nncodec-missing` (3,322 s wall under "
    "load); deterministic, same model and evaluation.",
    "- **Memory by part:** `task_weights` on MiniLM alone peaks at +226 MB RSS (float32 "
    "Gauss-Newton accumulators, embedding tables not probed; 8.5 s CPU). Quantizing one MiniLM "
    "stream peaks at +573 MB: the trellis' float64 copies and int64 paths of the 11.7M-entry word "
    "embedding (chunking it changes the trellis' rate tables, so the stream; left for the TCQ work). "
    "Since then (the MiniLM row above predates it): blocked TCQ with the same rate tables, one "
    "tensor's codes at a time; see \"Budget search memory\" (bench/budget_memory.py).",
    "- **Which code each row ran.** MiniLM: the final code (03:05). The MLP, GRU, LM and "
    "autoencoder rows (02:19-02:24) ran "
    "when the \"task\" family still carried the per-channel steps: relabelled \"channel\" in the JSON "
    "where a tensor had them (same streams); the per-tensor family of the current code was measured "
    "on the CNN (02:25) and, having no channel split, the LM. All rows predate main's TCQ fix for a "
    "short last stripe (201ac8c), which can move a stream by a few bytes (MiniLM: 9,396,355 B then, "
    "9,416,500 B now).",
    "- **Data-free budget search memory** (`nnshare encode MiniLM/model.safetensors --budget-bytes "
    "12000000`, /usr/bin/time): peak RSS 356 MB (was 1,357 MB), 243 MB = 2.7x the model above the "
    "interpreter and imports (113 MB); the same stream bytes.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-nncodec", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--docs-only", action="store_true", help="rewrite the markdown from the JSON")
    ap.add_argument("--reuse-nncodec", nargs="*", default=[],
                    help="cases whose stored NNCodec points are kept (nnshare rerun only)")
    ap.add_argument("--nncodec-missing", action="store_true",
                    help="for the --only cases: run NNCodec at the qps the JSON lacks, merge, keep nnshare's")
    ap.add_argument("--results", type=Path, default=None,
                    help="read and write this JSON (and its markdown beside it) instead")
    a = ap.parse_args()
    if a.results is not None:
        global RESULTS, DOC
        RESULTS, DOC = a.results, a.results.with_suffix(".md")
    if a.nncodec_missing:
        torch.set_num_threads(1)
        d = json.loads(RESULTS.read_text())
        with tempfile.TemporaryDirectory() as tmp:
            for k in a.only or []:
                d["results"][k] = nncodec_missing(k, d["results"][k], a.quick, Path(tmp))
                d["results"][k]["plot"] = plot(d["results"][k], k)
                fresh = json.loads(RESULTS.read_text())  # other runs may have written meanwhile
                fresh["results"][k] = d["results"][k]
                RESULTS.write_text(json.dumps(fresh, indent=1))
        return
    if a.docs_only:
        d = json.loads(RESULTS.read_text())
        for k, r in d["results"].items():
            r["plot"] = plot(r, k)
        DOC.write_text(markdown(d["results"], {**d["meta"], "notes": NOTES}))
        return
    torch.set_num_threads(1)
    keys = a.only or [k for k in CASES if k != "minilm"]
    results = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() and a.only else {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in keys:
            old = results.get(k, {}).get("nncodec") if k in a.reuse_nncodec else None
            results[k] = run_case(k, a.quick, a.skip_nncodec or old is not None, Path(tmp))
            if old is not None:  # deterministic: same model, same evaluation, same NNCodec
                set_nncodec(results[k], old["points"])
                results[k]["nncodec"]["reused"] = True
            results[k]["plot"] = plot(results[k], k)
            if not a.no_write:
                meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "machine": f"{os.cpu_count()} CPU cores, numpy {np.__version__}", "quick": a.quick}
                meta_doc = {**meta, "notes": NOTES}
                RESULTS.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
                DOC.write_text(markdown(results, meta_doc))
    print(f"wrote {RESULTS} and {DOC}")


if __name__ == "__main__":
    main()

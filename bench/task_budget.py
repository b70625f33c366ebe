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
qps the JSON lacks and merges them, keeping nnshare's stored result.)
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

    t1 = time.perf_counter()
    r = nnshare.compress(case.model, case.evaluate, budget=budget, calibration=case.calib, progress=show,
                         forward=getattr(case, "forward", None))
    secs = time.perf_counter() - t1
    # the metric of the chosen stream, decoded from its bytes into a fresh copy
    check = case.evaluate(nnshare.decode(r.data, into=copy.deepcopy(case.model)))
    uni = smallest_within([{"bytes": p.bytes, "ok": p.ok} for p in r.trace if p.family == "uniform"])
    out = {
        "name": case.name, "note": case.note, "metric": case.metric, "params": n,
        "higher_is_better": case.higher_is_better, "max_drop": case.max_drop, "float_metric": ref,
        "allowed": budget.allowed(ref),
        "nnshare": {"bytes": r.nbytes, "metric": r.metric, "decoded_metric": check, "family": r.family,
                    "evaluations": r.evaluations, "seconds": secs, "sensitivity_s": r.seconds["sensitivity"],
                    "uniform_bytes": uni["bytes"] if uni else None,
                    "worst_sqnr_db_by_role": {k: round(v, 2) for k, v in r.quality.by_role().items()},
                    "trace": [{"family": p.family, "log2_step": p.log2_step, "bytes": p.bytes,
                               "metric": p.metric, "ok": p.ok} for p in r.trace]},
    }
    print(f"  nnshare: {r.nbytes:,} B ({r.family}), {case.metric} {r.metric:.5g}, {r.evaluations} "
          f"evaluations, {secs:.1f} s", flush=True)
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
    for fam, style in (("task", "o"), ("uniform", "s")):
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
         f"Generated by `bench/task_budget.py` on {meta['date']} ({meta['machine']}), both codecs "
         "single-threaded in the same run. nnshare: `nnshare.compress(model, evaluate, max_drop, "
         "calibration)` — the measured-metric search over sensitivity-weighted per-tensor steps "
         "(output sensitivity on 128-256 training inputs, 1-D tensors included) and the uniform "
         "global step, TCQ, entropy-coded, self-describing stream (names included). NNCodec: defaults "
         "(dependent quantization, 1-D tensors at nonweight_qp -75), qp every integer -46..-6, its "
         "stream = the smallest whose metric and every larger stream's stay within tolerance. Both "
         "streams carry every float tensor; metrics measured on the decoded tensors. Tolerance: "
         "accuracy >= 0.995 x float, loss / MSE <= 1.05 x float.", "",
         "| model | params | metric | float | tolerance | NNCodec bytes (qp) | nnshare bytes (steps) | "
         "nnshare / NNCodec | NNCodec any passing qp | nnshare / that | nnshare uniform only | "
         "evaluations | search s |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        nn_ = r["nnshare"]
        b = r.get("nncodec", {}).get("best")
        nnc = f"{b['bytes']:,} ({b['qp']})" if b else "—"
        ratio = f"**{r['ratio']:.3f}**" if "ratio" in r else "—"
        uni = f"{nn_['uniform_bytes']:,}" if nn_["uniform_bytes"] else "—"
        a = r.get("nncodec", {}).get("any")
        any_s = f"{a['bytes']:,} ({a['qp']})" if a else "—"
        ratio_any = f"{r['ratio_any']:.3f}" if "ratio_any" in r else "—"
        L.append(f"| {r['name']} | {r['params']:,} | {r['metric']} | {r['float_metric']:.4g} | "
                 f"{r['allowed']:.4g} | {nnc} | {nn_['bytes']:,} ({nn_['family']}) | {ratio} | {any_s} | "
                 f"{ratio_any} | {uni} | "
                 f"{nn_['evaluations']} | {nn_['seconds']:.0f} |")
    L += ["", "Target: nnshare <= 0.75 x NNCodec's bytes on every model. \"NNCodec any passing qp\" is the "
          "smallest NNCodec stream within tolerance ignoring larger streams that fail (the most "
          "favourable reading for NNCodec: with 41 noisy measurements, one failing qp above blocks "
          "every smaller stream under the issue's rule; nnshare's search measures 12-16 points).", ""]
    for r in results.values():
        if r.get("plot"):
            L += [f"![{r['name']}](../img/{r['plot']})", ""]
    L += meta.get("notes", [])
    return "\n".join(L) + "\n"


NOTES = [
    "## Where the target is missed, and why", "",
    "- **Metric noise decides the accuracy rows.** The digits test set has 450 images, so 0.5 % is "
    "2 images; single streams pass or fail by luck. Under the issue's rule (every larger stream "
    "within tolerance) one unlucky NNCodec qp among 41 blocks all smaller ones: on the MLP that "
    "makes NNCodec's stream 31 kB, while its smallest passing stream (qp -12, 12.9 kB) is *smaller* "
    "than nnshare's (ratio 1.06). Read the MLP row as parity. The CNN row holds under both readings.",
    "- **BatchNorm and 1-D tensors are where the task-aware steps pay.** On the CNN the measured "
    "sensitivities give the BatchNorm statistics, biases and each weight tensor their own step: "
    "4.1 kB against 7.2 kB for the best uniform step (-44 %) and 9.3 kB for NNCodec. On the "
    "autoencoder -19 % against uniform. On the MLP, GRU and LM the per-tensor weighting gains "
    "0-8 % over the uniform step, and the uniform step wins twice.",
    "- **GRU (0.92x, 1.10x against NNCodec's smallest passing qp).** It needs ~3.5 bits per "
    "parameter: at that rate nnshare's coder is at parity with NNCodec at equal MSE "
    "(`bench/vs_nncodec.py`: +2-4 %), and one step per tensor cannot separate the three gates "
    "inside `weight_hh_l0` (one tensor, 85 % of the parameters). Per-gate or per-row steps "
    "(scales cost 16-32 bits per row) are the next lever; not built.",
    "- **Tiny LM (0.82x) and autoencoder (0.76x).** The gain is TCQ + context modelling at low rate "
    "(1.7 and 3.8 bits per parameter) plus, for the autoencoder, the allocation. The output-MSE "
    "sensitivity of the LM's logits is not the next-token loss; `task_weights(distance=\"kl\")` "
    "measures the softmax KL instead but did not separate from noise in a quick trial.",
    "- **all-MiniLM-L6-v2 (0.74x).** The measured sensitivities pay most here: 9.7 MB against "
    "12.7 MB for the best uniform step (-24 %) and 13.1 MB for NNCodec (qp -31, cosine 0.992). "
    "They find tensors the sentence embedding does not use or that softmax ignores "
    "(`pooler.dense.weight`, attention key biases) and code them at the coarsest step allowed "
    "(16x the reference; the encoder warns that they lose their energy). NNCodec was swept over "
    "qp -40..-22 only (about 90 s per stream under this run's load; cosine 0.99 lies at qp -31). "
    "The search took 12 evaluations and 679 s on the loaded machine (target was 60 s: each "
    "evaluation TCQ-codes 22.7M weights and decodes them; not met).",
    "- Not built: per-channel steps, bit-width/scheme choice inside `compress` (the knapsack "
    "allocator `search` stays the size-budget path), the PTQ transforms (GPTQ, AdaRound) inside "
    "the search.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-nncodec", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--docs-only", action="store_true", help="rewrite the markdown from the JSON")
    ap.add_argument("--nncodec-missing", action="store_true",
                    help="for the --only cases: run NNCodec at the qps the JSON lacks, merge, keep nnshare's")
    a = ap.parse_args()
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
            results[k] = run_case(k, a.quick, a.skip_nncodec, Path(tmp))
            results[k]["plot"] = plot(results[k], k)
            if not a.no_write:
                meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "machine": f"{os.cpu_count()} CPU cores, numpy {np.__version__}", "quick": a.quick}
                meta_doc = {**meta, "notes": NOTES}
                RESULTS.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
                DOC.write_text(markdown(results, meta_doc))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

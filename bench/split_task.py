"""SGQ against uniform at equal bytes, on the task: task-weighted steps (issue 16).

    python bench/split_task.py --eval [--seeds N] [--quick]   # coded activations of fp32 nets
    python bench/split_task.py --sweep [--seeds N] [--quick]  # training through the codecs

``--eval``: per seed, train the fp32 split net, take the loss sensitivity at the cut (mean squared
gradient per channel and row over the training set: empirical labels, what a weighted boundary
keeps, or labels sampled from the model: the Fisher), then code the activations of an evaluation
set (batches of 64) with uniform (one range), SGQ (ranges) and weighted SGQ (steps by
sensitivity) at 1-5 bits and measure the KL of the server's output to its fp32 output, its
cross-entropy and accuracy: a task metric without label or training noise. ``--sweep``: training
through weighted SGQ (forward; uniform's symmetric backward) and per-channel ranges, paired
with the uniform and SGQ codecs of ``bench/split.py --sweep`` (same seeds, data, initialisation,
batch order; seeds that sweep lacks are run here and folded back into it). Merges into
bench/results/split.json ("task_eval", "sweep_weighted", "sweep") and rewrites
docs/benchmarks/split.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import split as sp  # noqa: E402
import torch  # noqa: E402

from nnshare.collab.feature_codecs import SGQ, Lossless, Uniform  # noqa: E402

nn = torch.nn
OUT = ROOT / "bench" / "results" / "split.json"
EVAL_SEEDS = 5
EVAL_BITS = (1, 2, 3, 4, 5)
# name -> (codec at b bits, weight: None, "empirical" (training labels, what a weighted boundary
# keeps) or "fisher" (labels sampled from the model: the Fisher of the server's output))
EVAL_CODECS = {
    "uniform": (Uniform, None),
    "SGQ 4 groups x 2 rows": (lambda b: SGQ(b, 4, 2), None),
    "SGQ per channel x 1 row": (lambda b: SGQ(b, 16, 1), None),
    "weighted SGQ 4 groups x 2 rows": (lambda b: SGQ(b, 4, 2, weighted=True), "empirical"),
    "weighted SGQ 4 groups x 2 rows, Fisher": (lambda b: SGQ(b, 4, 2, weighted=True), "fisher"),
    "weighted SGQ per channel x 2 rows": (lambda b: SGQ(b, 16, 2, weighted=True), "empirical"),
    "weighted SGQ per channel x 2 rows, Fisher": (lambda b: SGQ(b, 16, 2, weighted=True), "fisher"),
}


def sensitivity(device, server, x, y=None, batch: int = 64, seed: int = 0) -> np.ndarray:
    """Mean squared loss gradient at the cut per (channel, row) over ``x`` in batches (the mean
    cross-entropy of each batch, as in training); ``y`` None: labels sampled from the model's
    own prediction (the Fisher information of its output, the curvature of the KL below)."""
    acc, n, gen = 0.0, 0, torch.Generator().manual_seed(seed)
    for i in range(0, len(x) - batch + 1, batch):
        a = device(torch.from_numpy(x[i : i + batch])).detach().requires_grad_(True)
        z = server(a)
        t = (
            torch.multinomial(z.softmax(1).detach(), 1, generator=gen)[:, 0]
            if y is None
            else torch.from_numpy(y[i : i + batch])
        )
        nn.functional.cross_entropy(z, t).backward()
        acc = acc + a.grad.double().square().mean(dim=(0, 3)).numpy()
        n += 1
    return acc / n


def gain_bound(w: np.ndarray, groups: int, stripe: int) -> float:
    """High-rate bound on what weighted steps buy over one step: the weighted error ratio
    AM(w) / GM(w) over the blocks (channels grouped by weight, equal-sized blocks)."""
    c, h = w.shape
    wb = w[np.argsort(w.sum(1))].reshape(groups, c // groups, h // stripe, stripe).mean(axis=(1, 3))
    return float(wb.mean() / np.exp(np.log(wb).mean()))


def eval_data(task: str, seed: int):
    """Training data, and a larger evaluation set than the test split (digits: all 1797 images,
    the KL measures coding distortion, not generalisation; synthetic: 3000 fresh samples)."""
    make, _ = sp.TASKS[task]
    x_tr, y_tr, x_te, y_te = make(seed)
    if task == "digits":
        return x_tr, y_tr, np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])
    _, _, x_ev, y_ev = sp.synthetic_task(seed + 1000, n=3064, test=3000)
    return x_tr, y_tr, x_ev, y_ev


def eval_seed(task: str, seed: int, epochs: int, bits=EVAL_BITS) -> dict:
    """One trained fp32 net; per codec and width: mean bytes per batch of 64, and the server's
    mean KL(fp32 output || coded output), cross-entropy and accuracy on the evaluation set."""
    x_tr, y_tr, x_ev, y_ev = eval_data(task, seed)
    cuts: list = []
    sp.train(task, Lossless(), Lossless(), seed, epochs, cut_out=cuts)
    device, server = cuts[0].trained  # set by train via cut_out
    w = {"empirical": sensitivity(device, server, x_tr, y_tr), "fisher": sensitivity(device, server, x_tr)}
    out = {
        "bound": {k: {"4x2": gain_bound(v, 4, 2), "16x2": gain_bound(v, 16, 2)} for k, v in w.items()},
        "codecs": {},
    }
    with torch.no_grad():
        idx = range(0, len(y_ev) - 63, 64)
        acts = [device(torch.from_numpy(x_ev[i : i + 64])).numpy() for i in idx]
        ys = [torch.from_numpy(y_ev[i : i + 64]) for i in idx]
        ref = [nn.functional.log_softmax(server(torch.from_numpy(a)), 1) for a in acts]

        def score(coded):
            logp = [nn.functional.log_softmax(server(torch.from_numpy(a)), 1) for a in coded]
            pairs = list(zip(logp, ref, ys, strict=True))
            return {
                "kl": float(np.mean([(r.exp() * (r - z)).sum(1).mean().item() for z, r, _ in pairs])),
                "ce": float(np.mean([nn.functional.nll_loss(z, t).item() for z, _, t in pairs])),
                "accuracy": float(np.mean([(z.argmax(1) == t).float().mean().item() for z, _, t in pairs])),
            }

        out["fp32"] = score(acts)
        for name, (make_codec, wk) in EVAL_CODECS.items():
            pts = {}
            for b in bits:
                rt = [make_codec(b).roundtrip(a, 0, None if wk is None else w[wk]) for a in acts]
                pts[b] = {"bytes": float(np.mean([r[1] for r in rt])), **score([r[0] for r in rt])}
            out["codecs"][name] = pts
    return out


def at_bytes(pts: dict, nbytes: float, key: str, log: bool = False) -> float:
    """``key`` of a codec's points at ``nbytes``, interpolated linearly in log-bytes (in log-value
    too when ``log``); nan outside the points (no extrapolation)."""
    p = sorted((math.log(v["bytes"]), math.log(v[key]) if log else v[key]) for v in pts.values())
    x = math.log(nbytes)
    if not p[0][0] <= x <= p[-1][0]:
        return math.nan
    y = float(np.interp(x, *zip(*p, strict=True)))
    return math.exp(y) if log else y


def eval_summary(seeds: list[dict]) -> dict:
    """Per codec and width over seeds: mean bytes, the KL ratio to uniform's KL at the codec's
    bytes (< 1: less distortion of the server's output than uniform at equal bytes), and the
    accuracy difference to uniform's at equal bytes (points); per seed lists."""
    rows = {}
    for name in EVAL_CODECS:
        for b in seeds[0]["codecs"][name]:
            pt = [s["codecs"][name][b] for s in seeds]
            uni = [s["codecs"]["uniform"] for s in seeds]
            rows[f"{name}, {b}-bit"] = {
                "bytes": float(np.mean([p["bytes"] for p in pt])),
                "kl": float(np.mean([p["kl"] for p in pt])),
                "kl_ratio": [
                    p["kl"] / at_bytes(u, p["bytes"], "kl", log=True) for p, u in zip(pt, uni, strict=True)
                ],
                "dacc_points": [
                    100 * (p["accuracy"] - at_bytes(u, p["bytes"], "accuracy"))
                    for p, u in zip(pt, uni, strict=True)
                ],
                "byte_saving": [
                    1 - p["bytes"] / bytes_at_kl(u, p["kl"]) for p, u in zip(pt, uni, strict=True)
                ],
            }
    return rows


def bytes_at_kl(pts: dict, kl: float) -> float:
    """Uniform's bytes at the KL ``kl`` (log-log interpolation between its widths; nan outside)."""
    p = sorted((math.log(v["kl"]), math.log(v["bytes"])) for v in pts.values() if v["kl"] > 0)
    x = math.log(kl) if kl > 0 else -math.inf
    if not p[0][0] <= x <= p[-1][0]:
        return math.nan
    return math.exp(float(np.interp(x, *zip(*p, strict=True))))


def merge(key: str, task: str, value) -> dict:
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "nnshare-bench-split.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = json.loads(OUT.read_text())
        res.setdefault(key, {})[task] = value
        OUT.write_text(json.dumps(res, indent=1))
    return res


def sweep_weighted(task: str, epochs: int, seeds: list[int], save=None, reuse: bool = True) -> dict:
    """Training through weighted SGQ (forward, asymmetric) + uniform's symmetric backward at 2 and
    3 bits; for seeds the main sweep lacks, its uniform and SGQ codecs too."""
    res = json.loads(OUT.read_text()) if reuse else {}  # reuse: the stored runs of the same code
    old = res.get("sweep", {}).get(task, {"seeds": [], "runs": {}})
    runs = {k: {s: r for s, r in zip(old["seeds"], v, strict=True)} for k, v in old["runs"].items()}
    done = res.get("sweep_weighted", {}).get(task, {"runs": {}})["runs"]
    for k, v in done.items():  # runs of an earlier weighted sweep (seed keys are strings in JSON)
        runs.setdefault(k, {}).update({int(q): r for q, r in v.items()})
    codecs = {f"{k} {b}": sp.sweep_codecs(k, b) for k, b in sp.SWEEP_ORDER}
    codecs |= {f"sgqw {b}": (SGQ(b, 16, 2, weighted=True), Uniform(b, symmetric=True)) for b in (2, 3)}
    h = sp.TASKS[task][1] // 2  # per-channel ranges: one block per channel, the whole height
    codecs |= {f"uch {b}": (SGQ(b, 16, h), SGQ(b, 16, h, symmetric=True)) for b in (2, 3)}
    for name in ("sgqw 2", "sgqw 3", *[k for k in codecs if not k.startswith("sgqw")]):
        for s in seeds:
            if s in runs.get(name, {}):
                continue
            t0 = time.time()
            r = sp.train(task, *codecs[name], s, epochs)
            runs.setdefault(name, {})[s] = r
            print(
                f"{task} {name} seed {s}: acc {r['accuracy']:.4f} bytes "
                f"{r['forward_bytes'] + r['backward_bytes']:.0f} ({time.time() - t0:.0f} s)",
                flush=True,
            )
            if save is not None:
                save(
                    {
                        "seeds": seeds,
                        "epochs": epochs,
                        "runs": {k: {str(q): x for q, x in v.items()} for k, v in runs.items()},
                    }
                )
    return {
        "seeds": seeds,
        "epochs": epochs,
        "runs": {k: {str(q): x for q, x in v.items()} for k, v in runs.items()},
    }


EPOCHS = {"digits": 15, "synthetic": 6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", action="store_true", help="coded activations of trained fp32 nets")
    ap.add_argument("--sweep", action="store_true", help="training through weighted SGQ (paired)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--task", choices=list(sp.TASKS))
    ap.add_argument("--seeds", type=int, default=EVAL_SEEDS)
    args = ap.parse_args()
    if args.eval == args.sweep:
        ap.error("give exactly one of --eval, --sweep")
    seeds = list(range(1 if args.quick else args.seeds))
    for task in [args.task] if args.task else list(sp.TASKS):
        epochs = 1 if args.quick else EPOCHS[task]
        if args.eval:
            t0 = time.process_time()
            per = [eval_seed(task, s, epochs) for s in seeds]
            ev = {
                "seeds": seeds,
                "epochs": epochs,
                "per_seed": per,
                "summary": eval_summary(per),
                "cpu_seconds": time.process_time() - t0,
            }
            for k, r in ev["summary"].items():
                print(
                    f"{task} {k:48s} {r['bytes']:8.0f} B  KL/uniform {mean_std(r['kl_ratio'], '.2f')}  "
                    f"acc {mean_std(r['dacc_points'])}",
                    flush=True,
                )
            if not args.quick:
                merge("task_eval", task, ev)
        else:

            def save(sw, task=task):
                merge("sweep_weighted", task, sw)

            sw = sweep_weighted(task, epochs, seeds, None if args.quick else save, reuse=not args.quick)
            if not args.quick:
                fold(task)
            if args.quick:
                print(json.dumps(weighted_diffs(sw), indent=1))
    if not args.quick:
        sp.write_docs(json.loads(OUT.read_text()))


def mean_std(v, fmt: str = "+.2f") -> str:
    v = [x for x in v if math.isfinite(x)]
    return f"{np.mean(v):{fmt}} ± {np.std(v):.2f} (n={len(v)})" if v else "n/a"


def weighted_diffs(sw: dict, packed: bool = False, ref: str = "uniform") -> dict:
    """Per codec family and width b, per seed (points): its accuracy minus the ``ref`` family's
    (uniform, 2-4 bits; "uch": per-channel ranges, 2-3 bits) interpolated at its bytes per step
    (log-bytes, same seed; nan outside ``ref``'s widths): entropy-coded bytes, or with ``packed``
    the codes' packed bytes (weighted SGQ has none)."""
    runs, out = sw["runs"], {}

    def size(r):
        return r["packed_bytes"] if packed else r["forward_bytes"] + r["backward_bytes"]

    fams = ("sgq", "uch") if packed else ("sgqw", "sgq", "uch")
    for fam in [f for f in fams if f != ref]:
        for b in (2, 3):
            d = []
            for s in map(str, sw["seeds"]):
                uni = [
                    (size(runs[f"{ref} {u}"][s]), runs[f"{ref} {u}"][s]["accuracy"])
                    for u in (2, 3, 4)
                    if s in runs.get(f"{ref} {u}", {})
                ]
                r = runs.get(f"{fam} {b}", {}).get(s)
                if r is None or len(uni) < 2:
                    continue
                d.append(100 * (r["accuracy"] - sp.matched(uni, size(r))))
            if d:
                out[f"{fam} {b}"] = d
    return out


def fold(task: str) -> None:
    """Copy the uniform and SGQ runs of the weighted sweep (which adds seeds) into the main sweep
    ("sweep" of bench/split.py: its table and paired differences then cover every seed)."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "nnshare-bench-split.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = json.loads(OUT.read_text())
        sw, main_sw = res["sweep_weighted"][task], res["sweep"][task]
        seeds = sorted(sw["seeds"])
        names = [f"{k} {b}" for k, b in sp.SWEEP_ORDER]
        if all(str(q) in sw["runs"].get(n, {}) for n in names for q in seeds):
            main_sw["seeds"] = seeds
            main_sw["runs"] = {n: [sw["runs"][n][str(q)] for q in seeds] for n in names}
            main_sw["diff_points"] = sp.sweep_diffs(main_sw["runs"], seeds)
            OUT.write_text(json.dumps(res, indent=1))


def _verdict(st: dict) -> str:
    """The reading of the claim (the numbers from ``st``: per task the diffs and the KL summary)."""
    if not {"digits", "synthetic"} <= set(st):
        return ""
    d, y = st["digits"], st["synthetic"]
    w3 = d["ec"].get("sgqw 3", [])
    kl = "weighted SGQ per channel x 2 rows, {}-bit"

    def klr(t, b):
        return f"{np.nanmean(st[t]['kl'][kl.format(b)]['kl_ratio']):.2f}" if st[t]["kl"] else "n/a"

    gain, n_el, blocks = 0.5 * math.log2(y["am"]), 64 * 16 * 8 * 8, 16 * 4  # synthetic cut, 16 x 2 rows
    ub = [y["kl"][f"uniform, {b}-bit"]["bytes"] for b in (3, 2)] if y["kl"] else [math.nan] * 2
    save = [100 * gain * n_el / 8 / u for u in ub]
    side = [100 * (blocks * 5 + 16) / u for u in ub]  # fp32 scale + zero point per block, the order
    return (
        "Reading. Against one-range uniform (the claim's baseline): met on digits, with fixed-width "
        f"codes at 2 bits (SGQ {mean_std(d['pk'].get('sgq 2', []))}) and with an entropy coder at 3 "
        f"bits by task-weighted SGQ (`SGQ(weighted=True)`: {mean_std(w3)}, {sum(x > 0 for x in w3)} of "
        f"{len(w3)} seeds positive; the server's output KL at equal bytes {klr('digits', 3)}x / "
        f"{klr('digits', 4)}x uniform's at 3 / 4 bits); within the seed spread at the other digits "
        "points and everywhere on the synthetic task, whose sensitivity is nearly even (AM/GM "
        f"{y['am']:.2f}: at equal rate weighted steps lower the weighted error by at most that factor, "
        f"i.e. save at most {gain:.2f} bits per element, {save[0]:.0f}-{save[1]:.0f} % of uniform's "
        f"bytes at 2-3 bits, about what the per-block scales cost ({side[0]:.0f}-{side[1]:.0f} %); KL "
        f"{klr('synthetic', 3)}x / {klr('synthetic', 4)}x). Range SGQ with an entropy coder is within "
        "the spread on both tasks (its per-block ranges do not lower the MSE at a given rate: RD "
        "table). Against the strongest baseline at equal bytes, per-channel ranges (one range per "
        "channel, packed bytes within 1 % of SGQ's): missed, no SGQ form beats it on either task "
        "(the per-task numbers above). The claim holds against one-range uniform on digits only."
    )


def claim_text(res: dict) -> str:
    """The sentence stating the claim "SGQ beats uniform at equal bytes", from the results."""
    sw, swm, ev = res.get("sweep", {}), res.get("sweep_weighted", {}), res.get("task_eval", {})
    if not (sw and swm and ev):
        return ""
    parts, st = [], {}
    for task in sw:
        if task not in swm:
            continue
        n = len(swm[task]["seeds"])
        pk, ec = weighted_diffs(swm[task], packed=True), weighted_diffs(swm[task])

        def fam(d, f):
            return ", ".join(f"{k.split()[1]} bits {mean_std(v)}" for k, v in d.items() if k.split()[0] == f)

        kl = ""
        if task in ev:
            summ = eval_summary(ev[task]["per_seed"])
            name = "weighted SGQ per channel x 2 rows"
            kl = ", ".join(
                f"{b} bits {mean_std(summ[f'{name}, {b}-bit']['kl_ratio'], '.2f')}" for b in (2, 3, 4)
            )
            am = np.mean([p["bound"]["empirical"]["16x2"] for p in ev[task]["per_seed"]])
            kl = f"; task-metric KL / uniform's at equal bytes {kl}, sensitivity spread AM/GM {am:.2f}"
        runs = swm[task]["runs"]
        vs_ch = ", ".join(
            f"{b} bits {mean_std([100 * (runs[f'sgq {b}'][q]['accuracy'] - runs[f'uch {b}'][q]['accuracy']) for q in runs[f'sgq {b}'] if q in runs.get(f'uch {b}', {})])}"  # noqa: E501
            for b in (2, 3)
            if f"uch {b}" in runs
        )
        w_ch = fam(weighted_diffs(swm[task], ref="uch"), "sgqw")
        st[task] = {
            "pk": pk,
            "ec": ec,
            "kl": summ if task in ev else {},
            "am": am if task in ev else math.nan,
        }
        parts.append(
            f"{task} (n={n}): at equal packed bytes SGQ {fam(pk, 'sgq')}, per-channel ranges "
            f"{fam(pk, 'uch')} (SGQ minus per-channel ranges at the same width, packed bytes within 1 %: "
            f"{vs_ch}); at equal entropy-coded bytes SGQ {fam(ec, 'sgq')}, per-channel ranges "
            f"{fam(ec, 'uch')}, task-weighted SGQ {fam(ec, 'sgqw')} (against per-channel ranges at equal "
            f"bytes: {w_ch or 'n/a'}){kl}"
        )
    return (
        "Claim, SGQ beating uniform at equal bytes: accuracy minus uniform's (one range, same entropy "
        "coder or the same packing; interpolated at equal bytes per step), points, mean ± std over "
        "paired seeds: " + "; ".join(parts) + ". " + _verdict(st)
    )


def task_lines(res: dict) -> list[str]:
    """Doc section: the task-metric evaluation and the weighted-SGQ training sweep."""
    out = []
    ev = res.get("task_eval", {})
    if ev:
        out += [
            "### SGQ at equal entropy-coded bytes, measured on the task (KL of the server's output)",
            "",
            "`python bench/split_task.py --eval`: per seed an fp32 split net is trained, then the cut "
            "activations of an evaluation set (digits: all 1797 images; synthetic: 3000 fresh samples; "
            "batches of 64) are coded and the server's output is compared with its fp32 output: KL(fp32 || "
            "coded), a task metric with no label or training noise. KL / uniform = the codec's KL over "
            "uniform's at the codec's bytes per batch (log-log interpolation between uniform's widths; "
            "< 1: the task loses less than with uniform at equal bytes; nan outside uniform's 1-5 bits "
            "is dropped). Weighted SGQ (`SGQ(weighted=True)`): steps s0 (w_k / GM(w))^(-1/2) per block "
            "from the sensitivity w per channel and row (empirical: the mean squared training-loss "
            "gradient at the cut, what the boundary keeps; Fisher: labels sampled from the model, the "
            "curvature of this KL). Sensitivity spread AM(w) / GM(w) over the blocks (mean over "
            "seeds): the high-rate model's gain of weighted steps over one step at equal rate (the "
            "weighted squared error, the KL's quadratic model, falls by this factor; 1 = even "
            "sensitivity, nothing to gain).",
            "",
        ]
        for task, e in ev.items():
            bd = {
                k: (
                    np.mean([p["bound"][k]["4x2"] for p in e["per_seed"]]),
                    np.mean([p["bound"][k]["16x2"] for p in e["per_seed"]]),
                )
                for k in ("empirical", "fisher")
            }
            out += [
                f"#### {task} ({e['epochs']} epochs, seeds {e['seeds']}; {e['cpu_seconds']:.0f} s CPU)",
                "",
                f"Sensitivity spread AM/GM: empirical {bd['empirical'][0]:.2f} (4 groups x 2 rows), "
                f"{bd['empirical'][1]:.2f} "
                f"(per channel x 2 rows); Fisher {bd['fisher'][0]:.2f}, {bd['fisher'][1]:.2f}.",
                "",
                "| codec | B/batch | KL | KL / uniform at equal bytes | bytes saved vs uniform at equal KL "
                "| accuracy vs uniform at equal bytes (points) |",
                "|---|---|---|---|---|---|",
            ]
            for k, r in eval_summary(e["per_seed"]).items():  # recomputed: the metrics may grow
                if k.startswith("uniform") or k.endswith("1-bit") or k.endswith("5-bit"):
                    continue
                out.append(
                    f"| {k} | {r['bytes']:.0f} | {r['kl']:.4f} | {mean_std(r['kl_ratio'], '.2f')} | "
                    f"{mean_std([100 * v for v in r['byte_saving']], '+.1f')} % | "
                    f"{mean_std(r['dacc_points'])} |"
                )
            out.append("")
    sw = res.get("sweep_weighted", {})
    if sw:
        out += [
            "### Weighted SGQ trained through the cut (paired seeds)",
            "",
            "`python bench/split_task.py --sweep`: forward weighted SGQ (per channel x 2 rows, the "
            "boundary's running sensitivity), backward uniform's symmetric grid; SGQ (4 groups x 2 rows, "
            "ranges) and per-channel ranges (one block per channel, the whole height; the usual stronger "
            "fixed-width baseline), each with its own symmetric grid backward; against the sweep's "
            "uniform (one range, 2-4 bits, interpolated in log-bytes at the codec's bytes per step) on "
            "the same seeds. Packed: the same runs at their packed size (codes at their width); weighted "
            "SGQ's width is data-dependent, so it has no packed column. Mean ± std over seeds, points.",
            "",
            "| task | codec | B/step (entropy-coded) | packed B/step | accuracy | vs uniform at equal "
            "entropy-coded bytes | vs uniform at equal packed bytes |",
            "|---|---|---|---|---|---|---|",
        ]
        label = {"sgqw": "weighted SGQ", "sgq": "SGQ", "uch": "per-channel ranges"}
        for task, s in sw.items():
            packed = weighted_diffs(s, packed=True)
            for name, d in weighted_diffs(s).items():
                rs = list(s["runs"][name].values())
                pk = "n/a" if rs[0]["packed_bytes"] is None else f"{rs[0]['packed_bytes']}"
                out.append(
                    f"| {task} | {label[name.split()[0]]} {name.split()[1]}-bit | "
                    f"{np.mean([r['forward_bytes'] + r['backward_bytes'] for r in rs]):.0f} | {pk} | "
                    f"{np.mean([r['accuracy'] for r in rs]):.4f} | {mean_std(d)} | "
                    f"{mean_std(packed[name]) if name in packed else 'n/a'} |"
                )
        out.append("")
    return out


if __name__ == "__main__":
    main()

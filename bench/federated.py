"""Federated averaging on digits with every update codec: accuracy against cumulative uplink bytes.

    python bench/federated.py [--quick]

10 clients (IID, Dirichlet alpha = 1 and 0.1), full participation and a partial one with
dropouts; FedAvg with each codec from :mod:`nnshare.collab.codecs` (and error feedback where it
is needed), all bytes real nnshare streams. The figure of merit: cumulative uplink bytes until
the test accuracy first reaches fp32 FedAvg's final accuracy minus 0.5 points.
Writes bench/results/federated.json, docs/benchmarks/federated.md and docs/img/federated.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nnshare.collab.codecs import codec  # noqa: E402
from nnshare.collab.feedback import ErrorFeedback  # noqa: E402
from nnshare.collab.simulator import digits, fedavg  # noqa: E402

torch.set_num_threads(1)

def _unbiased(step_rms: float):
    """nnshare's unbiased entropy-coded quantization at one global step (x the update's RMS)."""
    return codec("tcq", unbiased=True, bits_per_param=None, step_rms=step_rms)


CODECS = [
    ("fp32", lambda: codec("fp32")),
    ("QSGD s=1", lambda: codec("qsgd", levels=1)),
    ("QSGD s=2", lambda: codec("qsgd", levels=2)),
    ("QSGD s=7 (4 bit)", lambda: codec("qsgd", levels=7)),
    ("TernGrad", lambda: codec("terngrad")),
    ("scaled sign + EF", lambda: ErrorFeedback(codec("sign"))),
    ("top-1% + EF", lambda: ErrorFeedback(codec("topk", fraction=0.01))),
    ("rand-10% + EF (biased)", lambda: ErrorFeedback(codec("randk", fraction=0.1, unbiased=False))),
    ("PowerSGD r=2 + EF", lambda: ErrorFeedback(codec("powersgd", rank=2))),
    ("EDEN 1 bit (unbiased)", lambda: codec("rotated", bits=1, nu=0, unbiased=True)),
    ("nnshare rotated TCQ 1 bit + EF", lambda: ErrorFeedback(codec("rotated", bits=1, nu=6))),
    ("nnshare TCQ 0.5 b/p + EF", lambda: ErrorFeedback(codec("tcq", bits_per_param=0.5))),
    ("nnshare TCQ 0.25 b/p + EF", lambda: ErrorFeedback(codec("tcq", bits_per_param=0.25))),
    ("nnshare unbiased, step 60 RMS", lambda: _unbiased(60)),
    ("nnshare unbiased, step 90 RMS", lambda: _unbiased(90)),
    ("nnshare unbiased, step 130 RMS", lambda: _unbiased(130)),
]
SETTINGS = [
    ("IID", {"alpha": None}),
    ("Dirichlet 0.1", {"alpha": 0.1}),
    ("Dirichlet 1", {"alpha": 1.0}),
    ("IID, 50% + 10% dropout", {"alpha": None, "participation": 0.5, "dropout": 0.1}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--settings", type=int, default=len(SETTINGS), help="how many of the settings to run")
    ap.add_argument("--only", default=None, help="comma-separated setting indices (0-based) to run; "
                    "results of the others already in the JSON are kept")
    ap.add_argument("--docs-only", action="store_true", help="rewrite the docs from the JSON")
    ap.add_argument("--codecs", default=None, help="semicolon-separated row names to (re)run into the "
                    "settings already in the JSON (with --only)")
    a = ap.parse_args()
    if a.docs_only:
        write_docs(json.loads((ROOT / "bench" / "results" / "federated.json").read_text()))
        return
    rounds = 15 if a.quick else a.rounds
    seeds = [0] if a.quick else list(range(a.seeds))
    data = digits()
    res = {"rounds": rounds, "seeds": seeds, "clients": 10, "settings": {}}
    todo = SETTINGS[:1] if a.quick else SETTINGS[: a.settings]
    if a.only is not None:
        todo = [SETTINGS[int(i)] for i in a.only.split(",")]
    path = ROOT / "bench" / "results" / "federated.json"
    for sname, opts in todo:
        rows, note = {}, None
        chosen = CODECS
        if a.codecs is not None:  # add rows to a setting of the JSON (same rounds and seeds)
            old = json.loads(path.read_text())
            if (old.get("rounds"), old.get("seeds")) != (rounds, seeds) or sname not in old["settings"]:
                raise SystemExit(f"--codecs needs {sname!r} in the JSON with the same rounds and seeds")
            rows = old["settings"][sname]["codecs"]
            names = a.codecs.split(";")
            chosen = [(c, m) for c, m in CODECS if c in names]
            note = (f"Rows {', '.join(c for c, _ in chosen)} were added by a later run (format v2 headers, "
                    "9 bytes per stream more than the earlier rows of this setting spent: if anything "
                    "a handicap for them).")
        for cname, make in chosen:
            runs = []
            t = time.perf_counter()
            for s in seeds:
                r = fedavg(data, make(), clients=10, rounds=rounds, seed=s, **opts)
                runs.append({"accuracy": r.accuracy, "uplink": r.uplink, "rejected": r.rejected})
            rows[cname] = {"runs": runs, "seconds": time.perf_counter() - t}
            acc = np.mean([r["accuracy"][-5:] for r in runs])
            up = np.mean([sum(r["uplink"]) for r in runs])
            print(f"{sname:24s} {cname:32s} last5 {acc:.4f} uplink {up / 1e3:9.1f} kB", flush=True)
        fp = np.mean([np.mean(r["accuracy"][-5:]) for r in rows["fp32"]["runs"]])
        target = fp - 0.005
        for row in rows.values():
            per_seed = []
            for r in row["runs"]:
                total, hit = 0, None
                for acc, b in zip(r["accuracy"], r["uplink"], strict=True):
                    total += b
                    if acc >= target:
                        hit = total
                        break
                per_seed.append(hit)
            row["bytes_to_target"] = None if any(h is None for h in per_seed) else float(np.mean(per_seed))
            row["final"] = float(np.mean([np.mean(r["accuracy"][-5:]) for r in row["runs"]]))
        base = rows["fp32"]["bytes_to_target"]
        for row in rows.values():
            b = row["bytes_to_target"]
            row["reduction"] = None if (b is None or base is None) else base / b
        order = [c for c, _ in CODECS if c in rows] + [c for c in rows if c not in dict(CODECS)]
        res["settings"][sname] = {"fp32_final": fp, "target": target, "codecs": {c: rows[c] for c in order}}
        if note:
            res["settings"][sname]["note"] = note
        (ROOT / "bench" / "results").mkdir(exist_ok=True)  # written after every setting
        if a.only is not None and path.exists():  # merge into the settings run by others
            old = json.loads(path.read_text())
            if (old.get("rounds"), old.get("seeds")) == (rounds, seeds):
                old["settings"][sname] = res["settings"][sname]
                order = [n for n, _ in SETTINGS if n in old["settings"]]
                res = {**old, "settings": {n: old["settings"][n] for n in order}}
        path.write_text(json.dumps(res, indent=1))
        write_docs(res)


def write_docs(res) -> None:
    lines = ["## Federated averaging: uplink bytes to fp32 accuracy (issue 15)", "",
             f"`python bench/federated.py` — digits (1,437 train / 360 test), MLP 64-128-10 (9,610 "
             f"parameters), 10 clients, {res['rounds']} rounds, 1 local epoch, seeds {res['seeds']}; "
             "every byte a real nnshare stream (agreed mode, broadcast fingerprint in the header). "
             "Bytes to target = cumulative uplink until the test accuracy first reaches fp32 FedAvg's "
             "final accuracy (mean of the last 5 rounds) minus 0.5 points; x = fp32's bytes / the codec's. "
             "Every codec gets the same data, seeds, rounds and target. \"nnshare unbiased, step k RMS\" = "
             "`codec(\"tcq\", unbiased=True, bits_per_param=None, step_rms=k)`: stochastic rounding of the "
             "whole update to one global step (k x its RMS), entropy-coded, no error feedback; QSGD is "
             "the same idea with a step per tensor (its L2 norm / s).",
             ""]
    for sname, s in res["settings"].items():
        missing = [c for c, _ in CODECS if c not in s["codecs"]]
        note = ([f"Not rerun since the codec list grew (an earlier run of this setting): no rows for "
                 f"{', '.join(missing)}.", ""] if missing else [])
        best = min(((row["bytes_to_target"], c) for c, row in s["codecs"].items()
                    if row["bytes_to_target"] is not None and c != "fp32"), default=None)
        if best is not None:
            note += [f"Fewest bytes to the target: **{best[1]}**, {best[0] / 1e3:.1f} kB.", ""]
        if s.get("note"):
            note += [s["note"], ""]
        lines += [f"### {sname} (fp32 final {s['fp32_final']:.4f}, target {s['target']:.4f})", "", *note,
                  "| codec | final accuracy | uplink kB (all rounds) | kB to target | x fewer than fp32 |",
                  "|---|---|---|---|---|"]
        for cname, row in s["codecs"].items():
            up = np.mean([sum(r["uplink"]) for r in row["runs"]]) / 1e3
            bt = "not reached" if row["bytes_to_target"] is None else f"{row['bytes_to_target'] / 1e3:.1f}"
            red = "—" if row["reduction"] is None else f"{row['reduction']:.1f}x"
            lines.append(f"| {cname} | {row['final']:.4f} | {up:.1f} | {bt} | {red} |")
        lines.append("")
    lines += ["![accuracy against uplink bytes](../img/federated.png)", ""]
    (ROOT / "docs" / "benchmarks").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "federated.md").write_text("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = list(res["settings"])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, sname in zip(axes[0], names, strict=True):
        for cname, row in res["settings"][sname]["codecs"].items():
            r = row["runs"][0]
            ax.plot(np.cumsum(r["uplink"]) / 1e3, r["accuracy"], label=cname)
        ax.set_xscale("log")
        ax.set_xlabel("cumulative uplink kB")
        ax.set_ylabel("test accuracy")
        ax.set_title(sname)
        ax.axhline(res["settings"][sname]["target"], color="k", lw=0.5, ls="--")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    (ROOT / "docs" / "img").mkdir(exist_ok=True)
    fig.savefig(ROOT / "docs" / "img" / "federated.png", dpi=110)


if __name__ == "__main__":
    main()

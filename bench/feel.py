"""FEEL planner: training time to a target accuracy, predicted vs measured on the FL simulator.

    python bench/feel.py [--quick]

10 devices train the digits MLP by FedAvg (:func:`nnshare.collab.simulator.fedavg`) and upload
updates quantized by nnshare's unbiased codec (stochastic rounding to one step = level x the
update's RMS: a coarser level sends fewer bits with more variance) over orthogonal channels
sharing 40 kHz (Shannon rate; power 10 mW, path loss 128.1 + 37.6 log10(d / km) dB at 0.2-1 km,
-174 dBm/Hz noise), compute 0.02-0.08 s per round. Upload bits per level are the exact stream
lengths of a pilot update; the quantization error per level is measured on it. The planner's
convergence model is rounds-to-target against the aggregate quantization error Q, fitted on the
runs at three pilot levels (10, 100, 1000); the gap-curve model fitted on their first 15 rounds
is shown beside it. Then, for 5 levels x 2 bandwidth allocations (equal split, optimized split),
the predicted time (model rounds x round latency) against the measured one (rounds until the
seed-mean accuracy curve crosses the target, interpolated between rounds, x round latency), and
the planner's joint per-device choice, run and measured too.
Writes bench/results/feel.json and docs/benchmarks/feel.md.
"""

from __future__ import annotations

import argparse
import json
import math
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
from nnshare.collab.feel import (  # noqa: E402
    ConvergenceModel,
    Device,
    Problem,
    RoundsModel,
    System,
    allocate,
    plan,
)
from nnshare.collab.feel import round_latency as latency  # noqa: E402
from nnshare.collab.simulator import _mlp, digits, fedavg  # noqa: E402

torch.set_num_threads(1)
LEVELS = (10, 30, 100, 300, 1000)  # step of the unbiased codec in multiples of the update RMS
PILOT_LEVELS = (10, 100, 1000)
K = 10


def level_codec(step: int):
    return codec("tcq", unbiased=True, step_rms=float(step), bits_per_param=None)


def system(seed: int = 0) -> System:
    rng = np.random.default_rng(seed)
    dist_km = rng.uniform(0.2, 1.0, K)
    gains = 10 ** (-(128.1 + 37.6 * np.log10(dist_km)) / 10)
    comp = rng.uniform(0.02, 0.08, K)
    return System(tuple(Device(float(c), 0.01, float(g)) for c, g in zip(comp, gains, strict=True)),
                  bandwidth_hz=4e4)


def pilot_update(data) -> dict[str, np.ndarray]:
    """One client's local epoch from the initial model: the update the levels are sized on."""
    x, y = torch.from_numpy(data[0][:144]), torch.from_numpy(data[1][:144])
    model = _mlp(x.shape[1], 128, 10, 0)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for b in torch.arange(len(y)).split(32):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[b]), y[b]).backward()
        opt.step()
    return {k: (v - start[k]).numpy() for k, v in model.state_dict().items()}


def level_table(update) -> tuple[dict[int, int], dict[int, float]]:
    """Exact upload bits and measured relative quantization error E||C(x)-x||^2/||x||^2."""
    bits, qerr = {}, {}
    flat = np.concatenate([a.reshape(-1) for a in update.values()])
    for s in LEVELS:
        c = level_codec(s)
        sizes, errs = [], []
        for seed in range(8):
            dec, n = c.roundtrip(update, seed)
            sizes.append(8 * n)
            errs.append(float(np.sum((np.concatenate([dec[k].reshape(-1) for k in sorted(dec)])
                                      - np.concatenate([update[k].reshape(-1) for k in sorted(update)])) ** 2)
                              / np.sum(flat**2)))
        bits[s], qerr[s] = int(np.mean(sizes)), float(np.mean(errs))
    return bits, qerr


def rounds_to(acc: list[float], target: float) -> float:
    """Rounds until ``acc`` (after round 1, 2, ...) first reaches ``target``, interpolated
    linearly between the two rounds around the crossing (inf if it never does)."""
    for i, a in enumerate(acc, start=1):
        if a >= target:
            if i == 1:
                return 1.0
            prev = acc[i - 2]
            return float(i - 1 + (target - prev) / (a - prev))
    return math.inf


def run(data, codecs, rounds, seeds) -> list[float]:
    """Test accuracy per round averaged over ``seeds``."""
    accs = [fedavg(data, codecs, clients=K, rounds=rounds, seed=s).accuracy for s in seeds]
    return list(np.mean(accs, axis=0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=32)
    ap.add_argument("--pilot-rounds", type=int, default=15, help="rounds the comparison curve model sees")
    ap.add_argument("--target", type=float, default=0.88)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--docs", action="store_true", help="only rewrite the docs from the results file")
    ap.add_argument("--reuse", action="store_true",
                    help="take the per-level accuracy curves from the results file (same seeds and rounds); "
                         "refit, re-plan, and run only a planner choice not measured yet")
    args = ap.parse_args()
    out = ROOT / "bench" / "results" / "feel.json"
    if args.docs:
        write_docs(json.loads(out.read_text()))
        return
    rounds, pilot_rounds = (12, 6) if args.quick else (args.rounds, args.pilot_rounds)
    seeds = [0] if args.quick else list(range(args.seeds))
    t0 = time.time()
    old = json.loads(out.read_text()) if args.reuse else None
    settings = [seeds, rounds, pilot_rounds]
    if old is not None and [old[k] for k in ("seeds", "rounds", "pilot_rounds")] != settings:
        raise SystemExit("--reuse: the results file was run with other seeds or rounds")
    data = digits()
    sys_ = system()
    bits, qerr = level_table(pilot_update(data))
    print("bits", bits, "qerr", {s: round(q, 3) for s, q in qerr.items()}, flush=True)

    def q_of(levels):
        return sum(qerr[s] for s in levels) / len(levels) ** 2

    target_gap = 1 - args.target
    curves = {}  # seed-mean accuracy per round of every common level (the pilots are among them)
    for s in LEVELS:
        curves[s] = (old["configs"][f"s={s}, equal"]["curve"] if old
                     else run(data, level_codec(s), rounds, seeds))
        print(f"level {s}: rounds to target {rounds_to(curves[s], args.target):.1f}", flush=True)
    # the planner's model: rounds to the target against Q, fitted on the pilot levels' runs
    model = RoundsModel.fit({q_of([s] * K): rounds_to(curves[s], args.target) for s in PILOT_LEVELS},
                            target_gap)
    # for comparison: the gap-curve model fitted on the first pilot_rounds rounds of the same runs
    curve_model = ConvergenceModel.fit({q_of([s] * K): [1 - a for a in curves[s][:pilot_rounds]]
                                        for s in PILOT_LEVELS}, skip=1)
    print("model", model, "curve model", curve_model, flush=True)
    problem = Problem(sys_, LEVELS, bits.__getitem__, qerr.__getitem__, model, target_gap=target_gap)

    measured = {}
    for s in LEVELS:
        acc = curves[s]
        n_meas = rounds_to(acc, args.target)
        n_pred = model.rounds(target_gap, q_of([s] * K))
        b = [bits[s]] * K
        for alloc_name in ("equal", "optimized"):
            if alloc_name == "equal":
                bw = (sys_.bandwidth_hz / K,) * K
                t_round = latency(sys_, b, bw)
            else:
                t_round, bw = allocate(sys_, b)
            measured[f"s={s}, {alloc_name}"] = {
                "levels": [s] * K, "allocation": alloc_name, "round_s": t_round, "pilot": s in PILOT_LEVELS,
                "rounds_measured": n_meas, "rounds_predicted": n_pred,
                "rounds_predicted_curve_model": curve_model.rounds(target_gap, q_of([s] * K)),
                "time_measured_s": n_meas * t_round, "time_predicted_s": n_pred * t_round,
                "final_accuracy": acc[-1], "curve": acc,
            }
            r = measured[f"s={s}, {alloc_name}"]
            print(f"s={s:2d} {alloc_name:9s} round {t_round:.3f} s  rounds meas {n_meas:.1f} "
                  f"pred {n_pred:.1f}  "
                  f"time meas {r['time_measured_s']:.2f} pred {r['time_predicted_s']:.2f}", flush=True)

    p = plan(problem)
    if len(set(p.levels)) == 1:  # a common level: measured above (the same runs)
        acc = measured[f"s={p.levels[0]}, equal"]["curve"]
    elif old is not None and tuple(old["planner"]["levels"]) == p.levels:
        acc = old["planner"]["curve"]
    else:
        acc = run(data, [level_codec(s) for s in p.levels], rounds, seeds)
    n_meas = rounds_to(acc, args.target)
    chosen = {"levels": list(p.levels), "bandwidth_hz": list(p.bandwidth), "round_s": p.round_s,
              "rounds_predicted": p.rounds, "time_predicted_s": p.time_s, "rounds_measured": n_meas,
              "rounds_predicted_curve_model": curve_model.rounds(target_gap, problem.q(p.levels)),
              "time_measured_s": n_meas * p.round_s, "final_accuracy": acc[-1], "curve": acc}
    best_name = min(measured, key=lambda k: measured[k]["time_measured_s"])
    best = measured[best_name]["time_measured_s"]
    chosen["vs_best_measured"] = chosen["time_measured_s"] / best
    print("planner", chosen, "best measured", best_name, best, flush=True)
    res = {"target_accuracy": args.target, "rounds": rounds, "pilot_rounds": pilot_rounds, "seeds": seeds,
           "devices": [d.__dict__ for d in sys_.devices], "bandwidth_hz": sys_.bandwidth_hz,
           "bits": bits, "qerr": qerr, "model": model.__dict__, "curve_model": curve_model.__dict__,
           "configs": measured,
           "planner": chosen,
           "best_measured": best_name, "seconds": time.time() - t0 + (old["seconds"] if old else 0.0)}
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    if not args.quick:
        write_docs(res)


def write_docs(res) -> None:
    cm = res["curve_model"]
    lines = [
        "## FEEL planner: training time to target, predicted vs measured (issue 16)", "",
        f"`python bench/feel.py` — digits MLP (9,610 parameters), FedAvg over {K} devices (IID); each "
        "device uploads its update through nnshare's unbiased codec (stochastic rounding to one step = "
        "level x the update's RMS: a coarser level, fewer bits, more variance); "
        f"{res['bandwidth_hz'] / 1e3:.0f} kHz shared by orthogonal channels (Shannon rate, 10 mW, "
        "0.2-1 km path loss), compute 0.02-0.08 s per round; target test accuracy "
        f"{res['target_accuracy']}, {res['rounds']} rounds, accuracy curves averaged over seeds "
        f"{res['seeds']}. The planner's convergence model: rounds to the target N(Q) = "
        f"{res['model']['n0']:.2f} + {res['model']['g']:.4f} Q, Q = sum_k qerr(s_k) / K^2, fitted on the "
        f"runs at the pilot levels {list(PILOT_LEVELS)} (so those rows are in-sample; levels 30 and 300 "
        "and the planner's choice are predictions). Beside it the gap-curve model fitted on the first "
        f"{res['pilot_rounds']} rounds of the same pilot runs: error(n, Q) = {cm['b']:.4f} + "
        f"{cm['d']:.5f} Q + ({cm['a']:.3f} + {cm['c']:.4f} Q) / n^{cm['p']:.2f}. Measured time = rounds "
        "until the seed-mean accuracy curve crosses the target (interpolated between rounds) x round "
        "latency from the latency model (upload bits = exact stream lengths).", "",
        "| level (step / RMS) | bits / upload | qerr |", "|---|---|---|"]
    for s in LEVELS:
        lines.append(f"| {s} | {res['bits'][str(s)] if str(s) in res['bits'] else res['bits'][s]} | "
                     f"{(res['qerr'].get(str(s)) or res['qerr'].get(s)):.3f} |")
    lines += ["", "| configuration | round latency (s) | rounds predicted | rounds measured | "
              "time predicted (s) | time measured (s) | rounds, curve model on 15-round pilots |",
              "|---|---|---|---|---|---|---|"]
    for name, r in res["configs"].items():
        lines.append(f"| {name}{' (pilot)' if r['pilot'] else ''} | {r['round_s']:.3f} | "
                     f"{r['rounds_predicted']:.1f} | {r['rounds_measured']:.1f} | "
                     f"{r['time_predicted_s']:.2f} | {r['time_measured_s']:.2f} | "
                     f"{r['rounds_predicted_curve_model']:.1f} |")
    p, cfg = res["planner"], list(res["configs"].values())
    lines.append(f"| planner: levels {p['levels']}, optimized bandwidth | {p['round_s']:.3f} | "
                 f"{p['rounds_predicted']:.1f} | {p['rounds_measured']:.1f} | {p['time_predicted_s']:.2f} | "
                 f"{p['time_measured_s']:.2f} | {p['rounds_predicted_curve_model']:.1f} |")
    out_of_sample = [r for r in cfg if not r["pilot"]] + [p]
    errs = [abs(r["rounds_predicted"] / r["rounds_measured"] - 1) for r in out_of_sample
            if math.isfinite(r["rounds_measured"]) and math.isfinite(r["rounds_predicted"])]
    cerrs = [abs(r["rounds_predicted_curve_model"] / r["rounds_measured"] - 1) for r in cfg + [p]
             if math.isfinite(r["rounds_measured"]) and math.isfinite(r["rounds_predicted_curve_model"])]
    pred_best = min(res["configs"], key=lambda k: res["configs"][k]["time_predicted_s"])
    lines += ["", f"Best measured configuration: {res['best_measured']}; best predicted: {pred_best}. The "
              f"planner's choice measured {p['vs_best_measured']:.3f}x the best measured time "
              f"(target: within 1.10x).", "",
              f"Predicted against measured rounds to target, out of sample (levels 30, 300, the planner's "
              f"choice): {max(errs):.0%} largest, {float(np.mean(errs)):.0%} mean relative error; the "
              f"gap-curve model fitted on 15-round pilots: {max(cerrs):.0%} largest (it extrapolates the "
              "early lag of the coarse levels, which the runs make up later).", "",
              "Reading: coarser levels cut the round latency (fewer upload bits) while the rounds to the "
              "target stay near 21 up to level 300 and grow at 1000 (a step of 3000 x RMS did not train "
              "at all in a 2-seed probe: accuracy ~0.3 after 50 rounds), so the optimum sits at the coarse "
              "end just before that cliff. Between levels 10 and 300 the measured rounds move by about +-1 "
              "(19.8-21.7) without a trend: that is seed noise of 3-seed means, about 5 %, so a choice "
              "between levels 100 and 300 measures anywhere from 1.0x to 1.18x of the best. The same runs "
              "planned with the gap-curve model fitted on 15-round pilots chose level 100 (1.18x): the "
              "early lag of coarse levels made it overestimate their rounds. QSGD's levels 1-16 (the "
              "previous version of this benchmark) did not change the rounds to the target at all on this "
              "task, so there was no trade-off to plan.", "",
              "![predicted and measured training time](../img/feel.png)", ""]
    (ROOT / "docs" / "benchmarks").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "feel.md").write_text("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for alloc, mk in (("equal", "o"), ("optimized", "s")):
        rs = [r for r in cfg if r["allocation"] == alloc]
        xs = [r["levels"][0] for r in rs]
        axes[0].plot(xs, [r["time_measured_s"] for r in rs], mk + "-", label=f"{alloc}, measured")
        axes[0].plot(xs, [r["time_predicted_s"] for r in rs], mk + "--", label=f"{alloc}, predicted")
    axes[0].axhline(p["time_measured_s"], color="k", lw=0.8, label="planner, measured")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("level (step / RMS of the update)")
    axes[0].set_ylabel("training time to target (s)")
    axes[0].legend(fontsize=7)
    for r in [x for x in cfg if x["allocation"] == "equal"] + [p]:
        lab = f"level {r['levels'][0]}" if "allocation" in r else "planner"
        axes[1].plot(range(1, len(r["curve"]) + 1), r["curve"], label=lab)
    axes[1].axhline(res["target_accuracy"], color="k", lw=0.8, ls=":")
    axes[1].set_xlabel("round")
    axes[1].set_ylabel("test accuracy (seed mean)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    (ROOT / "docs" / "img").mkdir(exist_ok=True)
    fig.savefig(ROOT / "docs" / "img" / "feel.png", dpi=110)


if __name__ == "__main__":
    main()

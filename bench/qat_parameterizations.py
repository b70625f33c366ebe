"""Seed 002's question on our own data: how do the range parameterizations of QAT behave against
bit width and learning rate?

For scale/offset, min/max, beta/gamma (no sigmoid) and LSQ, at 2, 3, 4 and 8 bits (asymmetric,
per output channel; LSQ is LSQ+ in the asymmetric case: learnable step and offset), over a grid
of range learning rates (the weights keep Adam at a fixed, good learning rate), with Adam or SGD
(momentum 0.9) on the range parameters, over several seeds (seed = float model init + data order):

- digits: MLP 64-32-10 on sklearn's 8x8 digits, test cross-entropy (nats);
- csi: the 802.11 CSI autoencoder (nnshare.wlan), encoder QAT with the AP's decoder frozen,
  test loss 1 - SGCS with the 4-bit latent.

A run is *unstable* when its loss becomes non-finite or its final test loss ends above 1.25x
its loss before QAT (training made the quantized model clearly worse than not training).

Writes bench/results/qat_parameterizations.json, docs/benchmarks/qat_parameterizations.md
(tables) and docs/img/qat_parameterizations_{adam,sgd}.png. ``--quick`` runs a tiny grid.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from nnshare.plan import uniform  # noqa: E402
from nnshare.qat import prepare  # noqa: E402
from nnshare.qat.train import evaluate, fit, make_optimizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("scale_offset", "minmax", "beta_gamma", "lsq")
LABEL = {"scale_offset": "scale/offset", "minmax": "min/max", "beta_gamma": "beta/gamma",
         "lsq": "LSQ(+)"}
BITS = (2, 3, 4, 8)
RANGE_LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
UNSTABLE_FACTOR = 1.25


# ---- tasks -------------------------------------------------------------------------------


class Task:
    """A float model per seed, a QAT training set, a test set and a loss."""

    name = ""
    weight_lr = 1e-3
    epochs = 5

    def float_model(self, seed: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, out, y):
        raise NotImplementedError


class Digits(Task):
    name = "digits"
    weight_lr = 1e-3
    epochs = 5

    def __init__(self):
        from nnshare.digits import digits_data

        self.xtr, self.ytr, self.xte, self.yte = digits_data(0)
        self.freeze: list[str] = []

    def float_model(self, seed):
        from nnshare.digits import digits_mlp, train_classifier

        return train_classifier(digits_mlp((32,), seed), self.xtr, self.ytr, epochs=25,
                                seed=seed)

    def loss(self, out, y):
        return F.cross_entropy(out, y)


class CSI(Task):
    """Encoder QAT with the decoder frozen: the model is nn.Sequential(encoder, decoder)."""

    name = "csi"
    weight_lr = 5e-4
    epochs = 3

    def __init__(self, n_train: int = 400, n_test: int = 120):
        from nnshare.wlan.experiment import training_features

        snr = (15.0, 40.0)
        self.xtr = torch.from_numpy(training_features(n_train, "D", snr, 0))
        self.xte = torch.from_numpy(training_features(n_test, "D", snr, 1))
        self.ytr, self.yte = self.xtr, self.xte
        self.freeze = ["1"]

    def float_model(self, seed):
        from nnshare.wlan.autoencoder import TrainConfig, train

        enc, dec, _ = train(self.xtr.numpy(), TrainConfig(epochs=12, seed=seed))
        return _AE(enc, dec)

    def loss(self, out, y):
        from nnshare.wlan.autoencoder import features_to_v, sgcs_torch

        return 1 - sgcs_torch(features_to_v(y), out).mean()


class _AE(nn.Sequential):
    """encoder (0) -> 4-bit latent (straight through) -> decoder (1) -> orthonormal V-hat."""

    def __init__(self, enc, dec):
        super().__init__(enc, dec)

    def forward(self, x):
        from nnshare.wlan.autoencoder import reconstruct

        return reconstruct(self[1], self[0](x), 4, ste=True)


# ---- one run -----------------------------------------------------------------------------


def run_one(task: Task, base: nn.Module, ranges: str, bits: int, range_lr: float,
            range_opt: str, seed: int) -> dict:
    plan = uniform(bits, "channel", symmetric=False)
    torch.manual_seed(seed)
    q = prepare(base, plan, ranges, freeze=task.freeze)
    start = evaluate(q, task.xte, task.yte, task.loss)
    curve: list[float] = []
    opt = make_optimizer(q, task.weight_lr, range_lr, kind="adam", range_kind=range_opt)
    with np.errstate(all="ignore"):
        res = fit(q, task.xtr, task.ytr, task.loss, epochs=task.epochs, optimizer=opt,
                  batch_size=64 if task.name == "digits" else 256, seed=seed,
                  on_epoch=lambda e, v: curve.append(evaluate(q, task.xte, task.yte, task.loss)))
    final = curve[-1] if curve and not res.diverged else math.inf
    nonfinite = res.diverged or not math.isfinite(final)
    return {
        "task": task.name, "ranges": ranges, "bits": bits, "range_lr": range_lr,
        "range_opt": range_opt, "seed": seed, "start": start,
        "final": None if nonfinite else final, "curve": curve,
        "nonfinite": nonfinite,
        "unstable": nonfinite or final > UNSTABLE_FACTOR * start,
    }


# ---- summaries ---------------------------------------------------------------------------


def _cell(runs: list[dict]) -> tuple[float, int]:
    ok = [r["final"] for r in runs if not r["unstable"]]
    return (float(np.median(ok)) if ok else math.nan), sum(r["unstable"] for r in runs)


def tables(runs: list[dict], tasks: list[str], opts: list[str], lrs, seeds) -> str:
    out = []
    for t in tasks:
        for o in opts:
            out.append(f"\n### {t}, range optimizer {o.upper()}\n")
            out.append("median final test loss over stable seeds (unstable runs out of "
                       f"{len(seeds)} in brackets); the row's best is in bold\n")
            out.append("| ranges | bits | before QAT | " + " | ".join(f"lr {lr:g}" for lr in lrs)
                       + " |")
            out.append("|---|---|---|" + "---|" * len(lrs))
            for p in PARAMS:
                for b in BITS:
                    sel = [r for r in runs if r["task"] == t and r["range_opt"] == o
                           and r["ranges"] == p and r["bits"] == b]
                    if not sel:
                        continue
                    start = float(np.median([r["start"] for r in sel]))
                    cells = [_cell([r for r in sel if r["range_lr"] == lr]) for lr in lrs]
                    best = np.nanmin([c[0] for c in cells]) if any(
                        math.isfinite(c[0]) for c in cells) else math.nan
                    txt = []
                    for med, bad in cells:
                        s = "—" if not math.isfinite(med) else f"{med:.4f}"
                        if math.isfinite(med) and med == best:
                            s = f"**{s}**"
                        txt.append(s + (f" ({bad})" if bad else ""))
                    out.append(f"| {LABEL[p]} | {b} | {start:.4f} | " + " | ".join(txt) + " |")
    return "\n".join(out)


def summary(runs: list[dict], tasks, opts) -> tuple[str, dict]:
    """Per task, optimizer, parameterization: unstable rate, best loss per bit width, and the
    number of learning rates whose median loss is within 5 % of that best (the LR window)."""
    rows = ["| task | range opt | ranges | unstable runs | best loss 2/3/4/8 bit | "
            "LR window 2/3/4/8 bit |", "|---|---|---|---|---|---|"]
    data: dict = {}
    for t in tasks:
        for o in opts:
            for p in PARAMS:
                sel = [r for r in runs if r["task"] == t and r["range_opt"] == o
                       and r["ranges"] == p]
                if not sel:
                    continue
                bests, windows = [], []
                for b in BITS:
                    lrs = sorted({r["range_lr"] for r in sel})
                    meds = [_cell([r for r in sel if r["bits"] == b and r["range_lr"] == lr])
                            for lr in lrs]
                    finite = [m for m, bad in meds if math.isfinite(m) and bad == 0]
                    best = min(finite) if finite else math.nan
                    bests.append(best)
                    windows.append(sum(1 for m, bad in meds if bad == 0 and math.isfinite(m)
                                       and m <= 1.05 * best))
                n_bad = sum(r["unstable"] for r in sel)
                data[f"{t}/{o}/{p}"] = {"unstable": n_bad, "runs": len(sel), "best": bests,
                                        "lr_window": windows}
                rows.append(f"| {t} | {o} | {LABEL[p]} | {n_bad}/{len(sel)} | "
                            + " / ".join(f"{v:.4f}" for v in bests) + " | "
                            + " / ".join(str(w) for w in windows) + " |")
    return "\n".join(rows), data


def plot(runs: list[dict], tasks, opt: str, lrs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tasks), len(BITS), figsize=(3.2 * len(BITS), 2.8 * len(tasks)),
                             squeeze=False)
    for i, t in enumerate(tasks):
        for j, b in enumerate(BITS):
            ax = axes[i][j]
            for k, p in enumerate(PARAMS):
                sel = [r for r in runs if r["task"] == t and r["range_opt"] == opt
                       and r["ranges"] == p and r["bits"] == b]
                if not sel:
                    continue
                meds, bads = zip(*[_cell([r for r in sel if r["range_lr"] == lr]) for lr in lrs],
                                 strict=True)
                line, = ax.plot(lrs, meds, marker="o", ms=4, label=LABEL[p])
                for lr, m, bad in zip(lrs, meds, bads, strict=True):
                    if bad and math.isfinite(m):  # some seeds unstable: x on the median
                        ax.plot([lr], [m], marker="x", color=line.get_color(), ms=9, mew=2)
                    elif bad:  # every seed unstable: x at the top of the panel
                        ax.plot([lr], [0.96 - 0.07 * k], marker="x", color=line.get_color(),
                                ms=8, mew=2,
                                transform=ax.get_xaxis_transform(), clip_on=False)
            start = np.median([r["start"] for r in runs if r["task"] == t and r["bits"] == b
                               and r["ranges"] == "minmax"])
            ax.axhline(start, color="gray", ls=":", lw=1, label="before QAT (PTQ)")
            lo = np.nanmin([r["final"] for r in runs if r["task"] == t and r["bits"] == b
                            and r["final"] is not None] + [start])
            ax.set_ylim(lo - 0.05 * (start - lo) - 1e-4, start + 0.35 * (start - lo) + 1e-4)
            ax.set_xscale("log")
            ax.set_title(f"{t}, {b} bit", fontsize=9)
            if i == len(tasks) - 1:
                ax.set_xlabel(f"range learning rate ({opt})")
            if j == 0:
                ax.set_ylabel("final test loss")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("QAT range parameterizations, asymmetric per channel: median final test loss "
                 f"over seeds; x = unstable seeds (x stacked at the top: all seeds); range optimizer "
                 f"{opt.upper()}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(runs, names, opts, lrs, seeds, floats, suffix="") -> str:
    """Plots (one per range optimizer) and the markdown tables; returns the markdown."""
    summ_md, _ = summary(runs, names, opts)
    for o in opts:
        plot(runs, names, o, lrs, ROOT / "docs" / "img" / f"qat_parameterizations_{o}{suffix}.png")
    md = ["float loss: " + ", ".join(f"{t} {v:.4f}" for t, v in floats.items()),
          "", summ_md, tables(runs, names, opts, lrs, seeds)]
    text = "\n".join(md)
    if not suffix:
        (ROOT / "bench" / "results" / "qat_parameterizations_tables.md").write_text(text + "\n")
    return text


def replot() -> int:
    """Redraw plots and tables from bench/results/qat_parameterizations.json."""
    d = json.loads((ROOT / "bench" / "results" / "qat_parameterizations.json").read_text())
    c = d["config"]
    names = sorted({r["task"] for r in d["runs"]}, key=["digits", "csi"].index)
    print(write_outputs(d["runs"], names, c["range_opts"], tuple(c["range_lrs"]), c["seeds"],
                        d["float_loss"]))
    return 0


def extras(seeds=(0, 1, 2)) -> dict:
    """Digits, 2-bit symmetric per-tensor weights, 4 epochs each: plain STE (min/max ranges)
    against BCGD at several blending factors and QKD with phases (2, 1, 1); test accuracy."""
    import copy

    from nnshare.digits import accuracy, digits_data, digits_mlp, train_classifier
    from nnshare.qat import BCGD, qkd_train

    xtr, ytr, xte, yte = digits_data(0)
    rhos = (0.0, 1e-5, 1e-4, 1e-3)
    out: dict = {"float": [], "ptq": [], "qkd": [], **{f"bcgd_rho_{r:g}": [] for r in rhos}}
    for seed in seeds:
        m = train_classifier(digits_mlp((32,), seed), xtr, ytr, epochs=25, seed=seed)
        out["float"].append(accuracy(m, xte, yte))
        out["ptq"].append(accuracy(prepare(m, uniform(2), "minmax"), xte, yte))
        for rho in rhos:
            torch.manual_seed(seed)
            q = prepare(m, uniform(2), "minmax")
            opt = make_optimizer(q, 1e-3)
            if rho:
                opt = BCGD(q, opt, rho=rho)
            fit(q, xtr, ytr, F.cross_entropy, epochs=4, optimizer=opt, seed=seed)
            out[f"bcgd_rho_{rho:g}"].append(accuracy(q, xte, yte))
        torch.manual_seed(seed)
        q = prepare(m, uniform(2), "minmax")
        qkd_train(q, copy.deepcopy(m), xtr, ytr, phases=(2, 1, 1), seed=seed)
        out["qkd"].append(accuracy(q, xte, yte))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny grid (smoke test)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tasks", default="digits,csi")
    ap.add_argument("--opts", default="adam,sgd")
    ap.add_argument("--replot", action="store_true",
                    help="redraw plots and tables from the saved JSON, no training")
    ap.add_argument("--extras", action="store_true",
                    help="only BCGD and QKD against plain STE on digits at 2 bits")
    args = ap.parse_args(argv)
    if args.replot:
        return replot()
    if args.extras:
        torch.set_num_threads(1)
        ex = extras()
        path = ROOT / "bench" / "results" / "qat_parameterizations_extras.json"
        path.write_text(json.dumps(ex, indent=1))
        print("| method | test accuracy per seed | mean |\n|---|---|---|")
        for k, v in ex.items():
            print(f"| {k} | {' / '.join(f'{a:.3f}' for a in v)} | {np.mean(v):.3f} |")
        return 0
    torch.set_num_threads(1)
    seeds = list(range(1 if args.quick else args.seeds))
    lrs = (1e-3, 1e-1) if args.quick else RANGE_LRS
    opts = args.opts.split(",")
    t0 = time.time()
    tasks: list[Task] = []
    notes = []
    for name in args.tasks.split(","):
        if name == "digits":
            tasks.append(Digits())
        elif name == "csi":
            try:
                tasks.append(CSI(n_train=100 if args.quick else 400))
            except ImportError as e:  # nnshare.wlan not available
                notes.append(f"CSI autoencoder skipped: {e}")
    runs: list[dict] = []
    for task in tasks:
        for seed in seeds:
            base = task.float_model(seed)
            float_loss = evaluate(base, task.xte, task.yte, task.loss)
            print(f"[{time.time() - t0:6.1f}s] {task.name} seed {seed}: float loss "
                  f"{float_loss:.4f}", flush=True)
            for b in BITS:
                for p in PARAMS:
                    for o in opts:
                        for lr in lrs:
                            r = run_one(task, base, p, b, lr, o, seed)
                            r["float"] = float_loss
                            runs.append(r)
            print(f"[{time.time() - t0:6.1f}s] {task.name} seed {seed} done", flush=True)
    elapsed = time.time() - t0
    names = [t.name for t in tasks]
    _, summ = summary(runs, names, opts)
    floats = {t: float(np.median([r["float"] for r in runs if r["task"] == t])) for t in names}
    result = {
        "bench": "qat_parameterizations",
        "config": {"bits": BITS, "range_lrs": lrs, "seeds": seeds, "range_opts": opts,
                   "quant": "asymmetric per output channel, scale fp32",
                   "unstable_factor": UNSTABLE_FACTOR,
                   "epochs": {t.name: t.epochs for t in tasks},
                   "weight_lr": {t.name: t.weight_lr for t in tasks}},
        "float_loss": floats, "elapsed_s": elapsed, "torch": torch.__version__,
        "notes": notes, "summary": summ, "runs": runs,
    }
    suffix = "_quick" if args.quick else ""
    out = ROOT / "bench" / "results" / f"qat_parameterizations{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(write_outputs(runs, names, opts, lrs, seeds, floats, suffix))
    print(f"elapsed {elapsed:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

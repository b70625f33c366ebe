"""The quantizer zoo next to theory, and INT vs FP on real weights (issue 14): the driver.

Part 1 (synthetic, ``bench/quantizers_synthetic.py``): unit Gaussian and Laplacian sources,
10^6 samples, 1-8 bits, each scheme's measured SQNR next to its theoretical value.
Part 2 (models, ``bench/quantizers_models.py``): INT vs FP on digits and MiniLM weights.
Part 3 (``bench/quantizers_extra.py``): sigma-delta on random Fourier features, LPLR on MiniLM.
Bits at equal task quality of every scheme: ``bench/quantizers_bits.py`` (its own section).

Writes bench/results/quantizers.json, docs/benchmarks/quantizers.md, docs/img/quantizers_sqnr.png.
Usage: python bench/quantizers.py [--quick]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quantizers_synthetic import TOL_DB, synthetic  # noqa: E402

from nnshare.quant import densities  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JSON_PATH = ROOT / "bench/results/quantizers.json"
MD_PATH = ROOT / "docs/benchmarks/quantizers.md"
PNG_PATH = ROOT / "docs/img/quantizers_sqnr.png"


def write_markdown(res: dict) -> None:
    rows = res["synthetic"]
    lines = [
        "## The quantizer zoo next to theory (issue 14)",
        "",
        "### Gaussian and Laplacian sources",
        "",
        f"`python bench/quantizers.py`: unit-variance sources, {res['n_samples']:,} samples, "
        f"{res['machine']}. "
        "*measured*: on a stratified sample (one uniform draw in each of n equal-probability strata, "
        "mapped through the inverse CDF: the tails hold exactly their share); *i.i.d.*: the same "
        "scheme on n independent draws, whose few samples beyond a clipping quantizer's support move "
        "the 7-8-bit values by ~0.1 dB. *theory*: the exact MSE integral of the same quantizer under "
        "the source density (levels as the scheme builds them). *table*: the classical value "
        "(Max / Jayant-Noll; for entropy-coded uniform the high-rate line 6.02R - 1.53 dB Gaussian / "
        f"6.02R - 0.90 dB Laplacian at the coded rate R). ok: measured within {TOL_DB} dB of theory. "
        "Bits in parentheses: rate including block scales, or the entropy coder's actual rate.",
        "",
    ]
    for source in densities.SOURCES:
        lines += [
            f"**{source.capitalize()}**",
            "",
            "| scheme | bits | measured dB | i.i.d. dB | theory dB | table dB | ok | note |",
            "|---|---:|---:|---:|---:|---:|:-:|---|",
        ]
        for r in rows:
            if r["source"] != source:
                continue
            th = f"{r['theory_db']:.2f}" if "theory_db" in r else ""
            tb = f"{r['table_db']:.2f}" if r.get("table_db") is not None else ""
            ok = ("✓" if r["within_tol"] else "✗") if "within_tol" in r else ""
            bits = f"{r['bits']}" + (f" ({r['rate_bits']:.3f})" if "rate_bits" in r else "")
            lines.append(
                f"| {r['scheme']} | {bits} | {r['measured_db']:.2f} | {r['iid_db']:.2f} | {th} | {tb} | "
                f"{ok} | {r['note']} |"
            )
        lines.append("")
    bad = [r for r in rows if r.get("within_tol") is False]
    worst = max((abs(r["gap_db"]) for r in rows if "gap_db" in r), default=0.0)
    lines.append(
        f"Rows outside {TOL_DB} dB of theory: {len(bad)}; largest |measured - theory|: {worst:.3f} dB"
        + (
            ""
            if not bad
            else " ("
            + "; ".join(f"{r['scheme']} {r['source']} {r['bits']} bits: {r['gap_db']:+.3f} dB" for r in bad)
            + ")"
        )
        + "."
    )
    lines += ["", "![SQNR vs bits](img/quantizers_sqnr.png)", ""]
    if "models" in res:
        import quantizers_models as qm

        lines += qm.markdown(res["models"], res["outliers"])
    if "rff" in res or "lplr" in res:
        import quantizers_extra as qx

        lines += qx.markdown(res.get("rff"), res.get("lplr"))
    MD_PATH.parent.mkdir(parents=True, exist_ok=True)
    MD_PATH.write_text("\n".join(lines) + "\n")


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, source in zip(axes, densities.SOURCES, strict=True):
        by: dict[str, list] = {}
        for r in rows:
            if r["source"] == source:
                by.setdefault(r["scheme"], []).append((r.get("rate_bits", r["bits"]), r["measured_db"]))
        for name, pts in by.items():
            pts.sort()
            style = "k--" if "bound" in name else ("o" if len(pts) < 3 else ".-")
            ax.plot(*zip(*pts, strict=True), style, label=name, ms=5)
        ax.set_title(f"{source} source")
        ax.set_xlabel("bits per sample")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SQNR (dB)")
    axes[1].legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    PNG_PATH.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG_PATH, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10^5 samples, 1-4 bits, one digits seed")
    ap.add_argument(
        "--parts", default="synthetic,models,rff,lplr", help="comma list of synthetic, models, rff, lplr"
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    res = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    res["machine"] = f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}"
    t0 = time.perf_counter()
    if "synthetic" in parts:
        n = 100_000 if args.quick else 1_000_000
        res["n_samples"] = n
        res["synthetic"] = synthetic(n, range(1, 5) if args.quick else range(1, 9))
        res["synthetic_seconds"] = round(time.perf_counter() - t0, 1)
    if "rff" in parts or "lplr" in parts:
        import quantizers_extra as qx

        if "rff" in parts:
            res["rff"] = qx.run_rff()
        if "lplr" in parts:
            res["lplr"] = qx.run_lplr(args.quick)
    if "models" in parts:
        import quantizers_models as qm

        res["models"] = qm.run_digits(args.quick) + qm.run_minilm(args.quick)
        res["outliers"] = qm.outlier_tensors()
    res["seconds"] = round(time.perf_counter() - t0, 1)
    JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(res, indent=1) + "\n")
    write_markdown(res)
    plot(res["synthetic"])
    print(f"wrote {JSON_PATH.relative_to(ROOT)}, {MD_PATH.relative_to(ROOT)} in {res['seconds']} s")


if __name__ == "__main__":
    main()

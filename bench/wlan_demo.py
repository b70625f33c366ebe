"""The 802.11 flagship scenario as a benchmark: run the demo and publish its tables and plot.

    .venv/bin/python bench/wlan_demo.py [--quick | --full]

Writes bench/results/wlan.json, docs/benchmarks/wlan.md, docs/img/wlan_per.png and
docs/img/wlan_sgcs_bits.png; the demo's own report goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

from nnshare.wlan.demo import run_demo  # noqa: E402
from nnshare.wlan.report import label  # noqa: E402
from nnshare.wlan.report_fair import airtime_sections, fair_baselines  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def section(res: dict) -> str:
    """The docs/benchmarks/wlan.md section."""
    mcs = res["mcs"]
    lines = [
        "## 802.11 flagship: shared CSI encoder, PER at MCS4/7/9/11",
        "",
        f"`python bench/wlan_demo.py` (mode `{res['mode']}`, {res['timings_s']['total_s']:.0f} s). "
        "802.11ax HE SU 20 MHz, 4x2, 2 streams, TGn model D NLOS, RBIR abstraction over the "
        "project's own LDPC AWGN tables. SNR (dB) at 10 % PER and shift from float32:",
        "",
        "| encoder / feedback | shared bits | SGCS | "
        + " | ".join(f"MCS{m}" for m in mcs)
        + " | worst shift (dB) |",
        "|---|---|---|" + "---|" * len(mcs) + "---|",
    ]
    bits = {r["scheme"]: r["shared_bits"] for r in res["sharing"]}
    for name, by in res["snr10"].items():
        sh = res["shift_vs_float32"][name]
        vals = [v for v in (sh[str(m)] for m in mcs) if v is not None]
        worst = f"{max(vals, key=abs):+.2f}" if vals and name in bits else ""
        sg = res["sgcs"].get(name, {}).get("sgcs")
        b = f"{bits[name]:,}" if name in bits else ""
        sg = res["sgcs"].get(name, {}).get("sgcs")
        sg = f"{sg:.4f}" if sg is not None else ""
        snrs = " | ".join(f"{by[str(m)]:.2f}" for m in mcs)
        lines.append(f"| {label(name)} | {b} | {sg} | {snrs} | {worst} |")
    chk = res.get("seed_check", {})
    lines += [
        "",
        f"8-bit PTQ (27,456 bits) vs float32: max |shift| {chk.get('max_abs_shift_db', 0):.3f}"
        f" dB ({'PASS' if chk.get('pass') else 'FAIL'}, limit 0.1 dB).",
        "",
        "![PER vs SNR](img/wlan_per.png)",
        "",
    ]
    extra = fair_baselines(res) + [""] + airtime_sections(res)
    lines += ["#" + ln if ln.startswith("## ") else ln for ln in extra]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        res = run_demo(out, quick=args.quick, full=args.full, progress=sys.stderr.isatty())
        publish(out)
    print(f"wrote docs/benchmarks/wlan.md, docs/img/wlan_*.png ({res['timings_s']['total_s']:.0f} s)")


def publish(out: Path) -> None:
    """Copy a demo run's JSON and plots into bench/results and docs/."""
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "wlan_results.json", ROOT / "bench/results/wlan.json")
    (ROOT / "docs/img").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "wlan_per.png", ROOT / "docs/img/wlan_per.png")
    shutil.copyfile(out / "wlan_sgcs_bits.png", ROOT / "docs/img/wlan_sgcs_bits.png")
    (ROOT / "docs/benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs/benchmarks/wlan.md").write_text(
        section(json.loads((ROOT / "bench/results/wlan.json").read_text()))
    )


if __name__ == "__main__":
    main()

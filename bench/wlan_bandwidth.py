"""The 802.11 flagship at 20-160 MHz (issue 18, item 5): bits of every report per bandwidth and
the AE (trained at 20 MHz) measured at 80 MHz against the standard's reports.

    nice -n 10 .venv/bin/python bench/wlan_bandwidth.py [--n 100] [--bw 80]

Writes bench/results/wlan_bandwidth.json and docs/benchmarks/wlan_bandwidth.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

from nnshare.wlan.demo import DEFAULT  # noqa: E402
from nnshare.wlan.demo_full import train_shared  # noqa: E402
from nnshare.wlan.progress import limit_threads  # noqa: E402
from nnshare.wlan.report import _clean  # noqa: E402
from nnshare.wlan.report_fair import bandwidth_sections  # noqa: E402
from nnshare.wlan.wideband import run_bandwidths  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def section(res: dict) -> str:
    t = res["timing"]
    head = [
        "## 802.11 flagship at 20-160 MHz",
        "",
        f"`nice -n 10 python bench/wlan_bandwidth.py` ({t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU, "
        f"load average {t['load']}). The default demo's AE (trained on 20 MHz model-D channels) "
        "shared as float32 and ptq-t8, run unchanged on the wider band's Ng = 4 grid.",
        "",
    ]
    return "\n".join(head + bandwidth_sections(res["bandwidths"], [4, 7, 9, 11])[2:]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="channels per measured bandwidth")
    ap.add_argument("--bw", type=int, nargs="+", default=[80], help="bandwidths (MHz) to measure")
    args = ap.parse_args()
    t0, c0 = time.time(), time.process_time()
    limit_threads()
    dec, shared = train_shared(DEFAULT)
    enc = {k: v.encoder for k, v in shared.items()}
    bw = run_bandwidths(enc, dec, DEFAULT.b_lat, tuple(args.bw), args.n)
    res = {
        "bandwidths": bw,
        "timing": {
            "wall_s": time.time() - t0,
            "cpu_s": time.process_time() - c0,
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        },
    }
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/wlan_bandwidth.json").write_text(json.dumps(_clean(res), indent=1) + "\n")
    (ROOT / "docs/benchmarks/wlan_bandwidth.md").write_text(section(_clean(res)))
    print(f"wrote bench/results/wlan_bandwidth.json and its docs section ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()

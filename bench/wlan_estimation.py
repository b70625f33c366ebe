"""Channel estimation smoothed across tones and 1,458-byte packets (TGax calibration) for the
802.11 flagship (issue 18, item 6): the default demo's AE and the (6,4) reports, 200 channels.

    nice -n 10 .venv/bin/python bench/wlan_estimation.py [--smooth 5]

Writes bench/results/wlan_estimation.json and docs/benchmarks/wlan_estimation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402

from nnshare.wlan.demo import DEFAULT, _schemes  # noqa: E402
from nnshare.wlan.demo_full import estimation, train_shared  # noqa: E402
from nnshare.wlan.progress import Bars, limit_threads  # noqa: E402
from nnshare.wlan.report import _clean  # noqa: E402
from nnshare.wlan.report_fair import estimation_sections  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def section(res: dict) -> str:
    t = res["timing"]
    head = [
        "## 802.11 flagship: smoothed channel estimation, 1,458-byte packets",
        "",
        f"`nice -n 10 python bench/wlan_estimation.py` ({t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU, "
        f"load average {t['load']}); the default demo's AE and test channels ({DEFAULT.n_test}).",
        "",
    ]
    return "\n".join(head + estimation_sections(res["estimation"], [4, 7, 9, 11])[2:]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smooth", type=int, default=5, help="tones averaged (odd)")
    args = ap.parse_args()
    t0, c0 = time.time(), time.process_time()
    limit_threads()
    dec, shared = train_shared(DEFAULT)
    sch = _schemes(DEFAULT, dec, shared)
    snr = np.arange(DEFAULT.snr_lo, DEFAULT.snr_hi + 1e-9, DEFAULT.snr_step)
    est = estimation(DEFAULT, sch, {}, snr, Bars(False), args.smooth)
    res = {
        "estimation": est,
        "timing": {
            "wall_s": time.time() - t0,
            "cpu_s": time.process_time() - c0,
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        },
    }
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/wlan_estimation.json").write_text(json.dumps(_clean(res), indent=1) + "\n")
    (ROOT / "docs/benchmarks/wlan_estimation.md").write_text(section(_clean(res)))
    print(f"wrote bench/results/wlan_estimation.json and its docs section ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()

"""802.11 MU-MIMO: the shared 4x1 CSI encoder against the standard's MU feedback.

    nice -n 10 .venv/bin/python bench/wlan_mu.py [--quick] [--docs-only]

Trains the MU autoencoder (CPU, one thread, seeded), shares its encoder through nnshare
(float32, ptq-t8, 6/4-bit, the smallest stream within 0.1 dB found by nnshare.compress on
validation drops), and measures SNR at 10 % PER at MCS4/7/9/11 and sum goodput for ideal CSI,
the MU codebooks (7,5)/(9,7) at Ng 4/16 and every shared encoder, ZF and MMSE, 2 users (and
3/4 users with ZF). Writes bench/results/wlan_mu.json and docs/benchmarks/wlan_mu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

from nnshare.wlan.mu_demo import QUICK_MU, MuConfig, run_mu  # noqa: E402
from nnshare.wlan.mu_report import markdown  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run; not published)")
    ap.add_argument("--docs-only", action="store_true", help="rebuild the docs section from the JSON")
    ap.add_argument(
        "--follow-up",
        action="store_true",
        help="retrain the stored run's AE and measure wider streams and a new smallest-stream search",
    )
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "bench/results/wlan_mu.json")
    args = ap.parse_args(argv)
    if args.docs_only or args.follow_up:
        res = json.loads(args.out.read_text())
        if args.follow_up:
            from nnshare.wlan.mu_followup import follow_up

            res["follow_up"] = follow_up(res)
            res["follow_up"]["load_average"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
            args.out.write_text(json.dumps(res, indent=1, allow_nan=False) + "\n")
    else:
        cfg = QUICK_MU if args.quick else MuConfig()
        res = run_mu(cfg, progress=lambda s: print(s, file=sys.stderr, flush=True))
        res["load_average"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        res["mode"] = "quick" if args.quick else "default"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1, allow_nan=False) + "\n")
    cmd = "python bench/wlan_mu.py" + (" --quick" if res.get("mode") == "quick" else "")
    md = markdown(res, cmd)
    if res.get("mode") != "quick" and args.out == ROOT / "bench/results/wlan_mu.json":
        (ROOT / "docs/benchmarks/wlan_mu.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""802.11 MU-MIMO: the paired float32-vs-shared shift on 1,600 drops (0.1 dB resolved at MCS11).

    nice -n 10 .venv/bin/python bench/wlan_mu_paired.py [--drops N] [--docs-only]

Retrains the MU autoencoder of ``MuConfig()`` (as bench/wlan_mu.py), shares the encoder as
float32, ``ptq-t8``, ``qat-t8``, ``gptq-t8`` (the 8-bit ones in the same 27,456-bit layout),
``gptq-t7`` and nnshare's smallest stream (searched on validation drops as in bench/wlan_mu.py)
and measures their paired shift of the SNR at 10 % PER at MCS4/7/9/11 with its bootstrap.
Writes bench/results/wlan_mu_paired.json and docs/benchmarks/wlan_mu_paired.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

from nnshare.wlan.mu_precise import markdown, run_precise  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drops", type=int, default=1600)
    ap.add_argument("--docs-only", action="store_true", help="rebuild the docs section from the JSON")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "bench/results/wlan_mu_paired.json")
    args = ap.parse_args(argv)
    if args.docs_only:
        res = json.loads(args.out.read_text())
    else:
        res = run_precise(n_drops=args.drops, progress=lambda s: print(s, file=sys.stderr, flush=True))
        res["load_average"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1, allow_nan=False) + "\n")
    md = markdown(res)
    if args.out == ROOT / "bench/results/wlan_mu_paired.json" and res["n_drops"] == 1600:
        (ROOT / "docs/benchmarks/wlan_mu_paired.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

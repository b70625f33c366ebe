"""Regenerate nnshare/wlan/data/awgn_per.json (AWGN LDPC codeword error tables, MCS4/7/9/11).

One process, one thread; takes a few minutes on one core. Usage:
    OMP_NUM_THREADS=1 python scripts/gen_wlan_per_tables.py [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from nnshare.wlan.per_tables import generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1] / "nnshare" / "wlan" / "data" / "awgn_per.json"
    ap.add_argument("--out", type=Path, default=default)
    args = ap.parse_args()

    def show(m: int, s: float, e: int, n: int) -> None:
        print(f"MCS{m:<2d} {s:6.2f} dB  CWER {e}/{n} = {e / n:.4g}", flush=True)

    table = generate(progress=show)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.out} in {table['seconds']} s")


if __name__ == "__main__":
    main()

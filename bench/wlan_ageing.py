"""Channel ageing, sounding interval and goodput of the 802.11 flagship (issue 18, items 3-4).

    nice -n 10 .venv/bin/python bench/wlan_ageing.py [--n 200] [--quick]

Trains the default demo's autoencoder (seed 0), shares it as ptq-t8 through nnshare, and runs
``nnshare.wlan.ageing.run_ageing`` for the shared encoder against the best standard report at
equal bits ((6,4) Ng=16) and the mandatory (6,4) Ng=4: TGn bell Doppler at 1.2 and 3 km/h, SNR
at 10 % PER vs CSI age, goodput vs sounding interval at 20 and 30 dB, feedback per second and
break-even in seconds. Writes bench/results/wlan_ageing.json and docs/benchmarks/wlan_ageing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import replace
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

from nnshare.wlan.ageing import AgeingConfig, run_ageing  # noqa: E402
from nnshare.wlan.report import _clean  # noqa: E402
from nnshare.wlan.report_ageing import ageing_sections  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = ("Givens (6,4) Ng=16", "Givens (6,4) Ng=4", "ptq-t8")


def build(n_train: int | None = None):
    """(schemes, report bits, model bytes) from the default demo's training and sharing."""
    from nnshare.wlan.demo import DEFAULT, _schemes, _train_and_share
    from nnshare.wlan.overhead import ae_feedback_bits, feedback_table
    from nnshare.wlan.progress import Bars, limit_threads

    limit_threads()
    cfg = DEFAULT if n_train is None else replace(DEFAULT, n_train=n_train, epochs=4)
    dec, shared, _, _ = _train_and_share(cfg, cfg.seed, ("float32", "ptq-t8"), (), Bars(False), "")
    sch = _schemes(cfg, dec, shared)
    bits = {r["scheme"]: r["bits"] for r in feedback_table(cfg.b_lat)}
    bits.update({k: ae_feedback_bits(cfg.b_lat) for k in shared})
    return {k: sch[k] for k in SCHEMES}, bits, {k: shared[k].stream_bytes for k in ("ptq-t8",)}


def section(res: dict) -> str:
    t = res["timing"]
    head = [
        "## 802.11 flagship: channel ageing, sounding interval and goodput",
        "",
        f"`nice -n 10 python bench/wlan_ageing.py` ({t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU, "
        f"load average {t['load']}). The shared 8-bit encoder (ptq-t8, 1,040 feedback bits) against "
        "the best standard report at equal bits, (6,4) Ng=16 (1,016 bits), and the mandatory (6,4) "
        "Ng=4 (3,216 bits); sounding exchange airtime with the report at HE MCS4.",
        "",
    ]
    body = ageing_sections(res["ageing"], [4, 7, 9, 11])
    return "\n".join(head + body[2:]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="channels per speed")
    ap.add_argument("--quick", action="store_true", help="a small smoke run (not published)")
    args = ap.parse_args()
    t0, c0 = time.time(), time.process_time()
    sch, bits, mb = build(600 if args.quick else None)
    acfg = AgeingConfig(n=args.n)
    if args.quick:
        acfg = replace(acfg, n=20, ages_s=(0.0, 0.02), intervals_s=(0.01, 0.05), goodput_snr_db=(30.0,))
    ag = run_ageing(acfg, sch, bits, mb)
    res = {
        "ageing": ag,
        "timing": {
            "wall_s": time.time() - t0,
            "cpu_s": time.process_time() - c0,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        },
    }
    if args.quick:
        print(section(_clean(res)))
        return
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/wlan_ageing.json").write_text(json.dumps(_clean(res), indent=1) + "\n")
    (ROOT / "docs/benchmarks/wlan_ageing.md").write_text(section(_clean(res)))
    print(f"wrote bench/results/wlan_ageing.json, docs/benchmarks/wlan_ageing.md ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()

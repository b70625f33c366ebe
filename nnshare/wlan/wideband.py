"""The AE and the standard's reports at 20-160 MHz (RU242 / RU484 / RU996 / 2xRU996).

Bits per sounding follow the standard's formula at every bandwidth; the AE (trained on 20 MHz
groups of 4 adjacent Ng = 4 tones, 312.5 kHz apart at every bandwidth) codes ceil(Ns / 4)
groups, the last one padded by repeating the last tone. ``run_bandwidths`` tabulates bits and
sounding airtime at every bandwidth and measures PER at the bandwidths asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import nn

from .baselines import STANDARD_SU, standard_name
from .experiment import ae_scheme, givens_scheme, make_test_set, per_curves, sgcs_table
from .ofdm import BANDWIDTHS, RU, feedback_tones
from .overhead import ae_feedback_bits, feedback_table
from .sounding import Sounding


def bits_table(b_lat: int = 4, report_mcs: int = 4) -> list[dict]:
    """Per bandwidth: Ns at Ng 4 / 16, bits of every standard SU report and of the AE, and the
    sounding exchange airtime (us) of each with the report at ``report_mcs``, 1 stream."""
    rows = []
    for bw in BANDWIDTHS:
        snd = Sounding(bandwidth_mhz=bw, report_mcs=report_mcs)
        bits = {r["scheme"]: r["bits"] for r in feedback_table(b_lat, bw)}
        rows.append(
            {
                "bw_mhz": bw,
                "ru": RU[bw],
                "ns": {str(ng): int(feedback_tones(ng, bw).size) for ng in (4, 16)},
                "bits": bits,
                "exchange_us": {k: snd.exchange_us(v) for k, v in bits.items()},
            }
        )
    return rows


def run_bandwidths(
    encoders: dict[str, nn.Module],
    decoder: nn.Module,
    b_lat: int,
    bws=(80,),
    n: int = 100,
    snr_db: np.ndarray | None = None,
    seed: int = 40_000,
    sgcs_snr_db: float = 30.0,
    progress: Callable[[str, int], Callable[[], None]] | None = None,
) -> dict:
    """SNR at 10 % PER and SGCS of every standard SU report and each AE encoder at each of
    ``bws`` (``n`` model-D channels), plus ``bits_table``. {"bits", "measured" {bw: {"snr10",
    "sgcs", "bits"}}}."""
    snr = np.arange(9.0, 37.0 + 1e-9, 1.0) if snr_db is None else snr_db
    out: dict = {"bits": bits_table(b_lat), "measured": {}}
    for bw in bws:
        ts = make_test_set(n, "D", seed=seed + bw, bw=bw)
        sch = {standard_name(*g): givens_scheme(*g, bw=bw) for g in STANDARD_SU}
        sch.update({k: ae_scheme(e, decoder, b_lat, bw=bw) for k, e in encoders.items()})
        tick = progress(f"PER curves, {bw} MHz", len(snr)) if progress else None
        c = per_curves(ts, sch, snr, progress=tick)
        bits = {r["scheme"]: r["bits"] for r in feedback_table(b_lat, bw)}
        bits.update({k: ae_feedback_bits(b_lat, 4, bw) for k in encoders})
        out["measured"][str(bw)] = {
            "n": n,
            "snr10": {s: {str(m): v for m, v in by.items()} for s, by in c.snr_at_target().items()},
            "sgcs": {
                **sgcs_table(ts, sch, sgcs_snr_db),
                "ideal V": {"sgcs": 1.0, "sgcs_std": 0.0, "sgcs_true": 1.0},
            },
            "bits": bits,
        }
    return out

"""Fair baselines: every standard SU compressed beamforming report on the autoencoder's channels.

The standard's SU reports for 4x2 with two streams are (bphi, bpsi) = (6,4) or (4,2) at grouping
Ng = 4 or 16 (HE; (4,2) and Ng = 16 are optional capabilities). The AE is judged against the
*best* standard mode that costs at most its feedback bits, not against the most expensive one,
and break-even counts are given against every mode (infinite where the AE saves nothing).
"""

from __future__ import annotations

import math

from .overhead import break_even_soundings

STANDARD_SU = ((6, 4, 4), (4, 2, 4), (6, 4, 16), (4, 2, 16))  # (bphi, bpsi, Ng)
TIE_DB = 0.1  # |AE - standard| at or below this is a tie: the seed's own "same PER" limit


def standard_name(bphi: int, bpsi: int, ng: int) -> str:
    """The scheme key of a standard report, e.g. ``"Givens (6,4) Ng=16"``."""
    return f"Givens ({bphi},{bpsi}) Ng={ng}"


STANDARD_NAMES = tuple(standard_name(*g) for g in STANDARD_SU)


def break_even_table(model_bits: dict[str, int], ae_bits: int, report_bits: dict[str, int]) -> dict:
    """{shared encoder: {standard mode: soundings to break even}} for every standard mode."""
    return {
        enc: {
            std: break_even_soundings(bits, ae_bits, report_bits[std])
            for std in STANDARD_NAMES
            if std in report_bits
        }
        for enc, bits in model_bits.items()
    }


def _verdict(diffs: list[float], tie_db: float) -> str:
    """'wins' / 'ties' / 'loses' / 'mixed' from AE-minus-standard SNR differences (dB)."""
    if all(abs(d) <= tie_db for d in diffs):
        return "ties"
    if all(d <= tie_db for d in diffs):
        return "wins"
    if all(d >= -tie_db for d in diffs):
        return "loses"
    return "mixed"


def equal_bits_verdict(
    snr10: dict, report_bits: dict[str, int], ae_name: str, ae_bits: int, mcs: list, tie_db: float = TIE_DB
) -> dict:
    """The AE scheme ``ae_name`` (``ae_bits`` per sounding) against the best standard mode that
    costs at most ``ae_bits``: the one with the lowest mean SNR at 10 % PER over ``mcs``.

    ``snr10[scheme][str(mcs)]`` in dB. Returns {"baseline", "baseline_bits", "ae_bits",
    "difference_db" {mcs: AE - baseline (negative: the AE needs less SNR)}, "verdict"} and the
    cheapest standard mode within ``tie_db`` of the AE at every MCS ("cheapest_as_good", or
    None). A verdict is "wins" (no MCS worse by more than ``tie_db``, one better), "ties" (all
    within ``tie_db``), "loses" or "mixed".
    """

    def finite(name: str) -> bool:
        by = snr10.get(name)
        return by is not None and all(by.get(str(m)) is not None and math.isfinite(by[str(m)]) for m in mcs)

    if not finite(ae_name):
        return {"baseline": None, "verdict": "n/a", "ae_bits": ae_bits}
    cands = [s for s in STANDARD_NAMES if s in report_bits and report_bits[s] <= ae_bits and finite(s)]
    out: dict = {"ae_bits": ae_bits, "baseline": None, "verdict": "n/a"}
    if cands:
        best = min(cands, key=lambda s: sum(snr10[s][str(m)] for m in mcs))
        diffs = {str(m): snr10[ae_name][str(m)] - snr10[best][str(m)] for m in mcs}
        out.update(
            baseline=best,
            baseline_bits=report_bits[best],
            difference_db=diffs,
            verdict=_verdict(list(diffs.values()), tie_db),
        )
    good = [
        s
        for s in STANDARD_NAMES
        if s in report_bits
        and finite(s)
        and all(snr10[s][str(m)] <= snr10[ae_name][str(m)] + tie_db for m in mcs)
    ]
    out["cheapest_as_good"] = min(good, key=lambda s: report_bits[s]) if good else None
    if good:
        out["cheapest_as_good_bits"] = report_bits[out["cheapest_as_good"]]
    out["tie_db"] = tie_db
    return out

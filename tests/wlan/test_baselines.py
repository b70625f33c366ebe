import math

from nnshare.wlan import baselines
from nnshare.wlan.beamforming import givens_report_bits
from nnshare.wlan.ofdm import feedback_tones
from nnshare.wlan.overhead import feedback_table

MCS = [4, 7, 9, 11]
BITS = {r["scheme"]: r["bits"] for r in feedback_table(4)}


def _snr(base: float, step: float = 7.0) -> dict:
    return {str(m): base + i * step for i, m in enumerate(MCS)}


def test_every_standard_su_report_is_a_baseline():
    assert baselines.STANDARD_NAMES == (
        "Givens (6,4) Ng=4",
        "Givens (4,2) Ng=4",
        "Givens (6,4) Ng=16",
        "Givens (4,2) Ng=16",
    )
    for (bphi, bpsi, ng), name in zip(baselines.STANDARD_SU, baselines.STANDARD_NAMES, strict=True):
        assert BITS[name] == givens_report_bits(feedback_tones(ng).size, 4, 2, bphi, bpsi)
    assert [BITS[n] for n in baselines.STANDARD_NAMES] == [3216, 1936, 1016, 616]


def test_break_even_against_every_mode():
    t = baselines.break_even_table({"ptq-t8": 27_824, "float32": 104_504}, 1040, BITS)
    assert t["ptq-t8"]["Givens (6,4) Ng=4"] == 27_824 / (3216 - 1040)
    assert t["ptq-t8"]["Givens (4,2) Ng=4"] == 27_824 / (1936 - 1040)
    assert t["float32"]["Givens (4,2) Ng=4"] == 104_504 / 896
    # the AE report is larger than both Ng = 16 reports: it never breaks even against them
    assert t["ptq-t8"]["Givens (6,4) Ng=16"] == math.inf
    assert t["float32"]["Givens (4,2) Ng=16"] == math.inf


def test_equal_bits_picks_the_best_report_within_the_ae_bits():
    snr = {
        "Givens (6,4) Ng=4": _snr(12.0),  # best overall but 3,216 bits: not at equal bits
        "Givens (4,2) Ng=4": _snr(12.1),
        "Givens (6,4) Ng=16": _snr(12.3),
        "Givens (4,2) Ng=16": _snr(12.6),
        "float32": _snr(12.32),
        "ptq-t3": _snr(12.9),
        "qat": _snr(11.8),
    }
    v = baselines.equal_bits_verdict(snr, BITS, "float32", 1040, MCS)
    assert v["baseline"] == "Givens (6,4) Ng=16" and v["baseline_bits"] == 1016
    assert v["verdict"] == "ties"
    assert all(math.isclose(d, 0.02) for d in v["difference_db"].values())
    assert v["cheapest_as_good"] == "Givens (6,4) Ng=16"
    lose = baselines.equal_bits_verdict(snr, BITS, "ptq-t3", 1040, MCS)
    assert lose["verdict"] == "loses" and lose["cheapest_as_good"] == "Givens (4,2) Ng=16"
    win = baselines.equal_bits_verdict(snr, BITS, "qat", 1040, MCS)
    assert win["verdict"] == "wins" and win["cheapest_as_good"] is None
    # a bigger AE report sees the Ng = 4 reports too
    big = baselines.equal_bits_verdict(snr, BITS, "float32", 2000, MCS)
    assert big["baseline"] == "Givens (4,2) Ng=4" and big["verdict"] == "loses"


def test_mixed_and_missing():
    snr = {"Givens (6,4) Ng=16": _snr(12.0), "ae": {"4": 11.5, "7": 19.5, "9": 26.0, "11": 33.0}}
    assert baselines.equal_bits_verdict(snr, BITS, "ae", 1040, MCS)["verdict"] == "mixed"
    snr["ae"]["11"] = float("nan")
    assert baselines.equal_bits_verdict(snr, BITS, "ae", 1040, MCS)["verdict"] == "n/a"
    # no standard report as small as the AE's: no equal-bits baseline
    snr["ae"]["11"] = 33.0
    assert baselines.equal_bits_verdict(snr, BITS, "ae", 600, MCS)["baseline"] is None

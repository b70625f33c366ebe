import math

import numpy as np
import pytest

from nnshare.wlan import ageing
from nnshare.wlan.doppler import doppler_hz
from nnshare.wlan.experiment import givens_scheme
from nnshare.wlan.report_ageing import ageing_sections
from nnshare.wlan.sounding import Sounding

SCH = {"Givens (6,4) Ng=16": givens_scheme(6, 4, 16), "Givens (4,2) Ng=16": givens_scheme(4, 2, 16)}
SNR = np.arange(9.0, 46.0, 1.0)


def test_no_doppler_means_no_ageing():
    aset = ageing.make_ageing_set(8, 0.0, seed=4, n_sin=4)
    r = ageing.snr10_vs_age(aset, SCH, [0.0, 0.1], SNR, mcs_list=(4, 11))
    for by in r.values():
        assert by["0.0"] == by["0.1"]
    s = Sounding()
    ex = {k: s.exchange_us(b) for k, b in zip(SCH, (1016, 616), strict=True)}
    g = ageing.goodput_vs_interval(aset, SCH, ex, [0.002, 0.05], 30.0)
    for name, by in g.items():
        a, b = by["0.002"], by["0.05"]
        assert a["per"] == b["per"] and a["phy_rate_mbps"] == b["phy_rate_mbps"]
        assert a["duty_cycle"] == pytest.approx(ex[name] * 1e-6 / 0.002)
        # the only difference is the sounding duty cycle
        assert a["goodput_mbps"] / (1 - a["duty_cycle"]) == pytest.approx(
            b["goodput_mbps"] / (1 - b["duty_cycle"])
        )
        assert sum(a["mcs_share"].values()) == pytest.approx(1.0)
        assert a["per"] <= 0.1 + 1e-12 or a["mcs_share"]["4"] > 0  # the chosen MCS meets 10 % when it can


def test_stale_csi_costs_snr_and_goodput():
    fd = doppler_hz(3.0)
    aset = ageing.make_ageing_set(12, fd, seed=5, n_sin=8)
    r = ageing.snr10_vs_age(aset, SCH, [0.0, 0.05], SNR, mcs_list=(4, 9))
    for name in (ageing.STALE_IDEAL, *SCH):
        assert r[name]["0.05"]["9"] > r[name]["0.0"]["9"] + 1.0, name
    s = Sounding()
    ex = {k: s.exchange_us(1016) for k in SCH}
    g = ageing.goodput_vs_interval(aset, SCH, ex, [0.01, 0.2], 30.0)
    for by in g.values():
        assert by["0.2"]["per"] > by["0.01"]["per"]
        assert by["0.2"]["goodput_mbps"] < by["0.01"]["goodput_mbps"]


def test_run_ageing_and_its_report():
    acfg = ageing.AgeingConfig(
        speeds_kmh=(1.2,), ages_s=(0.0, 0.02), intervals_s=(0.01, 0.05), goodput_snr_db=(30.0,), n=6
    )
    sch = {"Givens (6,4) Ng=16": SCH["Givens (6,4) Ng=16"], "ae": givens_scheme(4, 2, 16)}
    bits = {"Givens (6,4) Ng=16": 1016, "ae": 3216}
    res = ageing.run_ageing(acfg, sch, bits, {"ptq-t8": 3478}, ae_names=("ae",))
    assert res["per_second"]["ae"]["0.01"]["feedback_bits"] == pytest.approx(321_600)
    # the "AE" report is larger here: no break-even at any interval
    assert all(math.isinf(x) for x in res["break_even_s"]["ptq-t8"]["Givens (6,4) Ng=16"].values())
    sp = res["speeds"]["1.2"]
    assert sp["doppler_hz"] == pytest.approx(doppler_hz(1.2))
    assert set(sp["goodput"]["30.0"]) == set(sch)
    md = "\n".join(ageing_sections(res, [4, 7, 9, 11]))
    assert "1.2 km/h" in md and "Goodput" in md and "never" in md

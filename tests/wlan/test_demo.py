import json
import math
from dataclasses import replace

import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan.demo import QUICK, run_demo, run_with_config


def test_quick_demo_writes_its_report(tmp_path):
    res = run_demo(tmp_path, quick=True, progress=False)
    for name in ("wlan_report.md", "wlan_results.json", "wlan_per.png"):
        assert (tmp_path / name).stat().st_size > 500
    data = json.loads((tmp_path / "wlan_results.json").read_text())
    assert data["mode"] == "quick"
    by = {r["scheme"]: r for r in data["sharing"]}
    assert by["ptq-t8"]["shared_bits"] == 27_456 and by["float32"]["shared_bits"] == 104_192
    for m in ("4", "7", "9", "11"):
        assert math.isfinite(data["snr10"]["float32"][m])
        assert abs(data["shift_vs_float32"]["ptq-t8"][m]) <= 0.1
    assert data["snr10"]["ideal V"]["4"] < data["snr10"]["ideal V"]["11"]
    # fair baselines: the (6,4) Ng=16 report (1,016 bits) is the AE's equal-bits baseline
    eq = data["baselines"]["equal_bits"]["float32"]
    assert eq["baseline"] == "Givens (6,4) Ng=16" and eq["baseline_bits"] == 1016
    assert data["baselines"]["break_even"]["ptq-t8"]["Givens (6,4) Ng=16"] is None  # never (inf)
    assert data["break_even_soundings"]["ptq-t8"] == by["ptq-t8"]["total_bits"] / (3216 - 1040)
    rows = {r["scheme"]: r for r in data["airtime"]["4"]["rows"]}
    assert rows["Givens (6,4) Ng=4"]["ae_airtime"] == "wins"
    assert rows["Givens (6,4) Ng=16"]["ae_airtime"] == "ties"
    report = (tmp_path / "wlan_report.md").read_text()
    assert "Fair baselines" in report and "airtime (sounding exchange" in report
    assert "27,456" in report and "PASS" in report
    assert res["seed_check"]["pass"]


def test_quick_and_full_conflict(tmp_path):
    with pytest.raises(SpecError):
        run_demo(tmp_path, quick=True, full=True, progress=False)


def test_full_only_parts_on_a_tiny_run(tmp_path):
    cfg = replace(
        QUICK, n_train=150, epochs=1, qat=(), ptq=("float32", "ptq-t8"), n_test=6, snr_step=2.0,
        ageing=True, bandwidths=(40,), estimation=True,
    )  # fmt: skip
    res = run_with_config(tmp_path, cfg, progress=False)
    ag = res["ageing"]
    assert set(ag["speeds"]) == {"1.2", "3.0"} and ag["exchange_us"]["ptq-t8"] > 0
    assert set(ag["speeds"]["1.2"]["goodput"]["30.0"]) == {
        "Givens (6,4) Ng=16",
        "Givens (6,4) Ng=4",
        "ptq-t8",
    }
    m40 = res["bandwidths"]["measured"]["40"]
    assert m40["bits"]["ptq-t8"] == 31 * 64 + 16 and m40["bits"]["Givens (6,4) Ng=16"] == 1616
    assert len(res["estimation"]["snr10"]) == 4
    md = (tmp_path / "wlan_report.md").read_text()
    for head in ("Channel ageing", "Bandwidths 20-160 MHz", "smoothing", "Goodput"):
        assert head in md

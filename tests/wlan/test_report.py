import json
import math

from nnshare.wlan import report


def fake_results(shift8: float) -> dict:
    mcs = [4, 7, 9, 11]
    base = {"4": 12.0, "7": 19.0, "9": 24.0, "11": 29.0}
    snr10 = {
        "ideal V": {m: v - 0.3 for m, v in base.items()},
        "float32": dict(base),
        "ptq-t8": {m: v + shift8 for m, v in base.items()},
        "ptq-t3": {m: v + 0.5 for m, v in base.items()},
    }
    shifts = {s: {m: v - base[m] for m, v in by.items()} for s, by in snr10.items()}
    sg = {"sgcs": 0.98, "sgcs_std": 0.01, "sgcs_true": 0.98}
    snr = [10.0, 11.0, 12.0, 13.0]
    per = {s: {str(m): [0.9, 0.5, 0.1, 0.01] for m in mcs} for s in snr10}
    return {
        "mode": "test",
        "config": {"n_test": 5, "n_train": 10, "b_lat": 4, "sgcs_snr_db": 30.0},
        "timings_s": {"total_s": 1.0},
        "mcs": mcs,
        "snr_db": snr,
        "per": per,
        "snr10": snr10,
        "shift_vs_float32": shifts,
        "sgcs": {s: sg for s in snr10},
        "sharing": [
            {
                "scheme": "float32",
                "shared_bits": 104192,
                "total_bits": 104504,
                "reduction_percent": 0.0,
                "airtime_mcs0_us": 12158.4,
                "airtime_mcs7_us": 1224.0,
                "sgcs": 0.98,
            },
            {
                "scheme": "ptq-t8",
                "shared_bits": 27456,
                "total_bits": 27784,
                "reduction_percent": 73.65,
                "airtime_mcs0_us": 3236.8,
                "airtime_mcs7_us": 326.4,
                "sgcs": 0.98,
            },
        ],
        "feedback_bits": [{"scheme": "Givens (6,4) Ng=4", "reported_tones": 64, "bits": 3216}],
        "break_even_soundings": {"ptq-t8": 12.8},
        "bitlevel": [
            {
                "scheme": "float32",
                "mcs": 4,
                "snr_db": snr,
                "per_abstraction": [0.9, 0.5, 0.1, 0.0],
                "per_bitlevel": [0.9, 0.6, 0.1, 0.0],
                "snr10_abstraction": 12.0,
                "snr10_bitlevel": 12.2,
                "difference_db": 0.2,
                "packets_per_point": 10,
            },
            {
                "scheme": "ptq-t8",
                "mcs": 4,
                "snr_db": snr,
                "per_abstraction": [0.9, 0.5, 0.1, 0.0],
                "per_bitlevel": [0.9, 0.6, 0.1, 0.0],
                "snr10_abstraction": 12.0,
                "snr10_bitlevel": float("nan"),
                "difference_db": float("nan"),
                "packets_per_point": 10,
            },
        ],
    }


def test_verdict_passes_and_fails(tmp_path):
    ok = fake_results(0.05)
    md = report.markdown(ok)
    assert "PASS" in md and ok["seed_check"]["pass"]
    assert "27,456" in md and "73.7" in md and "Bit-level check" in md
    bad = fake_results(0.2)
    assert "FAIL" in report.markdown(bad) and not bad["seed_check"]["pass"]
    assert math.isclose(bad["seed_check"]["max_abs_shift_db"], 0.2)


def test_write_report_gives_strict_json(tmp_path):
    paths = report.write_report(tmp_path, fake_results(0.0))
    text = paths["json"].read_text()
    assert "NaN" not in text  # nan becomes null: strict JSON
    data = json.loads(text)
    assert data["bitlevel"][1]["snr10_bitlevel"] is None
    assert paths["plot"].stat().st_size > 1000 and paths["sgcs_plot"].exists()
    assert math.isclose(data["sharing"][1]["reduction_percent"], 73.65)

import json
from dataclasses import replace

import pytest

from nnshare.wlan.mu_demo import QUICK_MU, run_and_write
from nnshare.wlan.mu_report import markdown

TINY = replace(
    QUICK_MU,
    n_train=300,
    epochs=6,
    n_val=4,
    n_test=6,
    snr_lo=10.0,
    snr_hi=46.0,
    snr_step=4.0,
    ptq=("float32", "ptq-t8", "ptq-t4"),
    qat=(8,),
    qat_epochs=1,
    gptq=(8,),
    n_boot=50,
    more_users=(3,),
    smallest=True,
    max_evals=3,
    givens=((9, 7, 4), (7, 5, 16), (9, 7, 16)),
)


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    out = tmp_path_factory.mktemp("mu")
    r = run_and_write(out, TINY, progress=False)
    return out, r


def test_run_writes_json_and_report(res):
    out, r = res
    disk = json.loads((out / "wlan_mu_results.json").read_text())
    assert disk == r
    assert set(r["runs"]) == {"2u-zf", "3u-zf"}
    run = r["runs"]["2u-zf"]
    assert set(run["snr10"]) == {
        "ideal",
        "MU (9,7) Ng=4",
        "MU (7,5) Ng=16",
        "MU (9,7) Ng=16",
        "(6,4) Ng=4 (SU codebook)",
        "float32",
        "ptq-t8",
        "ptq-t4",
        "qat-t8",
        "gptq-t8",
        "smallest",
    }
    assert len(run["sum_goodput_mbps"]["ideal"]) == len(r["snr_db"]) == 10
    # ideal CSI reaches 10 % PER at every MCS, in MCS order
    s = [run["snr10"]["ideal"][m] for m in ("4", "7", "9", "11")]
    assert all(v is not None for v in s) and s == sorted(s)
    # 7-bit latents, the SNR fields on the Ng=16 tones: 896 + 8 + 80 bits
    assert r["feedback_bits"]["MU (9,7) Ng=4"] == 3336 and r["feedback_bits"]["AE"] == 984
    assert r["sharing"]["ptq-t8"]["shared_bits"] == 27_456
    assert r["sharing"]["qat-t8"]["shared_bits"] == 27_456  # QAT: the same 8-bit stream layout
    assert r["sharing"]["gptq-t8"]["shared_bits"] == 27_456  # GPTQ rounding: the same layout
    assert r["sharing"]["float32"]["shared_bits"] == 104_192
    srch = r["smallest_search"]
    assert srch["evaluations"] >= len(srch["trace"]) >= 1  # every measured stream (+ the float reference)
    assert srch["val_worst_shift_db"] <= TINY.tol_db  # the chosen stream meets the budget on val
    for _bytes, shift, ok in srch["trace"]:
        assert ok == (shift is not None and shift <= TINY.tol_db)
    assert r["sharing"]["smallest"]["total_bits"] == 8 * r["sharing"]["smallest"]["stream_bytes"]
    assert "ptq-t8" in r["target"] and "2u-zf" in r["target"]["ptq-t8"]
    eb = r["equal_bits"]["at_most_ae_bits"]["4"]
    assert eb["mode"] == "MU (7,5) Ng=16" and eb["bits"] == 808  # (9,7) Ng=16 costs 1,048 > 984
    pr = r["paired"]
    assert pr["run"] == "2u-zf" and pr["n_drops"] == TINY.n_test and pr["n_boot"] == 50
    assert set(pr["shift"]) == {"ptq-t8", "qat-t8", "gptq-t8", "smallest"}
    f10 = run["snr10"]["float32"]
    for by in pr["shift"].values():
        assert set(by) == {m for m, v in f10.items() if v is not None}
        for d in by.values():
            assert d["n_boot_crossed"] <= 50 and 0.0 <= (d["p_above_0.1"] or 0.0) <= 1.0
    md = (out / "wlan_mu_report.md").read_text()
    assert md == markdown(r, "nnshare demo --full")
    assert "| MU (9,7) Ng=4 | 3,336 |" in md and "27,456" in md and "Sum goodput" in md
    assert "**Paired shift against float32**" in md and "| AE 8-bit QAT (frozen decoder) |" in md


def test_follow_up_retrains_the_same_encoder(res):
    from nnshare.format.errors import SpecError
    from nnshare.wlan.mu_followup import follow_up
    from nnshare.wlan.mu_followup import markdown as fu_markdown

    _, r = res
    fu = follow_up(r, extra=("ptq-t8", "ptq-t10"), n_val=4, max_evals=3)
    st = fu["streams"]
    assert set(st) == {"float32", "ptq-t8", "ptq-t10", "smallest"}
    assert st["float32"]["worst_db"] == 0.0 and st["float32"]["holds"]
    # the retrained encoder is the stored run's: the same 8-bit stream size and MCS4 crossing region
    assert st["ptq-t8"]["total_bits"] == r["sharing"]["ptq-t8"]["total_bits"]
    assert st["ptq-t10"]["shared_bits"] == 3200 * 10 + 64 + 32 * 56
    assert "| ptq-t10 | " in fu_markdown(fu)
    bad = json.loads(json.dumps(r))
    bad["train_loss"][-1] += 1e-3
    with pytest.raises(SpecError, match="training loss"):
        follow_up(bad, n_val=4, max_evals=3)

from dataclasses import replace

import numpy as np

from nnshare.wlan import mu_experiment as E
from nnshare.wlan.mu_demo import QUICK_MU
from nnshare.wlan.mu_precise import markdown, run_precise, subset


def test_subset_keeps_the_first_drops():
    ts = E.make_test_set(5, 2, seed=4)
    s = subset(ts, 2)
    assert s.h_data.shape[0] == 2 and np.array_equal(s.noise_fb, ts.noise_fb[:2])


def test_run_precise_reports_every_variant():
    cfg = replace(QUICK_MU, n_train=300, epochs=6, qat=(8,), qat_epochs=1, n_boot=20, snr_hi=46.0)
    r = run_precise(cfg, n_drops=10, gptq_bits=(8,), smallest=False)
    assert set(r["sharing"]) == {"float32", "ptq-t8", "qat-t8", "gptq-t8"}
    assert r["sharing"]["gptq-t8"]["shared_bits"] == r["sharing"]["ptq-t8"]["shared_bits"] == 27_456
    assert r["latent_error"]["float32"] == {"rms": 0.0, "flip_rate": 0.0}
    assert r["latent_error"]["gptq-t8"]["rms"] < r["latent_error"]["ptq-t8"]["rms"]
    reached = {m for m, v in r["float32_snr10_coarse"].items() if v is not None}
    assert reached and set(r["paired"]["shift"]) == {"ptq-t8", "qat-t8", "gptq-t8"}
    for by in r["paired"]["shift"].values():
        assert set(by) == reached
    md = markdown(r)
    assert "| gptq-t8 | 27,824 |" in md and "10 drops" in md

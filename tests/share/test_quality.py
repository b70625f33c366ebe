"""Every encode reports the worst per-tensor SQNR and warns about tensors that decode to zeros or
lose more than the stated share of their energy."""

import math
import warnings

import numpy as np
import pytest

import nnshare
from nnshare.share.model import encode_model
from nnshare.share.quality import MAX_ENERGY_LOSS, assess, sqnr_db, warn_damage


def test_assess_finds_zeroed_and_damaged_tensors():
    b = np.arange(8, dtype=np.float32)
    x = {"a": np.ones(8, np.float32), "b": b, "z": np.zeros(3, np.float32), "i": np.arange(3)}
    y = {"a": np.zeros(8, np.float32), "b": b * 0.4, "z": np.zeros(3, np.float32), "i": np.arange(3)}
    q = assess(x, y, {"a": "bias", "b": "weight", "z": "bias"})
    assert q.zeroed == ["a"]  # z was zeros: not reported
    assert q.damaged == ["b"] and q.tensors[1].energy_loss == pytest.approx(0.36)
    assert q.worst.name == "a" and q.by_role()["weight"] == pytest.approx(sqnr_db(x["b"], y["b"]))
    with pytest.warns(nnshare.NNShareWarning) as rec:
        warn_damage(q)
    msgs = [str(r.message) for r in rec]
    assert len(msgs) == 2 and "decode to all zeros: a" in msgs[0]
    assert f"more than {MAX_ENERGY_LOSS:.0%}" in msgs[1] and "b (4.4 dB)" in msgs[1]


def test_encode_reports_the_worst_tensor():
    rng = np.random.default_rng(0)
    sd = {"big": rng.normal(size=(32, 32)).astype(np.float32),
          "small": rng.normal(size=(8, 8)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 8 bits: nothing to warn about
        enc = encode_model(sd, "ptq-t8")
    w = enc.quality.worst
    assert w.name in sd and 35 < w.sqnr_db < 50 and "worst tensor SQNR" in enc.quality.summary()
    with pytest.warns(nnshare.NNShareWarning, match="lose more than 25%"):
        encode_model(sd, nnshare.uniform(1, symmetric=False))
    assert math.isinf(sqnr_db(sd["big"], sd["big"]))

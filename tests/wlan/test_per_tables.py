import numpy as np
import pytest

from nnshare.format.errors import FormatError, SpecError
from nnshare.wlan import per_tables
from nnshare.wlan.mcs import mcs


def test_shipped_tables_are_monotone_and_plausible():
    tabs = per_tables.load_tables()
    assert sorted(tabs) == [4, 7, 9, 11]
    prev = 0.0
    for m in (4, 7, 9, 11):
        t = tabs[m]
        assert t.cwer[0] > 0.9 and t.cwer[-1] < 0.01
        fine = np.arange(t.snr_db[0] - 1, t.snr_db[-1] + 2, 0.05)
        per = t.per_at(fine)
        assert np.all(np.diff(per) <= 1e-12)
        s10 = t.snr_at_per(0.1)
        assert t.per_at(s10) == pytest.approx(0.1, rel=1e-3)
        assert s10 > prev + 4  # MCS thresholds are several dB apart
        prev = s10
    # rough sanity range for n=1944 LDPC, ~1000-byte packets
    assert 9.5 < tabs[4].snr_at_per(0.1) < 12
    assert 26.5 < tabs[11].snr_at_per(0.1) < 30


def test_length_scaling():
    t = per_tables.table(9)
    c = t.cwer_at(23.0)
    assert t.per_at(23.0, codewords=1) == pytest.approx(c)
    assert t.per_at(23.0) == pytest.approx(1 - (1 - c) ** mcs(9).codewords)
    assert mcs(4).codewords == 6 and mcs(7).codewords == 5


def test_errors():
    with pytest.raises(SpecError):
        per_tables.table(5)
    with pytest.raises(FormatError):
        per_tables._from_dict({"tables": {"4": {"snr_db": [1]}}})
    with pytest.raises(SpecError):
        mcs(3)


def test_generator_small():
    out = per_tables.generate((4,), max_codewords=20, max_errors=5, grids={4: (8.0, 8.25)}, seed=1)
    t = out["tables"]["4"]
    assert t["snr_db"] == [8.0, 8.25] and all(e >= 5 for e in t["errors"])

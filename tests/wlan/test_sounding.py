import math

import pytest

from nnshare.errors import SpecError
from nnshare.link.airtime import Link
from nnshare.link.phy import Phy
from nnshare.wlan import overhead
from nnshare.wlan.sounding import Sounding, airtime_break_even


def test_exchange_parts_by_hand():
    s = Sounding()  # 4 antennas, 20 MHz, report at MCS4 1 SS, NDPA at 24 Mbit/s
    # NDPA 25 octets: 20 + 4 * ceil((16 + 200 + 6) / 96) = 32 us
    assert s.ndpa_us == 32.0
    # NDP: 20 legacy + 4 RL-SIG + 8 HE-SIG-A + 4 HE-STF + 4 LTFs x (6.4 + 1.6) + 4 PE = 72 us
    assert s.ndp_us == pytest.approx(72.0)
    # AE report 1,040 bits = 130 octets + 35 of MAC = 165 octets at MCS4 (702 bits/symbol): 2 symbols
    assert Sounding.report_octets(1040) == 165
    assert s.report_us(1040) == pytest.approx(20 + 4 + 8 + 4 + 7.2 + 2 * 13.6)
    # (6,4) Ng=4: 3,216 bits -> 402 + 35 = 437 octets -> ceil(3512 / 702) = 6 symbols
    assert s.report_us(3216) == pytest.approx(43.2 + 6 * 13.6)
    fixed = 43 + 67.5 + 32 + 16 + 72 + 16
    assert s.fixed_us == pytest.approx(fixed)
    assert s.exchange_us(1040) == pytest.approx(fixed + 43.2 + 27.2)
    assert s.duty_cycle(1040, 0.01) == pytest.approx(s.exchange_us(1040) * 1e-6 / 0.01)
    assert sum(v for k, v in s.breakdown(616).items() if k not in ("report_octets", "exchange_us")) == (
        pytest.approx(s.exchange_us(616))
    )


def test_ndp_grows_with_the_sounded_antennas():
    assert Sounding(nt=2).ndp_us == pytest.approx(36 + 2 * 8 + 4)
    assert Sounding(nt=8).ndp_us == pytest.approx(36 + 8 * 8 + 4)


def test_bad_sounding_is_refused():
    with pytest.raises(SpecError):
        Sounding(nt=9)
    with pytest.raises(SpecError):
        Sounding(report_mcs=12)
    with pytest.raises(SpecError):
        Sounding.report_octets(-1)
    with pytest.raises(SpecError):
        Sounding().duty_cycle(100, 0.0)


def test_airtime_overhead_table():
    bits = {"Givens (6,4) Ng=4": 3216, "Givens (6,4) Ng=16": 1016, "AE": 1040}
    t = overhead.airtime_overhead(bits, "AE", {"ptq-t8": 3478}, intervals_s=(0.01, 0.1))
    rows = {r["scheme"]: r for r in t["rows"]}
    s = Sounding()
    ae, ng4 = s.exchange_us(1040), s.exchange_us(3216)
    assert rows["Givens (6,4) Ng=4"]["ae_saving_percent"] == pytest.approx(100 * (1 - ae / ng4))
    assert rows["Givens (6,4) Ng=4"]["ae_airtime"] == "wins"
    # 1,016 and 1,040 bits both fit 2 symbols at MCS4: the same airtime
    assert rows["Givens (6,4) Ng=16"]["ae_airtime"] == "ties"
    assert rows["AE"]["per_second"]["0.01"]["feedback_bits"] == pytest.approx(104_000)
    assert rows["AE"]["per_second"]["0.1"]["airtime_ms"] == pytest.approx(ae / 1000 / 0.1)
    m_us = Link(Phy(mcs=4)).airtime_us(3478)
    be = t["break_even"]["ptq-t8"]
    assert be["model_us"] == pytest.approx(m_us)
    assert be["Givens (6,4) Ng=4"]["soundings"] == pytest.approx(m_us / (ng4 - ae))
    assert be["Givens (6,4) Ng=4"]["seconds"]["0.1"] == pytest.approx(0.1 * m_us / (ng4 - ae))
    assert be["Givens (6,4) Ng=16"]["soundings"] == math.inf
    assert airtime_break_even(10.0, 5.0, 4.0) == math.inf

"""HE/EHT rates and PPDU durations against values worked by hand from the standard's formulas."""

import pytest

from nnshare.format.errors import SpecError
from nnshare.link.phy import Phy, legacy_ppdu_us


@pytest.mark.parametrize(
    "kw, n_dbps, rate",
    [
        # N_DBPS = floor(N_SD * N_BPSCS * N_SS * R); rate = N_DBPS / (12.8 + GI)
        ({"mcs": 0}, 117, 117 / 13.6),  # 234 * 1 * 1/2
        ({"mcs": 4}, 702, 702 / 13.6),  # 234 * 4 * 3/4 = 51.6 Mbit/s
        ({"mcs": 7, "bandwidth_mhz": 80, "nss": 2, "gi_us": 3.2}, 9800, 612.5),  # 980*6*2*5/6 / 16
        ({"mcs": 11, "bandwidth_mhz": 80}, 8166, 8166 / 13.6),  # floor(8166.67) -> 600.4
        ({"mcs": 11, "bandwidth_mhz": 160, "nss": 4}, 65333, 65333 / 13.6),  # 4803.9 Mbit/s
        ({"mcs": 5, "bandwidth_mhz": 40, "nss": 3, "gi_us": 1.6}, 5616, 390.0),  # 468*6*3*2/3 / 14.4
        ({"mcs": 13, "bandwidth_mhz": 320, "standard": "be"}, 39200, 39200 / 13.6),  # 3920*12*5/6
    ],
)
def test_rates(kw, n_dbps, rate):
    p = Phy(**kw)
    assert p.n_dbps == n_dbps
    assert p.rate_mbps == pytest.approx(rate)


def test_every_he_rate_is_monotone_in_mcs_streams_and_width():
    for bw in (20, 40, 80, 160):
        for nss in (1, 2, 3, 4):
            for gi in (0.8, 1.6, 3.2):
                rates = [Phy(m, bw, nss, gi).rate_mbps for m in range(12)]
                assert rates == sorted(rates)
                if nss > 1:
                    assert rates[0] > Phy(0, bw, nss - 1, gi).rate_mbps


@pytest.mark.parametrize(
    "kw, us",
    [
        ({}, 8 + 8 + 4 + 4 + 8 + 4 + 1 * (6.4 + 0.8)),  # 43.2: 1 HE-LTF 2x
        ({"nss": 2, "gi_us": 1.6}, 36 + 2 * (6.4 + 1.6)),  # 52.0
        ({"nss": 3, "gi_us": 3.2}, 36 + 4 * (12.8 + 3.2)),  # 100.0: 3 streams need 4 LTFs
        ({"ltf": 1}, 36 + 1 * (3.2 + 0.8)),
        ({"standard": "be"}, 8 + 8 + 4 + 4 + 8 + 2 * 4 + 4 + 7.2),  # U-SIG + 2 EHT-SIG symbols
    ],
)
def test_preamble(kw, us):
    assert Phy(**kw).preamble_us == pytest.approx(us)


def test_data_field_and_ppdu():
    p = Phy()
    # 1564 octets: ceil((16 + 12512) / 117) = 108 symbols of 13.6 us
    assert p.data_symbols(1564) == 108
    assert p.data_us(1564) == pytest.approx(108 * 13.6)
    assert p.ppdu_us(1564) == pytest.approx(43.2 + 108 * 13.6)
    assert Phy(pe_us=8).ppdu_us(1564) == pytest.approx(43.2 + 108 * 13.6 + 8)


def test_legacy_control_frame():
    # 56-octet Block Ack at 24 Mbit/s: 20 + 4 * ceil((16 + 448 + 6) / 96) = 40 us
    assert legacy_ppdu_us(56, 24) == 40.0
    assert legacy_ppdu_us(14, 6) == 20 + 4 * 6  # an ACK at 6 Mbit/s: 134 bits / 24 -> 6 symbols
    with pytest.raises(SpecError, match="legacy rate"):
        legacy_ppdu_us(56, 25)


@pytest.mark.parametrize(
    "kw",
    [{"mcs": 12}, {"mcs": -1}, {"mcs": 14, "standard": "be"}, {"mcs": 1.0}, {"bandwidth_mhz": 320},
     {"bandwidth_mhz": 60}, {"nss": 0}, {"nss": 9}, {"gi_us": 0.4}, {"standard": "ac"},
     {"ltf": 3}, {"ltf": 1, "gi_us": 1.6}, {"gi_us": 3.2, "ltf": 2}, {"pe_us": 5}],
)
def test_bad_configs(kw):
    with pytest.raises(SpecError):
        Phy(**kw)

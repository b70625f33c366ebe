"""Transfer airtime: fragments, A-MPDU limits and per-PPDU costs, worked by hand."""

import pytest

from nnshare.format.errors import SpecError
from nnshare.link import Link, Phy, parse_link

FIXED = 43 + 67.5 + 43.2 + 16 + 40  # AIFS + mean backoff + preamble + SIFS + Block Ack = 209.7 us


def test_per_ppdu_costs():
    lk = Link()
    assert lk.mac.aifs_us == 16 + 3 * 9
    assert lk.mac.backoff_us == 7.5 * 9
    assert lk.ba_us == 40.0
    assert lk.per_ppdu_fixed_us == pytest.approx(FIXED)
    # EHT: 1024-bit bitmap, 152-octet BA: 20 + 4 * ceil((16 + 1216 + 6) / 96) = 72 us
    assert Link(Phy(standard="be")).ba_us == 72.0


def test_mpdu_and_subframes():
    lk = Link()
    assert lk.mpdu_octets(1500) == 26 + 8 + 22 + 1500 + 4  # 1560
    assert lk.subframe_octets(1500) == 1564
    assert lk.subframe_octets(1001) == 1068  # 4 + 1061 -> padded to 1068
    assert lk.subframe_octets(1001, last=True) == 1065
    assert lk.psdu_octets([1500, 1500, 1001]) == 1564 * 2 + 1065


def test_one_fragment():
    a = Link().transfer(1500)
    assert (a.fragments, a.ppdus) == (1, 1)
    assert a.data_us == pytest.approx(108 * 13.6)  # ceil((16 + 8 * 1564) / 117)
    assert a.total_us == pytest.approx(FIXED + 108 * 13.6)


def test_aggregation_limits():
    # MCS0 20 MHz: PPDU <= 5484 us leaves 5440.8 us = 400 symbols = 5848 octets: 3 subframes
    assert Link().mpdus_per_ppdu() == 3
    a = Link().transfer(10_000)  # 7 fragments -> PPDUs of 3, 3, 1
    assert (a.fragments, a.ppdus) == (7, 3)
    # full PPDU: ceil((16 + 8 * 4692) / 117) = 321 symbols; last: 1000-byte fragment,
    # ceil((16 + 8 * 1064) / 117) = 73 symbols
    assert a.data_us == pytest.approx((2 * 321 + 73) * 13.6)
    assert a.total_us == pytest.approx(3 * FIXED + 715 * 13.6)
    assert a.fixed_us == pytest.approx(3 * FIXED)
    # the count limit binds at high rates: 256 MPDUs per HE A-MPDU, 1024 in EHT
    assert Link(Phy(11, 160, 4)).mpdus_per_ppdu() == 256
    assert Link(Phy(13, 320, 4, standard="be")).mpdus_per_ppdu() == 1024
    # the duration limit binds for large MPDUs at 20 MHz MCS11: 5440.8 us -> 400 symbols
    lk = Link(Phy(11), fragment_bytes=11_394)  # an 11,454-octet MPDU
    n = lk.mpdus_per_ppdu()
    assert lk.phy.ppdu_us(lk.psdu_octets([11_394] * n)) <= 5484 < lk.phy.ppdu_us(
        lk.psdu_octets([11_394] * (n + 1)))


def test_mpdu_limit():
    Link(fragment_bytes=11_454 - 60)
    with pytest.raises(SpecError, match="11454"):
        Link(fragment_bytes=11_454 - 59)


def test_airtime_is_monotone_and_inverts():
    lk = Link(Phy(7))
    prev = 0.0
    for n in range(1, 20_000, 97):
        t = lk.airtime_us(n)
        assert t >= prev
        prev = t
    for ms in (0.3, 1.5, 4.0):
        b = lk.max_stream_bytes(ms)
        assert lk.airtime_us(b) <= ms * 1000 < lk.airtime_us(b + 1)
    assert Link().max_stream_bytes(0.1) == 0  # below one PPDU's fixed cost


def test_parse_link():
    lk = parse_link("mcs=7, bw=80MHz, nss=2, gi=1.6, frag=3000")
    assert lk.phy == Phy(7, 80, 2, 1.6) and lk.fragment_bytes == 3000
    assert parse_link(None) == Link()
    assert parse_link("std=802.11be,mcs=13,bw=320").phy.rate_mbps == pytest.approx(39200 / 13.6)
    for bad in ("mcs", "speed=3", "mcs=fast", "mcs=12", "frag=0"):
        with pytest.raises(SpecError):
            parse_link(bad)

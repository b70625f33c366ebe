import pytest

from nnshare.format.errors import SpecError
from nnshare.link import Link, Phy
from nnshare.mixed.budget import Budget


def test_size_limits_in_bits():
    assert Budget(bits=27456).total_bits == 27456
    assert Budget(bytes=3432).total_bits == 27456
    # 1.5 ms at HE MCS0 20 MHz: one PPDU, 209.7 us fixed + 94 symbols of 13.6 us carry 1308
    # stream bytes (ceil((16 + 8 * (1308 + 64)) / 117) = 94); one more byte needs a 95th symbol.
    assert Budget(airtime_ms=1.5, link=Link()).total_bits == 8 * 1308
    assert Budget(airtime_ms=0.1, link=Link()).total_bits == 0  # not even one PPDU
    fast = Budget(airtime_ms=1.5, link=Link(Phy(7, 80, 2))).total_bits
    assert fast == 8 * Link(Phy(7, 80, 2)).max_stream_bytes(1.5) > 20 * 8 * 1308
    assert Budget(bops=1e6).total_bits is None


def test_describe():
    assert Budget(bytes=10).describe() == "10 bytes (80 bits)"
    assert "1 ms on HE MCS0" in Budget(airtime_ms=1, link=Link()).describe()


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"bits": 10, "bytes": 2},
        {"airtime_ms": 1.0},
        {"link": Link(), "bits": 8},
        {"airtime_ms": 1.0, "link": 54.0},
        {"bits": 0},
        {"bits": -5},
        {"bits": 2.5},
        {"bytes": float("inf")},
        {"bits": True},
        {"bits": "100"},
    ],
)
def test_bad_budgets(kw):
    with pytest.raises(SpecError):
        Budget(**kw)

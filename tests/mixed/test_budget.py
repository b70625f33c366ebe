import pytest

from nnshare.format.errors import SpecError
from nnshare.mixed.budget import Budget


def test_size_limits_in_bits():
    assert Budget(bits=27456).total_bits == 27456
    assert Budget(bytes=3432).total_bits == 27456
    # 2 ms at 6.5 Mbit/s = 13000 bits; rounding down never exceeds the airtime.
    assert Budget(airtime_ms=2, rate_mbps=6.5).total_bits == 13000
    assert Budget(airtime_ms=0.001, rate_mbps=1.5).total_bits == 1
    assert Budget(bops=1e6).total_bits is None


def test_describe():
    assert Budget(bytes=10).describe() == "10 bytes (80 bits)"
    assert "ms at" in Budget(airtime_ms=1, rate_mbps=54).describe()


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"bits": 10, "bytes": 2},
        {"airtime_ms": 1.0},
        {"rate_mbps": 6.0, "bits": 8},
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

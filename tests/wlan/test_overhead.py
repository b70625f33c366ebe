import math

import pytest

from nnshare.wlan import overhead


def test_airtime_and_feedback_bits():
    # 27,784-bit stream at MCS0 (117 data bits per 13.6 us symbol)
    assert overhead.airtime_us(27_784, 0) == pytest.approx(math.ceil(27_800 / 117) * 13.6)
    assert overhead.airtime_us(100, 7) == pytest.approx(13.6)
    assert overhead.airtime_us(27_784, 4) == pytest.approx(math.ceil(27_800 / 702) * 13.6)  # any MCS
    # whole transfer: 3,473 bytes = 3 fragments in one PPDU at MCS0, plus 209.7 us of fixed costs
    assert overhead.sharing_airtime_us(3_473, 0) == pytest.approx(
        209.7 + math.ceil((16 + 8 * (1564 * 2 + 473 + 64)) / 117) * 13.6)
    assert overhead.ae_feedback_bits(4) == 16 * 16 * 4 + 16
    rows = {r["scheme"]: r["bits"] for r in overhead.feedback_table(4)}
    assert rows["Givens (6,4) Ng=4"] == 3216 and rows["Givens (4,2) Ng=16"] == 616
    assert overhead.break_even_soundings(2000, 1000, 3000) == 1.0
    assert overhead.break_even_soundings(2000, 3000, 1000) == math.inf

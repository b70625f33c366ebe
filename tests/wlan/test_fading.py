"""MPDU loss from the PHY abstraction on a fading channel."""

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.link import Link, Phy
from nnshare.link.blockack import deliver
from nnshare.wlan.fading import FadingLoss, codewords
from nnshare.wlan.mcs import mcs


def test_loss_falls_with_snr_and_grows_with_length():
    lo, mid, hi = (FadingLoss(7, s).mean_per(1560, 60) for s in (8.0, 15.0, 30.0))
    assert lo > 0.5 > mid > hi and hi < 1e-3
    f = FadingLoss(7, 15.0)
    rng = np.random.default_rng(0)
    sinr = f.sinr_eff_db(rng)
    p = f._per(np.array([100, 1560, 11454]), sinr)
    assert p[0] <= p[1] <= p[2]
    assert codewords(1560, 7) == -(-8 * 1560 // mcs(7).k)


def test_delivery_over_fading_is_bit_exact():
    data = bytes(range(256)) * 30
    rng = np.random.default_rng(1)
    retx = 0
    for _ in range(10):  # block fading: a whole PPDU is either clean or mostly lost
        d = deliver(data, Link(Phy(7)), FadingLoss(7, 13.0), rng=rng, retry_limit=30)
        assert d.data == data
        retx += d.retransmissions
    assert retx > 0


def test_bad_fading_configs():
    for kw in ({"mcs_index": 5, "snr_db": 10}, {"mcs_index": 7, "snr_db": 10, "model": "X"},
               {"mcs_index": 7, "snr_db": 10, "nss": 3}):
        with pytest.raises(SpecError):
            FadingLoss(**kw)

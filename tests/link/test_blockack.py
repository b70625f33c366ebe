"""Block Ack delivery: every loss pattern of a small window, retry limit, resume, loss models."""

import itertools

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.link import Link, Phy
from nnshare.link.blockack import DeliveryError, PatternLoss, RateLoss, deliver
from nnshare.link.fragment import FragmentError, Reassembler, fragment

DATA = bytes(range(47))  # 5 fragments of 10 bytes (the last 7)
SMALL = Link(Phy(7), fragment_bytes=10, ba_buffer=3)  # window and A-MPDU of 3 MPDUs
K = 12


def test_every_loss_pattern_of_a_small_window():
    clean = deliver(DATA, SMALL)
    assert (clean.ppdus, clean.transmissions, clean.retransmissions) == (2, 5, 0)
    for pattern in itertools.product((False, True), repeat=K):
        d = deliver(DATA, SMALL, PatternLoss(pattern), retry_limit=K)
        assert d.data == DATA
        losses = sum(pattern[: d.transmissions])
        assert d.transmissions == 5 + losses and d.retransmissions == losses
        assert int(d.attempts.sum()) == d.transmissions and d.attempts.min() >= 1
        assert d.airtime_us >= clean.airtime_us
        if losses == 0:
            assert d.airtime_us == clean.airtime_us
        assert d.ppdus >= -(-d.transmissions // 3)
        # Block Ack window: fragment i is sent only once fragment i - 3 is acknowledged
        assert np.all(d.arrival_us[3:] > d.arrival_us[:-3])


def test_retry_limit_and_resume_for_every_pattern():
    for pattern in itertools.product((False, True), repeat=8):
        try:
            d = deliver(DATA, SMALL, PatternLoss(pattern), retry_limit=1)
        except DeliveryError as e:
            assert "lost 2 times (retry limit 1)" in str(e)
            r = e.receiver
            missing = r.missing() if r.count else list(range(5))
            assert missing
            resumed = deliver(DATA, SMALL, receiver=r)  # only what the bitmap lacks goes again
            assert resumed.data == DATA and resumed.transmissions == len(missing)
        else:
            assert d.data == DATA and (d.attempts <= 2).all()


def test_stop_and_resume_sends_nothing_twice():
    data = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    lk = Link(Phy(4))
    full = deliver(data, lk)
    part = deliver(data, lk, stop_after_us=full.airtime_us / 2)
    assert not part.complete and 0 < len(part.receiver.parts) < full.fragments
    rest = deliver(data, lk, receiver=part.receiver)
    assert rest.data == data
    assert part.transmissions + rest.transmissions == full.fragments
    with pytest.raises(FragmentError, match="another transfer"):
        deliver(data[:-1], lk, receiver=part.receiver)


def test_rate_loss_is_bit_exact_and_costs_airtime():
    data = bytes(range(256)) * 40
    lk = Link(Phy(7))
    clean = deliver(data, lk)
    assert clean.airtime_us == pytest.approx(lk.airtime_us(len(data)))  # same model, no loss
    for p in (0.1, 0.3):
        d = deliver(data, lk, p, rng=3)
        assert d.data == data and d.retransmissions > 0 and d.airtime_us > clean.airtime_us
    assert deliver(data, lk, RateLoss(0.0)).transmissions == clean.fragments


def test_bad_arguments():
    for bad in (-0.1, 1.0, "lots", True):
        with pytest.raises(SpecError):
            deliver(DATA, SMALL, bad)
    with pytest.raises(SpecError):
        deliver(DATA, SMALL, retry_limit=-1)
    r = Reassembler()
    r.add(fragment(b"other stream!", 10)[0])
    with pytest.raises(FragmentError):
        deliver(DATA, SMALL, receiver=r)

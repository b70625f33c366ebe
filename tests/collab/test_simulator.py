import numpy as np
import pytest

from nnshare.collab.codecs import codec
from nnshare.collab.feedback import ErrorFeedback
from nnshare.collab.simulator import digits, fedavg, split
from nnshare.format.errors import SpecError


@pytest.fixture(scope="module")
def data():
    return digits()


def test_split_covers_every_sample_once():
    y = np.repeat(np.arange(10), 50)
    rng = np.random.default_rng(0)
    for alpha in (None, 1.0, 0.1):
        parts = split(y, 7, alpha, rng)
        assert len(parts) == 7
        allidx = np.sort(np.concatenate(parts))
        np.testing.assert_array_equal(allidx, np.arange(len(y)))


def test_compressed_fedavg_learns_with_a_fraction_of_the_bytes(data):
    fp = fedavg(data, codec("fp32"), clients=5, rounds=6, seed=0)
    tcq = fedavg(data, ErrorFeedback(codec("rotated", bits=1, nu=4)), clients=5, rounds=6, seed=0)
    assert fp.accuracy[-1] > 0.6
    assert tcq.accuracy[-1] > fp.accuracy[-1] - 0.08
    assert sum(tcq.uplink) * 25 < sum(fp.uplink)  # 1 bit per parameter: ~30x fewer bytes


def test_bad_replies_are_left_out_and_the_round_goes_on(data):
    def tamper(r, c, b):
        if c == 1:
            return b[: len(b) // 2]  # truncated on the wire
        if c == 2 and r > 0:
            return stale[0]  # a reply coded against an earlier broadcast
        if c == 2:
            stale.append(b)
        return b

    stale: list[bytes] = []
    run = fedavg(data, codec("sign"), clients=4, rounds=3, seed=1, tamper=tamper)
    assert run.rejected == 3 + 2  # client 1 every round, client 2 in rounds 1 and 2
    assert sorted((r, c) for r, c, _ in run.rejections) == [(0, 1), (1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(why.startswith("FormatError") for _, _, why in run.rejections)
    assert len(run.accuracy) == 3 and run.accuracy[-1] > 0.3


def test_one_codec_per_client(data):
    one = fedavg(data, codec("qsgd", levels=4), clients=3, rounds=2, seed=1)
    each = fedavg(data, [codec("qsgd", levels=4)] * 3, clients=3, rounds=2, seed=1)
    assert each.accuracy == one.accuracy and each.uplink == one.uplink
    mixed = fedavg(data, [codec("qsgd", levels=1), codec("qsgd", levels=4), codec("fp32")],
                   clients=3, rounds=1, seed=1)
    assert one.uplink[0] < mixed.uplink[0]  # the fp32 client's reply costs far more
    with pytest.raises(SpecError, match="2 codecs for 3 clients"):
        fedavg(data, [codec("fp32")] * 2, clients=3, rounds=1)


def test_a_client_handed_another_clients_state_is_left_out(data):
    ef = ErrorFeedback(codec("rotated", bits=1, nu=4))
    run = fedavg(data, ef, clients=4, rounds=2, seed=1, state_of=lambda r, c: 3 if (r, c) == (1, 0) else c)
    assert [(r, c) for r, c, _ in run.rejections] == [(1, 0)]
    assert "belongs to client '3'" in run.rejections[0][2] and run.rejections[0][2].startswith("SpecError")
    assert len(run.accuracy) == 2


def test_rejections_name_round_client_and_error(data):
    run = fedavg(data, codec("sign"), clients=3, rounds=2, seed=2,
                 tamper=lambda r, c, b: b[:-1] if (r, c) == (1, 2) else b)
    assert [(r, c) for r, c, _ in run.rejections] == [(1, 2)]
    assert run.rejections[0][2].startswith("FormatError")

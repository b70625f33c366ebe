import numpy as np
import pytest

from nnshare.wlan import abstraction, link
from nnshare.wlan.per_tables import table


@pytest.mark.parametrize("bps", [4, 6, 8, 10])
def test_rbir_curve(bps):
    c = abstraction.rbir_curve(bps)
    assert np.all(np.diff(c) >= 0)
    assert c[-1] == pytest.approx(1.0, abs=1e-6)
    assert c[0] < 0.01
    # at 0 dB the QAM mutual information is close to (below) the Shannon limit of 1 bit
    assert 0.8 < abstraction.rbir(0.0, bps) * bps <= 1.0
    for s in (0.0, 10.0, 20.0):
        r = abstraction.rbir(s, bps)
        if r < 0.999:
            assert abstraction.rbir_inverse(r, bps) == pytest.approx(s, abs=0.01)


def test_effective_sinr_of_flat_channel_is_the_sinr():
    sinr = np.full((3, 234, 2), 10**2.0)
    assert np.allclose(abstraction.effective_sinr_db(sinr, 9), 20.0, atol=0.01)
    per = abstraction.packet_error_rate(sinr, 9)
    assert np.allclose(per, table(9).per_at(20.0), rtol=1e-3)
    # a spread of SINRs with the same mean in dB is worse than flat (concavity of RBIR)
    spread = np.concatenate([np.full((1, 117, 2), 10**1.5), np.full((1, 117, 2), 10**2.5)], 1)
    assert abstraction.effective_sinr_db(spread, 9)[0] < 20.0


def test_mmse_sinr():
    g = np.zeros((1, 2, 2), complex)
    g[0, 0, 0], g[0, 1, 1] = 2.0, 1.0
    s = link.mmse_sinr(g, 10.0)  # N0 = 0.1, orthogonal streams
    assert np.allclose(s, [[4 / 0.1, 1 / 0.1]])
    h = np.eye(2, 4)[None].astype(complex)
    v = np.eye(4, 2)[None].astype(complex)
    assert np.allclose(link.effective_channel(h, v), np.eye(2) / np.sqrt(2))

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan import ldpc_code


@pytest.mark.parametrize("rate,k", [("3/4", 1458), ("5/6", 1620)])
def test_802_11_code_structure_and_encoding(rate, k):
    proto = ldpc_code.prototype(rate)
    assert proto.shape == ((1944 - k) // 81, 24)
    # 802.11 parity part: weight-3 column (1, 0, 1 shifts) then a dual diagonal of zeros
    par = proto[:, 24 - proto.shape[0] :]
    first = par[:, 0][par[:, 0] >= 0]
    assert len(first) == 3 and sorted(first.tolist()) == [0, 1, 1]
    for j in range(1, par.shape[1]):
        assert par[j - 1, j] == 0 and par[j, j] == 0
    c = ldpc_code.code(rate)
    assert c.k == k and c.n == 1944
    rng = np.random.default_rng(0)
    info = rng.integers(0, 2, (8, k), dtype=np.uint8)
    cw = c.encode(info)
    assert np.array_equal(cw[:, :k], info)
    assert not np.any((c.h @ cw.T.astype(np.int64)) % 2)
    # noiseless LLRs decode to the codeword; a few flipped bits are corrected
    llr = np.where(cw == 0, 4.0, -4.0)
    llr[:, ::97] *= -1
    assert np.array_equal(c.decode(llr), cw)


def test_bad_input():
    with pytest.raises(SpecError, match="rate"):
        ldpc_code.prototype("1/2")
    with pytest.raises(SpecError, match="information bits"):
        ldpc_code.code("5/6").encode(np.zeros((1, 10), np.uint8))

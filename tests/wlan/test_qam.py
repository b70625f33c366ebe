import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan import qam


@pytest.mark.parametrize("bps", [2, 4, 6, 8, 10])
def test_unit_energy_gray_and_llr_round_trip(bps):
    rng = np.random.default_rng(bps)
    bits = rng.integers(0, 2, 600 * bps, dtype=np.uint8)
    x = qam.modulate(bits, bps)
    all_syms = qam.modulate(((np.arange(2**bps)[:, None] >> np.arange(bps - 1, -1, -1)) & 1).reshape(-1), bps)
    assert np.mean(np.abs(all_syms) ** 2) == pytest.approx(1.0)
    llr = qam.llr(x, 0.01, bps)
    assert np.array_equal((llr < 0).astype(np.uint8), bits)
    amp, labels = qam.pam(bps // 2)
    assert np.all(np.abs(np.diff(labels.astype(int), axis=0)).sum(1) == 1)  # Gray
    assert np.all(np.diff(amp) > 0)


def test_odd_bits_rejected():
    with pytest.raises(SpecError):
        qam.modulate(np.zeros(3, np.uint8), 3)

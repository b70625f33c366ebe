import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan import ofdm


def test_tone_plan():
    assert ofdm.ru242_tones().size == 242
    assert ofdm.data_tones().size == 234
    f4, f16 = ofdm.feedback_tones(4), ofdm.feedback_tones(16)
    assert f4.size == 64 and f16.size == 20
    assert f4[0] == -122 and f4[-1] == 122 and -2 in f4 and 2 in f4
    assert np.all(np.isin(f16, f4)) and np.all(np.isin(f4, ofdm.ru242_tones()))
    with pytest.raises(SpecError, match="Ng"):
        ofdm.feedback_tones(8)
    with pytest.raises(SpecError):
        ofdm.tone_positions(np.array([0]), ofdm.ru242_tones())

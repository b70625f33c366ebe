import numpy as np

from nnshare.wlan import abstraction, bitlevel, channels
from nnshare.wlan import beamforming as bf
from nnshare.wlan.link import effective_channel, mmse_sinr
from nnshare.wlan.ofdm import data_tones


def test_abstraction_agrees_with_bit_level_within_half_a_db():
    """MCS4, ideal V, 120 model-D channels: SNR at 10 % PER, decoded packets vs RBIR-ESM."""
    h = channels.generate(120, "D", rng=2024, tones=data_tones())
    v = bf.svd_v(h)
    snrs = np.arange(10.0, 16.1, 1.0)
    p_abs, p_bit = [], []
    rng = np.random.default_rng(5)
    for s in snrs:
        sinr = mmse_sinr(effective_channel(h, v), s)
        p_abs.append(abstraction.packet_error_rate(sinr, 4).mean())
        p_bit.append(bitlevel.packet_errors(h, v, s, 4, rng).mean())
    a = bitlevel.snr_at_per(snrs, p_abs)
    b = bitlevel.snr_at_per(snrs, p_bit)
    assert np.isfinite(a) and np.isfinite(b)
    assert abs(a - b) <= 0.5, (a, b, p_abs, p_bit)
    assert p_bit[0] > 0.3 and p_bit[-1] < 0.05  # the curve really crosses 10 %


def test_snr_at_per_interpolation():
    assert bitlevel.snr_at_per([0, 1], [1.0, 0.01]) == 0.5
    assert np.isnan(bitlevel.snr_at_per([0, 1], [0.05, 0.01]))

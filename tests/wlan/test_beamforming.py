import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.wlan import beamforming as bf
from nnshare.wlan import channels
from nnshare.wlan.ofdm import data_tones, feedback_tones


@pytest.fixture(scope="module")
def v():
    return bf.svd_v(channels.generate(20, "D", rng=1, tones=feedback_tones(4)))


def test_svd_v_is_phase_normalised_and_orthonormal(v):
    assert v.shape == (20, 64, 4, 2)
    last = v[..., -1, :]
    assert np.allclose(last.imag, 0, atol=1e-12) and np.all(last.real >= 0)
    gram = v.conj().swapaxes(-1, -2) @ v
    assert np.allclose(gram, np.eye(2), atol=1e-12)


def test_givens_round_trip_is_exact(v):
    phi, psi = bf.givens_decompose(v)
    assert phi.shape[-1] == 5 and psi.shape[-1] == 5  # Na = 10 for 4x2
    assert np.all((phi >= 0) & (phi < 2 * np.pi)) and np.all((psi >= 0) & (psi <= np.pi / 2))
    assert np.abs(bf.givens_reconstruct(phi, psi, 4, 2) - v).max() < 1e-12
    for m, n in ((2, 1), (3, 2), (4, 4), (8, 2)):
        rng = np.random.default_rng(m * 10 + n)
        a = rng.standard_normal((5, m, m)) + 1j * rng.standard_normal((5, m, m))
        q = bf.phase_normalise(np.linalg.qr(a)[0][..., :n])
        p, s = bf.givens_decompose(q)
        assert p.shape[-1] + s.shape[-1] == bf.n_angles(m, n)
        assert np.abs(bf.givens_reconstruct(p, s, m, n) - q).max() < 1e-12


def test_angle_counts_and_report_bits():
    table = {
        (2, 1): 2,
        (2, 2): 2,
        (3, 1): 4,
        (3, 2): 6,
        (3, 3): 6,
        (4, 1): 6,
        (4, 2): 10,
        (4, 3): 12,
        (4, 4): 12,
        (8, 2): 26,
        (8, 8): 56,
    }
    for (r, c), na in table.items():
        assert bf.n_angles(r, c) == na
    assert bf.givens_report_bits(64, 4, 2, 6, 4) == 3216
    assert bf.givens_report_bits(64, 4, 2, 4, 2) == 1936
    assert bf.givens_report_bits(20, 4, 2, 6, 4) == 1016
    assert bf.givens_report_bits(20, 4, 2, 4, 2) == 616
    with pytest.raises(SpecError):
        bf.n_angles(2, 3)


def test_quantized_angles_lie_on_the_codebook():
    rng = np.random.default_rng(0)
    phi, psi = rng.uniform(0, 2 * np.pi, 1000), rng.uniform(0, np.pi / 2, 1000)
    for bphi, bpsi in ((4, 2), (6, 4)):
        qp, qs = bf.quantize_angles(phi, psi, bphi, bpsi)
        kp = (qp - np.pi / 2**bphi) / (np.pi / 2 ** (bphi - 1))
        ks = (qs - np.pi / 2 ** (bpsi + 2)) / (np.pi / 2 ** (bpsi + 1))
        assert np.allclose(kp, np.round(kp)) and kp.min() >= 0 and kp.max() <= 2**bphi - 1
        assert np.allclose(ks, np.round(ks)) and ks.min() >= 0 and ks.max() <= 2**bpsi - 1
        assert np.abs(qp - phi).max() <= np.pi / 2**bphi + 1e-12


def test_givens_quantization_sgcs(v):
    s16 = bf.sgcs(v, bf.givens_feedback(v, 16, 16)).mean()
    s64 = bf.sgcs(v, bf.givens_feedback(v, 6, 4)).mean()
    s42 = bf.sgcs(v, bf.givens_feedback(v, 4, 2)).mean()
    assert s16 > 1 - 1e-6
    assert 0.99 < s64 < 1 - 1e-4
    assert 0.9 < s42 < s64


def test_sgcs_definition(v):
    assert np.allclose(bf.sgcs(v, v), 1.0)
    rot = v * np.exp(1j * np.array([0.3, -2.0]))
    assert np.allclose(bf.sgcs(v, rot), 1.0)  # column phase does not matter
    swapped = v[..., ::-1]
    assert np.allclose(bf.sgcs(v, swapped), 0.0, atol=1e-12)  # orthogonal columns
    a = np.array([[1.0], [0.0]])
    b = np.array([[1.0], [1.0]])
    assert bf.sgcs(a, b) == pytest.approx(0.5)


def test_interpolation_keeps_grid_points_and_is_accurate():
    h = channels.generate(10, "D", rng=2)
    from nnshare.wlan.ofdm import ru242_tones, tone_positions

    tones = ru242_tones()
    v_all = bf.svd_v(h)
    g4 = feedback_tones(4)
    v4 = v_all[:, tone_positions(g4, tones)]
    out = bf.interpolate(v4, g4, g4)
    assert np.allclose(out, v4)
    dt = data_tones()
    vi = bf.interpolate(v4, g4, dt)
    assert bf.sgcs(v_all[:, tone_positions(dt, tones)], vi).mean() > 0.999
    assert np.allclose(vi.conj().swapaxes(-1, -2) @ vi, np.eye(2), atol=1e-10)

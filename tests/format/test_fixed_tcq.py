import itertools

import numpy as np
import pytest

from nnshare.format import FormatError
from nnshare.format.fixed_tcq import BITS, POLYNOMIALS, layout, levels, quantizers, reconstruct, trellis
from nnshare.quant.fixed_tcq import encode


@pytest.mark.parametrize("nu", sorted(POLYNOMIALS))
def test_trellis_is_a_valid_two_branch_trellis(nu):
    nxt, quant = trellis(nu)
    ns = 1 << nu
    assert nxt.shape == (ns, 2) and set(np.unique(nxt)) <= set(range(ns))
    incoming = np.bincount(nxt.reshape(-1), minlength=ns)
    assert np.all(incoming == 2)  # every state has exactly two incoming edges
    # Ungerboeck's rule: both edges into a state come from states of the same quantizer
    for s2 in range(ns):
        preds = [s for s in range(ns) for z in (0, 1) if nxt[s, z] == s2]
        assert len({int(quant[p]) for p in preds}) == 1


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("nu", sorted(POLYNOMIALS))
def test_shipped_codebooks_are_antisymmetric_and_sorted(bits, nu):
    lv = levels(bits, nu)
    assert lv.shape == (2, 1 << bits)
    np.testing.assert_array_equal(lv[1], -lv[0][::-1])
    assert np.all(np.diff(np.sort(lv.reshape(-1))) > 0)


@pytest.mark.parametrize("bits,nu", [(1, 2), (1, 3), (2, 2)])
def test_viterbi_finds_the_best_path(bits, nu):
    """Exhaustive search over every code sequence of a short vector equals the Viterbi result."""
    rng = np.random.default_rng(bits * 10 + nu)
    d = 7 if bits == 1 else 4
    for _ in range(3):
        u = rng.normal(size=d)
        best = min(
            float(np.sum((u - reconstruct(np.array(c), bits, nu)) ** 2))
            for c in itertools.product(range(1 << bits), repeat=d)
        )
        got = float(np.sum((u - reconstruct(encode(u, bits, nu), bits, nu)) ** 2))
        assert got == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_distortion_at_one_bit_beats_lloyd_max():
    """Gaussian source, 1 bit/element: Lloyd-Max 0.363 (4.40 dB); 64-state TCQ about 0.29."""
    u = np.random.default_rng(1).standard_normal(1 << 14)
    for nu, limit in ((3, 0.310), (6, 0.295)):
        d = np.mean((u - reconstruct(encode(u, 1, nu), 1, nu)) ** 2)
        assert d < limit, (nu, d)


def test_rows_are_coded_independently():
    u = np.random.default_rng(2).standard_normal((3, 1500))  # 1500 > one stripe
    codes = encode(u, 2, 4)
    assert codes.shape == u.shape
    for i in range(3):
        np.testing.assert_array_equal(codes[i], encode(u[i], 2, 4))
    np.testing.assert_array_equal(reconstruct(codes, 2, 4)[1], reconstruct(codes[1], 2, 4))
    assert quantizers(codes, 4).shape == u.shape
    assert layout(1500) == (2, 750) and layout(0) == (0, 0)


def test_bad_codes_and_trellises_are_format_errors():
    with pytest.raises(FormatError):
        reconstruct(np.array([0, 2]), 1, 3)
    with pytest.raises(FormatError):
        trellis(9)
    with pytest.raises(FormatError):
        levels(5, 3)

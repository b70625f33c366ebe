import numpy as np
import pytest

from nnshare.format.rotation import block_size, hadamard, inverse, rotate, splitmix64


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 100, 1000, 1024, 1025, 4099])
def test_rotation_is_orthogonal_for_any_length(d):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(3, d))
    y = rotate(x, seed=7)
    assert y.shape == x.shape
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x, axis=1), rtol=1e-12)
    np.testing.assert_allclose(inverse(y, seed=7), x, atol=1e-12)
    # a matrix check on a small case: R^T R = I
    if d <= 100:
        r = rotate(np.eye(d), seed=7)
        np.testing.assert_allclose(r @ r.T, np.eye(d), atol=1e-12)


def test_rotation_mixes_every_coordinate():
    d = 1000  # not a power of two: overlapping blocks must still reach every output
    for i in (0, 500, 999):
        e = np.zeros(d)
        e[i] = 1.0
        y = rotate(e, seed=3)
        assert np.count_nonzero(np.abs(y) > 1e-12) > 0.9 * d


def test_rotations_differ_by_seed_and_are_reproducible():
    x = np.arange(64.0)
    assert not np.allclose(rotate(x, 1), rotate(x, 2))
    np.testing.assert_array_equal(rotate(x, 5), rotate(x, 5))


def _splitmix_reference(state: int, n: int) -> list[int]:
    """splitmix64 in Python integers (the published algorithm)."""
    mask, out = (1 << 64) - 1, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def test_seeded_words_are_splitmix64_and_fixed_forever():
    """The receiver rebuilds R from integer arithmetic alone: these words never change."""
    base = (12345 * 0x100000001B3 + 0 * 0x9E3779B1 + 1) & ((1 << 64) - 1)
    w = [int(v) for v in splitmix64(12345, 0, 1000)]
    assert w == _splitmix_reference(base, 1000)
    assert hex(w[0] ^ w[1] ^ w[2] ^ w[3]) == "0x8b87d1a84d1b4bd9"


def test_hadamard_matches_the_matrix():
    h = np.array([[1.0]])
    for _ in range(4):
        h = np.block([[h, h], [h, -h]])
    x = np.random.default_rng(0).normal(size=16)
    np.testing.assert_allclose(hadamard(x), h @ x / 4.0, atol=1e-12)
    with pytest.raises(ValueError):
        hadamard(np.ones(6))
    assert block_size(1000) == 512 and block_size(1024) == 1024


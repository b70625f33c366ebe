"""Sigma-delta and noise-shaping quantization of random Fourier features: the recursions, their
stability bounds, condensation, and the kernel error against plain rounding at equal bits."""

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.quant import sigma_delta as sd


def test_first_order_one_bit_is_stable_and_satisfies_the_recursion():
    z = np.random.default_rng(0).uniform(-1, 1, (5, 300))
    levels = sd.alphabet(1, 2.0)  # {-1, +1}
    idx, u = sd.sigma_delta(z, 1, levels)
    q = levels[idx]
    assert set(np.unique(q)) <= {-1.0, 1.0}
    assert np.max(np.abs(u)) <= 1.0 + 1e-12
    du = np.diff(np.concatenate([np.zeros((5, 1)), u], axis=1), axis=1)
    assert np.allclose(du, z - q)


@pytest.mark.parametrize("order", [2, 3])
def test_higher_order_recursion_with_a_multibit_alphabet(order):
    z = np.random.default_rng(1).uniform(-1, 1, (3, 400))
    levels = sd.alphabet(4, 0.5)  # 16 levels: enough headroom for greedy stability
    idx, u = sd.sigma_delta(z, order, levels)
    q = levels[idx]
    d = np.concatenate([np.zeros((3, order)), u], axis=1)
    for _ in range(order):
        d = np.diff(d, axis=1)
    assert np.allclose(d, z - q)  # (Delta^r u)_i = z_i - q_i
    assert np.max(np.abs(u)) <= 0.25 + 1e-12  # greedy rule stays in its cell


def test_noise_shaping_stability_bound():
    beta, delta = 1.5, 2.0 / 3.0  # 4 levels: |z| <= (K - beta) delta / 2 = 0.833...
    z = np.random.default_rng(2).uniform(-0.83, 0.83, (4, 256))
    idx, u = sd.noise_shaping(z, beta, 16, sd.alphabet(2, delta))
    assert np.max(np.abs(u)) <= delta / 2 + 1e-12
    q = sd.alphabet(2, delta)[idx]
    prev = np.concatenate([np.zeros((4, 1)), u[:, :-1]], axis=1)
    prev[:, ::16] = 0.0  # reset at each block
    assert np.allclose(u, beta * prev + z - q)


def test_condensation_filters_and_scaling():
    assert sd.sd_filter(1, 4).tolist() == [1, 1, 1, 1]
    assert sd.sd_filter(2, 3).tolist() == [1, 2, 3, 2, 1]
    assert np.allclose(sd.ns_filter(2.0, 3), [0.5, 0.25, 0.125])
    z = np.random.default_rng(3).uniform(-1, 1, (2, 40))
    v = sd.sd_filter(1, 8)
    c = sd.condense(z, v)
    assert c.shape == (2, 5)
    assert np.allclose(c, np.sqrt(2 / 5) / np.sqrt(8) * z.reshape(2, 5, 8).sum(axis=2))
    with pytest.raises(SpecError, match="divide"):
        sd.condense(z, sd.sd_filter(1, 7))


def kernel_error(bits_method, m, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 5))
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * 2.0**2))
    z = sd.random_fourier_features(x, m, 2.0, seed=seed + 1)
    levels = sd.alphabet(1, 2.0)
    if bits_method == "round":
        q = levels[(z > 0).astype(int)]
        est = 2 / m * q @ q.T
    elif bits_method == "stochastic":
        q = np.where(rng.random(z.shape) < (1 + z) / 2, 1.0, -1.0)
        est = 2 / m * q @ q.T
    else:
        lt = 8
        q = levels[sd.sigma_delta(z, 1, levels)[0]]
        c = sd.condense(q, sd.sd_filter(1, lt))
        est = c @ c.T
    off = ~np.eye(len(x), dtype=bool)
    return np.linalg.norm((est - k)[off]) / np.linalg.norm(k[off])


def test_one_bit_sigma_delta_beats_one_bit_rounding_of_rff():
    # 1-bit rounding of cos features is biased (its error stays ~0.65 as m grows); sigma-delta
    # with condensation is not, and its error falls with the dimension
    e_round, e_sd = kernel_error("round", 2048), kernel_error("sd", 2048)
    assert e_sd < 0.4 * e_round and e_round > 0.5
    assert kernel_error("sd", 8192) < 0.6 * kernel_error("sd", 2048) < 0.6 * kernel_error("sd", 512)
    assert kernel_error("stochastic", 2048) < 0.15  # the unbiased baseline the benchmark compares


def test_bad_input():
    with pytest.raises(SpecError, match="order"):
        sd.sigma_delta(np.zeros((1, 4)), 0, sd.alphabet(1, 2.0))
    with pytest.raises(SpecError, match="alphabet"):
        sd.alphabet(0, 1.0)
    with pytest.raises(SpecError, match="block length"):
        sd.noise_shaping(np.zeros((1, 10)), 1.5, 4, sd.alphabet(1, 2.0))

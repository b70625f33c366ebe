"""Exact quantizer MSE under unit Gaussian / Laplacian sources against the classical tables."""

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.quant import densities as d


@pytest.mark.parametrize("source", d.SOURCES)
def test_moments_of_the_whole_line(source):
    m0, m1, m2 = d.partial_moments(source, -np.inf, np.inf)
    assert m0 == pytest.approx(1, abs=1e-12) and m1 == pytest.approx(0, abs=1e-12)
    assert m2 == pytest.approx(1, abs=1e-12)
    x = d.sample(source, 400_000, seed=3)
    a, b = -0.3, 1.7
    inside = (x >= a) & (x < b)
    got = d.partial_moments(source, a, b)
    for k in range(3):
        assert got[k] == pytest.approx(np.mean(np.where(inside, x**k, 0)), abs=4e-3)


def test_optimal_uniform_and_lloyd_max_tables():
    # Max (1960) / Jayant-Noll values, unit-variance sources
    table = {("gaussian", 2): (9.25, 9.30), ("gaussian", 3): (14.27, 14.62),
             ("gaussian", 4): (19.38, 20.22), ("laplacian", 2): (7.07, 7.54),
             ("laplacian", 3): (11.44, 12.64), ("laplacian", 4): (15.96, 18.13)}
    for (source, b), (uni, lm) in table.items():
        _, mse = d.optimal_uniform_step(source, 2**b)
        assert d.sqnr_db(mse) == pytest.approx(uni, abs=0.006)
        _, mse = d.lloyd_max(source, 2**b)
        assert d.sqnr_db(mse) == pytest.approx(lm, abs=0.006)
    step, mse = d.optimal_uniform_step("gaussian", 256)
    assert step == pytest.approx(0.03076, abs=2e-5) and d.sqnr_db(mse) == pytest.approx(40.57, abs=0.006)
    assert d.sqnr_db(d.lloyd_max("gaussian", 2)[1]) == pytest.approx(4.40, abs=0.006)


def test_entropy_and_errors():
    assert d.differential_entropy_bits("gaussian") == pytest.approx(2.0471, abs=1e-4)
    edges = np.concatenate([[-np.inf], [0.0], [np.inf]])
    assert d.entropy_bits("laplacian", edges) == pytest.approx(1.0)
    with pytest.raises(SpecError, match="source"):
        d.sample("cauchy", 3)
    with pytest.raises(SpecError, match="sorted"):
        d.quantizer_mse("gaussian", np.array([1.0, 0.0]))

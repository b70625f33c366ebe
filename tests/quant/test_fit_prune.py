"""entropy_fit.fit_cost skips the geometric and Gauss fits only when they must lose (empirical
entropy plus their side info above the best record in hand): the same record and cost as the
full fit on every histogram, and the batched scale search gives one kind's values."""

import numpy as np
import pytest

from nnshare.format.entropy.dists import GAUSS, GEOMETRIC, TABLE, UNIFORM, Dist
from nnshare.quant import entropy_fit as ef


def _hists():
    rng = np.random.default_rng(11)
    for i in range(400):
        w = int(rng.integers(2, 90))
        kind = i % 4
        if kind == 0:
            h = rng.integers(0, 40, w)  # table-like
        elif kind == 1:
            h = rng.multinomial(int(rng.integers(5, 3000)), np.ones(w) / w)  # near uniform
        elif kind == 2:
            x = np.clip(np.rint(rng.laplace(w / 2, w / 8, int(rng.integers(10, 5000)))), 0, w - 1)
            h = np.bincount(x.astype(int), minlength=w)
        else:
            x = np.clip(np.rint(rng.normal(w / 2, w / 6, int(rng.integers(10, 5000)))), 0, w - 1)
            h = np.bincount(x.astype(int), minlength=w)
        nz = np.flatnonzero(h)
        if nz.size:
            yield h[nz[0]:nz[-1] + 1].astype(np.int64), int(rng.integers(-60, 20))


def _key(d: Dist, cost: float) -> tuple:
    levels = None if d.levels is None else bytes(np.asarray(d.levels))
    return d.kind, d.lo, d.width, levels, d.a, d.b, cost


def test_pruned_fit_equals_full_fit(monkeypatch):
    hists = list(_hists())
    real, pruned = ef._parametric_loses, []
    monkeypatch.setattr(ef, "_parametric_loses", lambda *a: pruned.append(real(*a)) or pruned[-1])
    got = [ef.fit_cost(h, lo) for h, lo in hists]
    assert 0 < sum(pruned) < len(pruned)  # some fits were skipped, some not
    monkeypatch.setattr(ef, "_parametric_loses", lambda *a: False)
    full = [ef.fit_cost(h, lo) for h, lo in hists]
    assert [_key(d, c) for d, c in got] == [_key(d, c) for d, c in full]
    kinds = {d.kind for d, _ in full}
    assert {TABLE, UNIFORM} <= kinds and kinds & {GEOMETRIC, GAUSS}  # every branch was taken


@pytest.mark.parametrize("kind", [GEOMETRIC, GAUSS])
def test_batched_scale_search_equals_one_kind(kind):
    for h, lo in list(_hists())[:60]:
        both = ef._refine(h, lo, [(GEOMETRIC, lo + 1.3, 2.1), (GAUSS, lo + 0.7, 3.4)])
        one = ef._refine(h, lo, [(kind, lo + 1.3, 2.1) if kind == GEOMETRIC else (kind, lo + 0.7, 3.4)])
        assert _key(*both[0 if kind == GEOMETRIC else 1]) == _key(*one[0])

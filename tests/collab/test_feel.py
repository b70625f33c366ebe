import math

import numpy as np
import pytest

from nnshare.collab.feel import (
    ConvergenceModel,
    Device,
    Problem,
    RoundsModel,
    System,
    allocate,
    brute_force,
    min_bandwidth,
    plan,
    round_latency,
)
from nnshare.format.errors import SpecError

LEVELS = (1, 2, 4, 8, 16)


def bits_of(s):  # ~ QSGD: d (1 + log2(s + 1)) + 32 bits for d = 10,000
    return int(10_000 * (1 + math.log2(s + 1)) + 32)


def qerr_of(s):
    return min(10_000 / s**2, 100 / s)


def instance(seed, k=3):
    rng = np.random.default_rng(seed)
    devs = tuple(Device(compute_s=float(rng.uniform(0.01, 0.2)), power_w=0.1,
                        gain=float(10 ** rng.uniform(-12, -9))) for _ in range(k))
    system = System(devs, bandwidth_hz=float(rng.uniform(2e5, 2e6)))
    model = ConvergenceModel(a=2.0, p=float(rng.uniform(0.6, 1.2)), b=0.05,
                             c=float(rng.uniform(1e-3, 2e-2)))
    return Problem(system, LEVELS, bits_of, qerr_of, model, target_gap=0.15)


def test_shannon_rate_and_min_bandwidth():
    d = Device(0.1, power_w=0.1, gain=1e-10)
    s = System((d,), 1e6)
    snr = 0.1 * 1e-10 / (4e-21 * 1e6)
    assert d.rate(1e6, 4e-21) == pytest.approx(1e6 * math.log2(1 + snr))
    assert s.snr_db(0, 1e6) == pytest.approx(10 * math.log10(snr))
    w = min_bandwidth(d, 100_000, 0.3, s)
    assert d.compute_s + 100_000 / d.rate(w, 4e-21) == pytest.approx(0.3, rel=1e-6)
    assert min_bandwidth(d, 100_000, 0.05, s) == math.inf  # deadline before compute ends
    assert min_bandwidth(d, 10**12, 1.0, s) == math.inf  # not even the whole band suffices


def test_allocation_equalises_finishing_times_and_beats_equal_split():
    p = instance(0, k=4)
    bits = [bits_of(s) for s in (1, 4, 8, 16)]
    t, alloc = allocate(p.system, bits)
    assert sum(alloc) == pytest.approx(p.system.bandwidth_hz)
    finish = [d.compute_s + b / d.rate(w, p.system.noise_w_per_hz)
              for d, b, w in zip(p.system.devices, bits, alloc, strict=True)]
    assert max(finish) - min(finish) < 1e-4 * t
    equal = round_latency(p.system, bits, [p.system.bandwidth_hz / 4] * 4)
    assert t < equal


def test_convergence_model_fit_recovers_the_curves():
    true = ConvergenceModel(0.7, 0.8, 0.06, 0.02)
    rng = np.random.default_rng(1)
    curves = {q: [true.gap(n, q) + rng.normal(0, 1e-3) for n in range(1, 31)] for q in (1.0, 10.0, 30.0)}
    fit = ConvergenceModel.fit(curves)
    for q in (1.0, 5.0, 30.0):
        assert fit.rounds(0.2, q) == pytest.approx(true.rounds(0.2, q), rel=0.05)
    assert true.rounds(0.05, 1.0) == math.inf
    assert true.gap(true.rounds(0.3, 4.0), 4.0) == pytest.approx(0.3)
    with pytest.raises(SpecError, match=">= 2 quantization errors"):
        ConvergenceModel.fit({1.0: [0.5, 0.4, 0.3, 0.2]})


def test_convergence_model_fit_recovers_a_floor_that_grows_with_q():
    true = ConvergenceModel(0.7, 0.8, 0.04, 0.01, 0.002)
    rng = np.random.default_rng(2)
    curves = {q: [true.gap(n, q) + rng.normal(0, 1e-3) for n in range(1, 31)] for q in (1.0, 10.0, 40.0)}
    fit = ConvergenceModel.fit(curves)
    assert fit.d == pytest.approx(0.002, rel=0.2)
    for q in (1.0, 10.0, 40.0):
        assert fit.rounds(0.15, q) == pytest.approx(true.rounds(0.15, q), rel=0.05)
    assert true.rounds(0.1, 40.0) == math.inf  # below the floor b + d Q = 0.12
    assert math.isfinite(true.rounds(0.1, 1.0))
    flat = ConvergenceModel.fit(curves, floor=False)
    assert flat.d == 0.0
    # the floor-free fit cannot follow the slow-down at large Q as well
    assert abs(flat.rounds(0.15, 40.0) / true.rounds(0.15, 40.0) - 1) > 0.05


def test_rounds_model_fits_rounds_to_target_and_plans():
    m = RoundsModel.fit({0.5: 21.0, 5.0: 21.9, 60.0: 33.0}, target_gap=0.12)
    assert m.g == pytest.approx(0.2, rel=0.02) and m.n0 == pytest.approx(20.9, abs=0.2)
    assert m.rounds(0.12, 10.0) == pytest.approx(m.n0 + 10 * m.g)
    with pytest.raises(SpecError, match="fitted for gap"):
        m.rounds(0.1, 1.0)
    flat = RoundsModel.fit({1.0: 22.0, 50.0: 20.0}, 0.1)  # noise never makes coarse levels faster
    assert flat.g == 0.0 and flat.n0 == 21.0
    with pytest.raises(SpecError, match="finite rounds"):
        RoundsModel.fit({1.0: 20.0, 9.0: math.inf}, 0.1)
    with pytest.raises(SpecError, match=">= 2"):
        RoundsModel.fit({1.0: 20.0}, 0.1)
    p = instance(0)
    p = Problem(p.system, p.levels, p.bits_of, p.qerr_of, RoundsModel(p.target_gap, 20.0, 0.5), p.target_gap)
    assert plan(p).time_s == pytest.approx(brute_force(p).time_s, rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_planner_equals_brute_force(seed):
    p = instance(seed)
    best, got = brute_force(p), plan(p)
    assert got.time_s == pytest.approx(best.time_s, rel=1e-5)
    assert sum(got.bandwidth) == pytest.approx(p.system.bandwidth_hz)


def test_bad_systems():
    with pytest.raises(SpecError):
        System((), 1e6)
    with pytest.raises(SpecError):
        System((Device(0.1, 0.0, 1e-9),), 1e6)
    with pytest.raises(SpecError):
        System((Device(0.1, 0.1, 1e-9),), 0.0)

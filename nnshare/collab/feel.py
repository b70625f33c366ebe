"""Quantized federated edge learning (FEEL): a training-time model and its planner.

After Liu et al., "Training time minimization for federated edge learning with optimized gradient
quantization and bandwidth allocation" (rebuilt from the abstract; the exact formulas are ours).
K devices upload quantized updates over orthogonal channels sharing a total bandwidth B (Hz):

- upload bits ``L(s_k)`` of device k at quantization level ``s_k``: the exact stream length of the
  codec (``bits_of(level)``, e.g. measured on a pilot update);
- rate ``R_k(B_k) = B_k log2(1 + p_k g_k / (N0 B_k))`` (Shannon, bit/s);
- round latency ``T(s, B) = max_k (T^cmp_k + L(s_k) / R_k(B_k))`` (s);
- rounds to the target ``N(s)`` from a convergence model of the optimality gap (here the test
  error) against rounds n and aggregate quantization error Q:
  ``gap(n, Q) = b + d Q + (a + c Q) / n**p``, ``Q(s) = sum_k qerr(s_k) / K**2`` (variance of the
  mean of K independently quantized updates, relative), fitted from a few short runs;
- training time ``N(s) T(s, B)``, minimised by :func:`plan`: starts from every common level and
  from a scan of round deadlines (for each, the levels of least quantization error that fit the
  band: a multiple-choice knapsack by Lagrangian bisection), then alternating optimization of
  the levels for a fixed bandwidth split (exact: for each candidate deadline every device takes
  its finest level meeting it) and the bandwidth for fixed levels (bisection on the deadline,
  each device's smallest bandwidth by bisection), plus single-device level moves.
  :func:`brute_force` checks it on small instances.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError


@dataclass(frozen=True)
class Device:
    """One device: compute time per round (s), transmit power (W), channel power gain (linear)."""

    compute_s: float
    power_w: float
    gain: float

    def rate(self, bandwidth_hz: float, noise_w_per_hz: float) -> float:
        """Shannon rate in bit/s over ``bandwidth_hz``."""
        if bandwidth_hz <= 0:
            return 0.0
        return bandwidth_hz * math.log2(1 + self.power_w * self.gain / (noise_w_per_hz * bandwidth_hz))


@dataclass(frozen=True)
class System:
    """Devices sharing ``bandwidth_hz`` with noise density ``noise_w_per_hz`` (W/Hz)."""

    devices: tuple[Device, ...]
    bandwidth_hz: float
    noise_w_per_hz: float = 4e-21  # -174 dBm/Hz

    def __post_init__(self) -> None:
        if not self.devices:
            raise SpecError("a FEEL system needs at least one device")
        if not self.bandwidth_hz > 0 or not self.noise_w_per_hz > 0:
            raise SpecError("bandwidth and noise density must be > 0")
        for d in self.devices:
            if d.compute_s < 0 or not d.power_w > 0 or not d.gain > 0:
                raise SpecError(f"bad device {d}: compute >= 0, power and gain > 0")

    def snr_db(self, k: int, bandwidth_hz: float) -> float:
        d = self.devices[k]
        return 10 * math.log10(d.power_w * d.gain / (self.noise_w_per_hz * bandwidth_hz))


def round_latency(system: System, bits: Sequence[int], bandwidth: Sequence[float]) -> float:
    """Seconds of one round: the slowest device's compute plus upload (inf without bandwidth)."""
    worst = 0.0
    for d, b, w in zip(system.devices, bits, bandwidth, strict=True):
        r = d.rate(w, system.noise_w_per_hz)
        worst = max(worst, d.compute_s + (b / r if r > 0 else math.inf))
    return worst


def min_bandwidth(device: Device, bits: int, deadline_s: float, system: System, tol: float = 1e-9) -> float:
    """Smallest bandwidth (Hz) with which ``device`` finishes ``bits`` by ``deadline_s``
    (inf when even the whole band is too little); the rate grows with bandwidth: bisection."""
    slack = deadline_s - device.compute_s
    if slack <= 0:
        return math.inf
    need = bits / slack
    hi = system.bandwidth_hz
    if device.rate(hi, system.noise_w_per_hz) < need:
        return math.inf
    lo = 0.0
    while hi - lo > tol * system.bandwidth_hz:
        mid = (lo + hi) / 2
        if device.rate(mid, system.noise_w_per_hz) >= need:
            hi = mid
        else:
            lo = mid
    return hi


def allocate(system: System, bits: Sequence[int], tol: float = 1e-7) -> tuple[float, tuple[float, ...]]:
    """Bandwidth split minimising the round latency for fixed upload ``bits`` per device:
    bisection on the deadline T (feasible iff sum_k B_k(T) <= B). Returns (T, B_k)."""
    lo = max(d.compute_s for d in system.devices)
    equal = [system.bandwidth_hz / len(bits)] * len(bits)
    hi = round_latency(system, bits, equal)  # the equal split is feasible
    while hi - lo > tol * hi:
        mid = (lo + hi) / 2
        need = sum(min_bandwidth(d, b, mid, system) for d, b in zip(system.devices, bits, strict=True))
        if need <= system.bandwidth_hz:
            hi = mid
        else:
            lo = mid
    alloc = [min_bandwidth(d, b, hi, system) for d, b in zip(system.devices, bits, strict=True)]
    spare = (system.bandwidth_hz - sum(alloc)) / len(alloc)  # hand out the bisection's leftovers
    alloc = tuple(a + spare for a in alloc)
    return round_latency(system, bits, alloc), alloc


@dataclass(frozen=True)
class ConvergenceModel:
    """gap(n, Q) = b + d Q + (a + c Q) / n**p: test error after n rounds at aggregate
    quantization error Q (an SGD-type rate whose variance term grows with the quantization
    variance, and an error floor ``b + d Q`` that a constant step size leaves, which also grows
    with it; ``d`` = 0 is the floor-free model)."""

    a: float
    p: float
    b: float
    c: float
    d: float = 0.0

    def gap(self, rounds: float, q: float) -> float:
        return self.b + self.d * q + (self.a + self.c * q) / max(rounds, 1e-12) ** self.p

    def rounds(self, target_gap: float, q: float) -> float:
        """Rounds until the gap reaches ``target_gap`` (inf when it never does)."""
        floor = self.b + self.d * q
        if target_gap <= floor:
            return math.inf
        return ((self.a + self.c * q) / (target_gap - floor)) ** (1 / self.p)

    @staticmethod
    def fit(curves: Mapping[float, Sequence[float]], skip: int = 0, floor: bool = True) -> ConvergenceModel:
        """Least-squares fit to test-error curves ``{Q: [gap after round 1, 2, ...]}`` of a few
        short runs (``skip``: leading rounds left out): p by grid search, a, b, c, d linear with
        b, c, d >= 0 (an error floor is never negative and more quantization error never helps:
        the best fit over the sign-feasible subsets of those terms); ``floor=False`` fixes d = 0."""
        rows, ys = [], []
        for q, curve in curves.items():
            for n, g in enumerate(curve, start=1):
                if n > skip:
                    rows.append((n, q))
                    ys.append(g)
        if len({q for q in curves}) < 2 or len(ys) < 4:
            raise SpecError("fitting the convergence model needs curves at >= 2 quantization errors")
        n, q = np.array(rows, float).T
        y = np.array(ys, float)
        terms = (1, 2, 3) if floor else (1, 2)
        subsets = [t for r in range(len(terms) + 1) for t in itertools.combinations(terms, r)]
        best = None
        for p in np.linspace(0.2, 2.0, 181):
            full = np.stack([n**-p, np.ones_like(n), q * n**-p, q], 1)
            for extra in subsets:
                cols = [0, *extra]
                sol = np.linalg.lstsq(full[:, cols], y, rcond=None)[0]
                if np.any(sol[1:] < 0):
                    continue
                coef = np.zeros(4)
                coef[cols] = sol
                err = float(np.sum((full @ coef - y) ** 2))
                if best is None or err < best[0]:
                    best = (err, p, coef)
        _, p, (a, b, c, d) = best
        return ConvergenceModel(float(a), float(p), float(b), float(c), float(d))


@dataclass(frozen=True)
class RoundsModel:
    """Rounds to one target gap as a function of the aggregate quantization error:
    N(Q) = n0 + g Q (g >= 0), fitted to the rounds-to-target of a few runs at different Q. Where
    a gap-curve model (:class:`ConvergenceModel`) extrapolates the early rounds of short pilots,
    this one interpolates what was measured at the target; it answers for ``target_gap`` only."""

    target_gap: float
    n0: float
    g: float

    def rounds(self, target_gap: float, q: float) -> float:
        if not math.isclose(target_gap, self.target_gap, rel_tol=1e-9, abs_tol=1e-12):
            raise SpecError(f"rounds model fitted for gap {self.target_gap}, asked for {target_gap}")
        return max(self.n0 + self.g * q, 1.0)

    @staticmethod
    def fit(points: Mapping[float, float], target_gap: float) -> RoundsModel:
        """Least squares on ``{Q: rounds to target}`` (>= 2 distinct Q, finite rounds)."""
        if len(points) < 2 or not all(math.isfinite(v) for v in points.values()):
            raise SpecError("fitting the rounds model needs finite rounds at >= 2 quantization errors")
        q, n = np.array(list(points.items()), float).T
        g, n0 = np.polyfit(q, n, 1)
        if g < 0:  # more quantization error never helps
            g, n0 = 0.0, float(np.mean(n))
        return RoundsModel(float(target_gap), float(n0), float(g))


@dataclass(frozen=True)
class Plan:
    """Levels and bandwidth per device with the predicted rounds, round latency and time (s)."""

    levels: tuple[int, ...]
    bandwidth: tuple[float, ...]
    rounds: float
    round_s: float

    @property
    def time_s(self) -> float:
        return self.rounds * self.round_s


@dataclass(frozen=True)
class Problem:
    """A planning instance: the system, the candidate levels, bits and relative quantization
    error per level, the convergence model and the target gap."""

    system: System
    levels: tuple[int, ...]
    bits_of: Callable[[int], int]
    qerr_of: Callable[[int], float]
    model: ConvergenceModel | RoundsModel
    target_gap: float

    def q(self, levels: Sequence[int]) -> float:
        return sum(self.qerr_of(s) for s in levels) / len(levels) ** 2

    def evaluate(self, levels: Sequence[int], bandwidth: Sequence[float] | None = None) -> Plan:
        """The plan for these levels (bandwidth: the given split, or the optimal one)."""
        bits = [self.bits_of(s) for s in levels]
        if bandwidth is None:
            t, bandwidth = allocate(self.system, bits)
        else:
            t = round_latency(self.system, bits, bandwidth)
        return Plan(tuple(levels), tuple(bandwidth), self.model.rounds(self.target_gap, self.q(levels)), t)


def _levels_for(problem: Problem, bandwidth: Sequence[float]) -> tuple[int, ...]:
    """Exact level choice for a fixed bandwidth split: for every candidate deadline (a device's
    finishing time at some level) each device takes its finest level meeting it; best of all."""
    sys_, lv = problem.system, sorted(problem.levels)
    finish = [[d.compute_s + problem.bits_of(s) / max(d.rate(w, sys_.noise_w_per_hz), 1e-300) for s in lv]
              for d, w in zip(sys_.devices, bandwidth, strict=True)]
    best = None
    for t in sorted({f for row in finish for f in row}):
        pick = []
        for row in finish:
            ok = [i for i, f in enumerate(row) if f <= t]
            if not ok:
                break
            pick.append(lv[max(ok, key=lambda i: (-problem.qerr_of(lv[i]), i))])
        if len(pick) < len(finish):
            continue
        p = problem.evaluate(pick, bandwidth)
        if best is None or p.time_s < best.time_s:
            best = p
    return best.levels if best is not None else tuple(lv[-1] for _ in sys_.devices)


def _knapsack(problem: Problem, deadline: float) -> tuple[int, ...] | None:
    """Levels minimising the summed quantization error such that every device meets
    ``deadline`` within the total band (multiple-choice knapsack, Lagrangian relaxation: each
    device minimises qerr + lam * B_k, bisection on the bandwidth price lam); None if infeasible."""
    sys_ = problem.system
    table = [[(problem.qerr_of(s), min_bandwidth(d, problem.bits_of(s), deadline, sys_), s)
              for s in problem.levels] for d in sys_.devices]
    table = [[c for c in row if math.isfinite(c[1])] for row in table]
    if any(not row for row in table):
        return None

    def pick(lam):
        chosen = [min(row, key=lambda c: (c[0] + lam * c[1], c[1])) for row in table]
        return sum(c[1] for c in chosen), tuple(c[2] for c in chosen)

    used, levels = pick(0.0)
    if used <= sys_.bandwidth_hz:
        return levels
    if sum(min(c[1] for c in row) for row in table) > sys_.bandwidth_hz:
        return None
    hi = 1e-12
    while pick(hi)[0] > sys_.bandwidth_hz:
        hi *= 4
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if pick(mid)[0] <= sys_.bandwidth_hz:
            hi = mid
        else:
            lo = mid
    return pick(hi)[1]


def _improve(problem: Problem, cur: Plan, iterations: int) -> Plan:
    """Alternate the two blocks until neither helps: levels for the current bandwidth split
    (:func:`_levels_for`) then the bandwidth for those levels (:func:`allocate`), and single-device
    level moves each with its re-allocated bandwidth."""
    for _ in range(iterations):
        nxt = problem.evaluate(_levels_for(problem, cur.bandwidth))
        for k in range(len(cur.levels)):
            for s in problem.levels:
                if s != nxt.levels[k]:
                    trial = problem.evaluate(nxt.levels[:k] + (s,) + nxt.levels[k + 1 :])
                    if trial.time_s < nxt.time_s:
                        nxt = trial
        if nxt.time_s >= cur.time_s * (1 - 1e-9):
            return cur
        cur = nxt
    return cur


def plan(problem: Problem, deadlines: int = 48, iterations: int = 20) -> Plan:
    """Joint levels and bandwidth minimising the predicted training time N(s) T(s, B).

    Starts: every common level, and for each of ``deadlines`` round deadlines (log-spaced up to
    the all-finest round latency) the knapsack levels that meet it; the best start is refined by
    alternating optimization (:func:`_improve`)."""
    k = len(problem.system.devices)
    starts = {(s,) * k for s in problem.levels}
    lo = max(d.compute_s for d in problem.system.devices)
    hi = problem.evaluate((max(problem.levels, key=lambda s: -problem.qerr_of(s)),) * k).round_s
    for t in np.geomspace(lo * (1 + 1e-6) + 1e-12, hi * (1 + 1e-6), deadlines):
        levels = _knapsack(problem, float(t))
        if levels is not None:
            starts.add(levels)
    best = min((problem.evaluate(s) for s in starts), key=lambda p: p.time_s)
    return _improve(problem, best, iterations)


def brute_force(problem: Problem) -> Plan:
    """Every combination of levels, each with its optimal bandwidth split (small instances)."""
    k = len(problem.system.devices)
    if len(problem.levels) ** k > 100_000:
        raise SpecError("brute force over more than 100,000 level combinations")
    plans = (problem.evaluate(c) for c in itertools.product(problem.levels, repeat=k))
    return min(plans, key=lambda p: p.time_s)

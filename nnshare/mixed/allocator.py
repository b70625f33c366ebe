"""``allocate(model, budget, ...) -> Plan``: a bit width per tensor or per output channel that
minimises the predicted loss increase within a budget counted on the whole stream."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantSpec
from ..plan import Plan
from ..state import model_state
from . import cost as costs
from .allocation import Allocation, FrontPoint
from .budget import Budget
from .knapsack import Solution, choose_solver, pareto_front, solve_lagrangian, solve_milp
from .plans import exact_stream_bits, keep_list, plan_from_widths
from .sensitivity import (
    DEFAULT_CANDIDATES,
    Sensitivity,
    check_candidates,
    estimate_sensitivity,
)
from .tensors import DEFAULT_BASE, TensorInfo, select_tensors

# ------------------------------------------------------------------ helpers


@dataclass(frozen=True, eq=False)
class _Problem:
    """One knapsack: size model, (N, K) loss, allowed mask, extra limits, solver name."""

    sm: costs.SizeModel
    loss: np.ndarray
    allowed: np.ndarray
    extra: tuple
    which: str
    time_limit: float

    def solve(self, total_limit: int | None) -> Solution:
        lim = None if total_limit is None else total_limit - self.sm.fixed
        if lim is not None and lim < 0:
            raise SpecError(
                f"budget of {total_limit} bits is below the fixed part of the stream "
                f"({self.sm.fixed} bits: header, record framing, scales, float tensors)"
            )
        if self.which == "milp":
            return solve_milp(self.loss, self.sm.cost, lim, self.allowed, self.extra, self.time_limit)
        return solve_lagrangian(self.loss, self.sm.cost, lim, self.allowed)


def _limits_per_tensor(spec, tensors: list[TensorInfo], default: int) -> dict[str, int]:
    """``spec``: None, an int for all, or {regex: bits} (first full match wins)."""
    out = {t.name: default for t in tensors}
    if spec is None:
        return out
    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        return {t.name: int(spec) for t in tensors}
    if not isinstance(spec, dict):
        raise SpecError(f"floors/ceilings must be an int or a {{regex: bits}} dict, got {spec!r}")
    for pat in spec:
        try:
            re.compile(pat)
        except re.error as e:
            raise SpecError(f"bad regular expression {pat!r}: {e}") from None
    for t in tensors:
        for pat, b in spec.items():
            if re.fullmatch(pat, t.name):
                out[t.name] = int(b)
                break
    return out


# ------------------------------------------------------------------ the search


def search(
    model,
    budget: Budget,
    sensitivity: str | Sensitivity = "weight",
    data=None,
    granularity: str = "tensor",
    candidates=DEFAULT_CANDIDATES,
    *,
    base: QuantSpec | None = None,
    floors: int | dict[str, int] | None = None,
    ceilings: int | dict[str, int] | None = None,
    loss_fn: Callable | None = None,
    forward: Callable | None = None,
    mode: str = "self",
    solver: str = "auto",
    include: str | None = None,
    exclude: str | None = None,
    min_ndim: int = 2,
    float_dtype: str = "fp32",
    example_input=None,
    act_bits: int = 8,
    latency_table: dict[str, dict[int, float]] | None = None,
    front_points: int = 0,
    verify: bool = True,
    time_limit: float = 60.0,
    max_batches: int | None = 8,
    n_samples: int = 32,
    entropy: str = "none",
    uniform_check: bool = True,
) -> Allocation:
    """Sensitivity + multiple-choice knapsack; see :func:`allocate` for the arguments.

    ``verify``: the size model leaves out byte padding (<= 7 bits per padded field); the final
    plan is encoded with the real format and, should it exceed the size budget, the limit is
    tightened by the excess and solved again. ``verify=False`` counts the padding as fixed
    instead (an upper bound: never over budget, a few bits may go unused).
    ``front_points``: also return that many points of the Pareto front (``Allocation.front``).
    ``entropy="auto"``: sizes are entropy-coded records (encode the plan with
    ``nnshare.encode(..., entropy="auto")``): exact per tensor; per channel an entropy estimate
    that the exact check of the written stream corrects (format v2 entropy-codes records with
    per-channel widths).
    ``uniform_check``: with calibration ``data`` and a size limit, the widest uniform width whose
    stream fits is measured against the allocation (output distortion on the calibration
    inputs) and kept when it measures better: the budget path is never worse than uniform.
    """
    if not isinstance(budget, Budget):
        raise SpecError(f"budget must be a Budget, got {type(budget).__name__}")
    if budget.is_quality:
        raise SpecError("a task-quality budget (max_drop) needs the task: use nnshare.compress(model, "
                        "evaluate=fn, max_drop=...)")
    if granularity not in ("tensor", "channel"):
        raise SpecError(f"granularity must be 'tensor' or 'channel', got {granularity!r}")
    if entropy not in ("none", "auto"):
        raise SpecError(f"entropy must be 'none' or 'auto', got {entropy!r}")
    if entropy == "auto" and granularity == "channel" and not verify:
        raise SpecError("entropy-coded per-channel sizes are estimates: they need verify=True")
    if budget.bops is not None and example_input is None:
        raise SpecError("a BOPs budget needs example_input (to count multiply-accumulates)")
    if budget.latency_ms is not None and latency_table is None:
        raise SpecError("a latency budget needs latency_table {tensor: {bits: ms}}")
    base = base or DEFAULT_BASE
    t0 = time.perf_counter()
    if isinstance(sensitivity, Sensitivity):
        # A precomputed table fixes the tensors, the candidates and the base spec.
        sens = sensitivity
        cands, base, quant = sens.candidates, sens.base, list(sens.tensors)
        shapes = {t.name: t.shape for t in select_tensors(model, 0)[0]}
        for t in quant:
            if shapes.get(t.name) != t.shape:
                raise SpecError(f"the sensitivity table's tensor {t.name!r} is not in this model")
    else:
        quant, _ = select_tensors(model, min_ndim, include, exclude)
        cands = check_candidates(candidates)
        sens = estimate_sensitivity(
            model,
            sensitivity,
            data,
            cands,
            base,
            loss_fn=loss_fn,
            forward=forward,
            tensors=quant,
            max_batches=max_batches,
            n_samples=n_samples,
        )
    t_sens = time.perf_counter() - t0 if not isinstance(sensitivity, Sensitivity) else sens.seconds

    t1 = time.perf_counter()
    st_all = model_state(model)
    sd_all = dict(st_all.without_counters().arrays)  # read only: no copy of the model
    mtypes = dict(st_all.module_types)
    qnames = {t.name for t in quant}
    keep = keep_list(sd_all, qnames, float_dtype)
    layout = [(n, tuple(int(s) for s in a.shape)) for n, a in sd_all.items()]
    lo = _limits_per_tensor(floors, quant, cands[0])
    hi = _limits_per_tensor(ceilings, quant, cands[-1])
    cand_arr = np.asarray(cands)
    for t in quant:
        if not ((cand_arr >= lo[t.name]) & (cand_arr <= hi[t.name])).any():
            raise SpecError(
                f"tensor {t.name!r}: no candidate width between floor {lo[t.name]} and ceiling "
                f"{hi[t.name]} (candidates {cands})"
            )
    macs = None
    if budget.bops is not None:
        macs = costs.macs_per_tensor(model, example_input, forward)

    def problem(gran: str, coded: bool = entropy == "auto") -> _Problem:
        if coded and gran == "channel":
            sm = costs.coded_channel_size_model(quant, keep, sd_all, base, cands, mode, layout)
        elif coded:
            sm = costs.coded_size_model(quant, keep, sd_all, base, cands, mode, layout)
        else:
            sm = costs.size_model(quant, keep, base, cands, gran, mode, layout, padding=not verify)
        if gran == "channel":
            loss = np.concatenate([sens.channel_loss[t.name] for t in quant], axis=0)
        elif granularity == "channel":  # per-tensor fallback, scored on the channel table
            loss = np.stack([sens.channel_loss[t.name].sum(axis=0) for t in quant])
        else:
            loss = np.stack([sens.tensor_loss[t.name] for t in quant])
        if loss.shape != sm.cost.shape:
            raise SpecError("sensitivity table does not match the tensors' channels")
        lo_u = np.array([lo[quant[i].name] for i in sm.unit_tensor])
        hi_u = np.array([hi[quant[i].name] for i in sm.unit_tensor])
        allowed = (cand_arr[None, :] >= lo_u[:, None]) & (cand_arr[None, :] <= hi_u[:, None])
        extra = []
        if macs is not None:
            extra.append((costs.bops_costs(sm, macs, cands, act_bits, gran), budget.bops))
        if latency_table is not None:
            lat, ok = costs.latency_costs(sm, latency_table, cands, gran)
            allowed &= ok
            if budget.latency_ms is not None:
                extra.append((lat, budget.latency_ms))
        which = choose_solver(loss.size, solver)
        if extra and which == "lagrangian":
            if solver == "lagrangian":
                raise SpecError("BOPs / latency limits need the MILP solver")
            which = "milp"
        return _Problem(sm, loss, allowed, tuple(extra), which, time_limit)

    probs = [problem(granularity)]
    if entropy == "auto" and granularity == "channel":
        # The coded per-channel model is an estimate; the packed one bounds the coded stream
        # (a record entropy-codes only when that is smaller): the better feasible one wins.
        probs.append(problem("channel", coded=False))
    if granularity == "channel" and not probs[0].extra:
        # One width for all channels of a tensor sends no width field: also try per tensor.
        probs.append(problem("tensor"))
    n_channels = {t.name: int((probs[0].sm.unit_tensor == i).sum()) for i, t in enumerate(quant)}

    def solve_total(total_limit):
        best, err = None, None
        for pr in probs:
            try:
                sol = pr.solve(total_limit)
            except SpecError as e:
                err = err or e
                continue
            if best is None or sol.loss < best[1].loss:
                best = (pr, sol)
        if best is None:
            raise err
        pr, sol = best
        w = cand_arr[sol.choice]
        widths = {}
        for i, t in enumerate(quant):
            wt = w[pr.sm.unit_tensor == i]
            widths[t.name] = np.full(n_channels[t.name], wt[0]) if wt.size == 1 else wt
        return pr, sol, widths, plan_from_widths(quant, widths, base, float_dtype)

    total = budget.total_bits
    pr, sol, widths, plan = solve_total(total)
    exact = None
    if verify and total is not None:
        eff = total
        exact = exact_stream_bits(st_all, plan, mode, mtypes, entropy)
        for _ in range(8):
            if exact <= total:
                break
            # Byte padding (at most 7 bits per padded field) is not in the model: tighten by
            # this solution's padding, and by at least one bit.
            model_bits = int(round(sol.cost)) + pr.sm.fixed
            eff = min(eff - 1, total - (exact - model_bits))
            pr, sol, widths, plan = solve_total(eff)
            exact = exact_stream_bits(st_all, plan, mode, mtypes, entropy)
        if exact > total:
            raise SpecError("could not meet the size budget with the format's exact accounting")
        # The model may reserve fields the stream does not need (a tensor whose channels all
        # got one width sends no widths): spend that slack.
        for _ in range(3):
            slack = total - exact
            if slack <= 0:
                break
            trial = solve_total(eff + slack)
            if trial[1].loss >= sol.loss:
                break
            trial_exact = exact_stream_bits(st_all, trial[3], mode, mtypes, entropy)
            if trial_exact > total:
                break
            eff += slack
            (pr, sol, widths, plan), exact = trial, trial_exact
    uniform: dict = {}
    if uniform_check and data is not None and total is not None and not probs[0].extra \
            and hasattr(model, "named_parameters"):
        from .uniform_check import check_uniform

        swap, uniform = check_uniform(
            model, data, plan, [(t.name, n_channels[t.name]) for t in quant], cands,
            lambda w: plan_from_widths(quant, w, base, float_dtype),
            lambda p: exact_stream_bits(st_all, p, mode, mtypes, entropy) <= total, forward, max_batches)
        if swap is not None:
            plan, widths, k = swap
            exact = exact_stream_bits(st_all, plan, mode, mtypes, entropy) if exact is not None else None
            pr = probs[-1]  # the per-tensor problem (one width per tensor)
            sol = Solution(np.full(pr.loss.shape[0], k), float(pr.loss[:, k].sum()),
                           float(pr.sm.cost[:, k].sum()), False, 0.0, "uniform")
    front: tuple[FrontPoint, ...] = ()
    if front_points:
        p0 = probs[0]
        pts = pareto_front(p0.loss, p0.sm.cost, p0.allowed, n_points=front_points, solver=p0.which)
        front = tuple(
            FrontPoint(
                int(round(p.cost)) + p0.sm.fixed,
                p.loss,
                {t.name: cand_arr[p.choice][p0.sm.unit_tensor == i] for i, t in enumerate(quant)},
            )
            for p in pts
        )
    t_solve = time.perf_counter() - t1
    return Allocation(
        plan=plan,
        granularity=granularity,
        budget=budget,
        candidates=cands,
        base=base,
        tensors=tuple(quant),
        widths=widths,
        predicted_loss=sol.loss,
        model_bits=int(round(sol.cost)) + pr.sm.fixed,
        exact_bits=exact,
        fixed_bits=pr.sm.fixed,
        solution=sol,
        sensitivity=sens,
        mode=mode,
        entropy=entropy,
        seconds={"sensitivity": t_sens, "solve": t_solve},
        front=front,
        uniform=uniform,
    )


def allocate(
    model,
    budget: Budget,
    sensitivity: str | Sensitivity = "weight",
    data=None,
    granularity: str = "tensor",
    candidates=DEFAULT_CANDIDATES,
    **kwargs,
) -> Plan:
    """Choose a bit width per tensor (``granularity="tensor"``) or per output channel
    (``"channel"``) from ``candidates`` minimising the predicted loss within ``budget``.

    - ``model``: ``nn.Module`` (a state dict suffices for ``sensitivity="weight"``).
    - ``budget``: :class:`Budget` (bits, bytes, airtime on an 802.11 link; optional BOPs / latency).
      The size counts the whole stream: header, record framing, scales, per-channel widths,
      float tensors and codes.
    - ``sensitivity``: "hessian" | "fisher" (labelled ``data``), "output" (unlabelled ``data``),
      "weight" (no data), or a precomputed :class:`Sensitivity`.
    - keyword options (see :func:`search`): ``base`` spec (default symmetric, per-channel
      scales, min-max), ``floors`` / ``ceilings`` (int or {regex: bits}), ``loss_fn``,
      ``forward``, ``mode`` ("self" | "agreed" header), ``solver`` ("auto" | "milp" |
      "lagrangian"), ``example_input`` + ``act_bits`` (BOPs), ``latency_table``,
      ``entropy`` ("auto": budget the entropy-coded stream, per tensor or per channel).

    Returns the Plan; per-channel widths are in each rule's ``QuantSpec.channel_bits``.
    """
    return search(model, budget, sensitivity, data, granularity, candidates, **kwargs).plan

"""``compress(model, evaluate=fn, max_drop=0.005, calibration=batches) -> Result``: the smallest
entropy-coded stream whose *measured* task metric stays within a drop of the float model's.

Two families of streams, each one scalar away from the next (the step multiplier ``m`` of
:mod:`nnshare.mixed.task_rate`):

- ``"channel"`` (when some tensor's channels differ enough to pay for their scales,
  :mod:`nnshare.mixed.task_channels`): as "task", with one step per channel of those tensors;
- ``"task"``: one step per float tensor from the predicted sensitivities (equal marginal
  predicted loss per bit; 1-D tensors included when the sensitivity measures them);
- ``"hybrid"`` (when 1-D tensors are weighted): the uniform step for every weight matrix, the
  1-D tensors by their sensitivities;
- ``"uniform"``: one global step for every weight matrix, 1-D tensors at their fine step (the
  best uniform plan; always tried, so the result is never worse than it).

Per family the search starts from a step predicted from the tensors' statistics, jumps with the
measured drop (drop ~ step², so ``log2 m`` moves by half the log of the drop ratio), then bisects
``log2 m`` between the largest step that kept the metric and the smallest that did not, to
``resolution``. The smallest stream wins whose metric and every larger measured stream of its
family stay within the budget. A family stops as soon as none of its streams can beat the best
found (a failing stream at least as large). Each evaluation loads what the receiver rebuilds
(``dequantize()`` of every record of the written stream) into one working copy of the model
(:mod:`.task_eval`) where the record is written: the codes of one tensor are in memory at a
time. Only the best stream so far is kept (any other that wins in the end is written again, the
same bytes); the chosen stream's tensors are read back from its bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..state import model_state
from .budget import Budget
from .task_eval import Evaluator
from .task_rate import steps_for, write_quantized, write_steps
from .task_weights import TaskWeights, task_weights

FAMILIES = ("channel", "task", "hybrid", "uniform")


@dataclass(frozen=True)
class Point:
    """One measured stream: family, ``log2`` of its step multiplier, bytes, metric, within budget."""

    family: str
    log2_step: float
    bytes: int
    metric: float
    ok: bool


@dataclass(frozen=True, eq=False)
class Result:
    """The smallest stream found within the budget.

    - ``data``: the stream (entropy-coded, decodes with :func:`nnshare.decode`).
    - ``family``: "channel" | "task" | "hybrid" | "uniform" | "float" (lossless fallback);
      ``plan``: the step of every float tensor (its quantization grid; a (C,) array for
      per-channel steps; integer tensors travel raw).
    - ``metric``: measured on the decoded stream; ``reference``: the float model's metric.
    - ``trace``: every measured stream in order; ``front``: its Pareto front (bytes up, metric
      better). ``evaluations``: calls of ``evaluate``, the float model's included.
    - ``weights``: the sensitivities used (reuse them in another call); ``seconds``.
    """

    data: bytes
    family: str
    plan: dict[str, float]
    metric: float
    reference: float
    budget: Budget
    trace: tuple[Point, ...]
    evaluations: int
    tensors: dict
    quality: object
    weights: TaskWeights
    seconds: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Stream length in bytes (everything: header, names, side info, CRCs)."""
        return len(self.data)

    @property
    def drop(self) -> float:
        """How much worse than the float model (metric units; negative when better)."""
        return self.reference - self.metric if self.budget.higher_is_better else self.metric - self.reference

    @property
    def front(self) -> tuple[Point, ...]:
        """Measured points no other point beats on both bytes and metric, by bytes."""
        sign = 1.0 if self.budget.higher_is_better else -1.0
        pts = sorted(self.trace, key=lambda p: (p.bytes, -sign * p.metric))
        out, best = [], -math.inf
        for p in pts:
            if sign * p.metric > best:
                out.append(p)
                best = sign * p.metric
        return tuple(out)


def _as_budget(budget, max_drop, relative, higher_is_better) -> Budget:
    if budget is not None:
        if max_drop is not None:
            raise SpecError("give max_drop or budget=Budget(max_drop=...), not both")
        if not isinstance(budget, Budget) or not budget.is_quality:
            raise SpecError("compress needs a task-quality budget: Budget(max_drop=...)")
        return budget
    if max_drop is None:
        raise SpecError("compress needs max_drop (e.g. 0.005 for 0.5 %) or budget=Budget(max_drop=...)")
    return Budget(max_drop=max_drop, relative=relative, higher_is_better=higher_is_better)


def _start_log2(arrays: dict, db: float = 35.0) -> float:
    """log2 of a global step giving about ``db`` dB of SQNR over the weight matrices."""
    mats = [a for a in arrays.values() if a.dtype.kind == "f" and a.ndim >= 2 and a.size]
    mats = mats or [a for a in arrays.values() if a.dtype.kind == "f" and a.size]
    if not mats:
        raise SpecError("the model has no float tensor to compress")
    e = sum(float((a.astype(np.float64) ** 2).sum()) for a in mats)
    n = sum(a.size for a in mats)
    rms = math.sqrt(e / n) if e > 0 else 1.0
    return math.log2(math.sqrt(12.0) * rms * 10 ** (-db / 20))


def compress(
    model,
    evaluate: Callable,
    max_drop: float | None = None,
    calibration=None,
    *,
    budget: Budget | None = None,
    relative: bool = True,
    higher_is_better: bool = True,
    sensitivity: str | TaskWeights | None = None,
    forward: Callable | None = None,
    loss_fn: Callable | None = None,
    method: str = "tcq",
    mode: str = "self",
    counters: bool = False,
    resolution: float = 1 / 16,
    max_evals: int = 40,
    progress: Callable | None = None,
) -> Result:
    """The smallest stream whose measured task metric is within ``max_drop`` of the float model's.

    - ``model``: an ``nn.Module`` (``evaluate`` gets a copy holding the decoded weights) or a
      state dict (``evaluate`` gets a ``{name: torch.Tensor}`` state dict).
    - ``evaluate(model_or_state) -> float``: the task metric (accuracy, cosine, loss, ...).
    - ``max_drop``: a fraction of the float metric (``relative=True``, default) or metric units;
      ``higher_is_better=False`` for a loss / MSE. Or ``budget=Budget(max_drop=...)``.
    - ``calibration``: batches for the sensitivity (inputs for "output", ``(inputs, targets)``
      for "hessian" / "fisher"); ``sensitivity``: "output" (default with calibration),
      "hessian", "fisher", "weight" (default without: the uniform plan only), or the
      ``Result.weights`` of an earlier call (computed once, reused).
    - ``method``: rounding of the weight matrices (tcq | tcq4 | rdo | nearest); ``mode``: "self"
      (names in the header) | "agreed"; ``counters``: send num_batches_tracked too.
    - ``resolution``: bisection stops when the step interval is this narrow (log2 units, 1/16 is
      about 4 % of step); ``max_evals``: at most this many evaluations in all.
    - ``progress(evaluations, point)``: called after each measured stream.

    Raises SpecError for a bad budget, option or metric, and when not even the lossless stream
    meets the budget (a non-deterministic ``evaluate``).
    """
    t0 = time.perf_counter()
    bud = _as_budget(budget, max_drop, relative, higher_is_better)
    if not callable(evaluate):
        raise SpecError(f"evaluate must be a function of the model, got {type(evaluate).__name__}")
    if mode not in ("self", "agreed"):
        raise SpecError(f"mode must be 'self' or 'agreed', got {mode!r}")
    if not (isinstance(resolution, int | float) and 0 < resolution <= 1):
        raise SpecError(f"resolution must be in (0, 1] (log2 of the step), got {resolution!r}")
    if isinstance(max_evals, bool) or not isinstance(max_evals, int) or max_evals < 3:
        raise SpecError(f"max_evals must be an integer >= 3, got {max_evals!r}")
    if method not in ("tcq", "tcq4", "rdo", "nearest"):
        raise SpecError(f"method must be tcq, tcq4, rdo or nearest, got {method!r}")
    st = model_state(model)
    if not counters:
        st = st.without_counters()
    if isinstance(sensitivity, TaskWeights):
        weights = sensitivity
    else:
        meth = sensitivity or ("output" if calibration is not None else "weight")
        if meth != "weight" and calibration is None:
            raise SpecError(f"sensitivity {meth!r} needs calibration batches")
        weights = task_weights(model, meth, calibration, forward=forward, loss_fn=loss_fn)
    t_sens = time.perf_counter() - t0
    ev = Evaluator(model, evaluate)
    ref = ev.reference()
    trace: list[Point] = []
    steps_of: dict[tuple[str, float], tuple[dict, dict]] = {}  # ok points: (steps, channels)
    kept: tuple[tuple[str, float], bytes] | None = None  # (key, stream) of the best point so far
    tol = abs(ref - bud.allowed(ref))

    def best_bytes() -> float:
        b = _pick(trace)
        return math.inf if b is None else b.bytes

    def measure(family: str, x: float) -> Point:
        nonlocal kept
        key = (family, round(x, 9))
        for p in trace:
            if (p.family, round(p.log2_step, 9)) == key:
                return p
        w = weights.weights if family != "uniform" else {}
        ch = weights.channels if family == "channel" else {}
        steps = steps_for(st.arrays, w, 2.0**x, ch, uniform=linear if family == "hybrid" else ())
        # each tensor is quantized where its record is written and loaded into the working
        # copy there: the codes of one tensor in memory at a time
        data = write_quantized(st, steps, method, mode, ch, sink=ev.load)
        metric = ev.loaded()
        p = Point(family, x, len(data), metric, bud.meets(metric, ref))
        trace.append(p)
        if p.ok:
            steps_of[key] = (steps, ch)
            if _pick(trace) is p:  # only the best stream so far is kept (any other is rebuilt)
                kept = (key, data)
        if progress is not None:
            progress(ev.count, p)
        return p

    def jump(p: Point) -> float:
        """How far to move log2 m from p: half the log of (allowed / measured) drop, in [0.5, 2]."""
        d = ref - p.metric if bud.higher_is_better else p.metric - ref
        if tol <= 0 or d <= 0 or not math.isfinite(d):
            return 1.0
        return float(np.clip(0.5 * abs(math.log2(tol / d)), 0.5, 2.0))

    def search_family(family: str, x0: float) -> None:
        p = measure(family, x0)
        lo = hi = None  # largest ok log2 m, smallest failing one
        if p.ok:
            lo = x0
            for _ in range(12):
                if ev.count >= max_evals:
                    return
                q = measure(family, lo + jump(p))
                if not q.ok:
                    hi = q.log2_step
                    break
                if q.bytes >= p.bytes:  # every step capped: nothing more to gain
                    return
                lo, p = q.log2_step, q
        else:
            hi = x0
            for _ in range(12):
                # a failing stream at least as large as the best one found: this family's
                # passing streams are larger still, none can win
                if ev.count >= max_evals or p.bytes >= best_bytes():
                    return
                q = measure(family, hi - jump(p))
                if q.ok:
                    lo = q.log2_step
                    break
                if q.bytes <= p.bytes:  # every step at its floor
                    return
                hi, p = q.log2_step, q
        if lo is None or hi is None:
            return
        hi_bytes = next(p.bytes for p in trace if p.family == family and p.log2_step == hi)
        while hi - lo > resolution and ev.count < max_evals and hi_bytes < best_bytes():
            mid = (lo + hi) / 2
            q = measure(family, mid)
            if q.ok:
                lo = mid
            else:
                hi, hi_bytes = mid, q.bytes

    # hybrid: the uniform step for the weight matrices, the sensitivities for the rest (1-D
    # tensors, embeddings: looked up, not multiplied, often far from the matrices' sensitivity)
    linear = frozenset(n for n, r in st.roles.items() if r == "weight")
    fine_weighted = any(n not in linear for n in weights.weights if n in st.arrays)
    families = ([*(["channel"] if weights.channels else []), "task", *(["hybrid"] if fine_weighted else []),
                 "uniform"] if weights.weights else ["uniform"])
    x0 = _start_log2(st.arrays)
    for fam in families:
        search_family(fam, x0)
        fam_ok = [p for p in trace if p.family == fam and p.ok]
        if fam_ok:  # the next family starts where this one ended
            x0 = max(p.log2_step for p in fam_ok)
    best = _pick(trace)
    t_search = time.perf_counter() - t0 - t_sens
    if best is None:
        return _lossless(st, ev, bud, ref, weights, trace, mode, t_sens, t_search)
    ev.release()
    key = (best.family, round(best.log2_step, 9))
    steps, ch = steps_of[key]
    if kept is not None and kept[0] == key:
        data = kept[1]
    else:  # a larger stream won after all (a later failure below it): rebuilt
        data = write_quantized(st, steps, method, mode, ch)
    kept = None
    tensors = _read_back(data, st, mode)
    return Result(data, best.family, steps, best.metric, ref, bud, tuple(trace), ev.count, tensors,
                  _quality(st, tensors), weights, {"sensitivity": t_sens, "search": t_search})


def _read_back(data: bytes, st, mode: str) -> dict:
    """The tensors of a stream as the receiver parses them (those of the model, in state order)."""
    from ..format.container import read_stream

    got = read_stream(data, st.layout() if mode == "agreed" else None).tensors
    return {n: got[n] for n in st.arrays if n in got}


def _pick(trace: list[Point]) -> Point | None:
    """Per family the smallest ok stream whose every larger measured stream is ok too; then the
    smallest of those (ties: the better metric)."""
    best = None
    for fam in FAMILIES:
        pts = sorted((p for p in trace if p.family == fam), key=lambda p: -p.bytes)
        cand = None
        for p in pts:  # from the largest stream down
            if not p.ok:
                break
            cand = p
        if cand is not None and (best is None or cand.bytes < best.bytes):
            best = cand
    return best


def _quality(st, tensors):
    from ..share.quality import Dequantized, assess, warn_damage

    q = assess(st.arrays, Dequantized(tensors), st.roles)
    warn_damage(q)
    return q


def _lossless(st, ev, bud, ref, weights, trace, mode, t_sens, t_search) -> Result:
    """No lossy stream met the budget: the float32 stream, if even that does."""
    from ..format.spec import FloatTensor, RawTensor

    tensors = {n: FloatTensor(a) if a.dtype.kind == "f" else RawTensor(a) for n, a in st.arrays.items()}
    data = write_steps(st, tensors, mode)
    metric = ev.stream(data)
    p = Point("float", math.nan, len(data), metric, bud.meets(metric, ref))
    trace.append(p)
    if not p.ok:
        raise SpecError(f"no stream meets the budget, not even the lossless one (metric {metric:.6g}, "
                        f"float model {ref:.6g}): is evaluate deterministic?")
    return Result(data, "float", {}, metric, ref, bud, tuple(trace), ev.count, tensors, _quality(st, tensors),
                  weights, {"sensitivity": t_sens, "search": t_search})

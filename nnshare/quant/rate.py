"""Rate control: step sizes for a target (total bits, bits per parameter, SQNR in dB, or MSE),
RDO rounding and trellis-coded quantization, producing QuantizedTensor objects.

All tensors are quantized symmetrically with zero at code 0: ``x_hat = step * code``. Methods:

- ``"nearest"``: code = round(x / step).
- ``"rdo"``: nearest, then a code moves one step toward zero when ``lam * bits_saved`` exceeds
  the squared error it adds (bits from the tensor's own code histogram).
- ``"tcq"``: 8-state trellis-coded quantization (:mod:`.tcq`; ``"tcq4"``: the 4-state trellis);
  codes are reconstruction indices,
  so the receiver's plain affine dequantizer applies unchanged; the entropy coder's "tcq" models
  code the trellis levels.

Bits are the entropy coder's estimate (:func:`nnshare.format.entropy.cost_bits`) plus the scales
(32 bits each for fp32); distortion is the sum of squared errors of the dequantized values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor, round_scale, scale_shape, to_blocks
from . import tcq
from .affine import as_float_array
from .entropy_model import cost_bits, estimate_bits
from .rate_search import search
from .spec import QuantSpec
from .tcq import tcq_codes

METHODS = ("nearest", "rdo", "tcq", "tcq4")
#: Default multiplier of :data:`LAMBDA_HIGH_RATE` per method: measured best on Gaussian data
#: (TCQ's own distortion per bit is ~3x that of rounding, so its slope is ~3x steeper).
DEFAULT_LAM_SCALE = {"nearest": 0.0, "rdo": 1.0, "tcq": 3.5, "tcq4": 3.5}
#: High-rate slope of D(R) per bit, in step² units: dD/dR = -2 ln2 * step²/12.
LAMBDA_HIGH_RATE = math.log(2) / 6
_SCALE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}


@dataclass(frozen=True)
class RateResult:
    """Rate-control outcome: tensors, the multiplier found and the measured totals."""

    tensors: dict[str, QuantizedTensor]
    multiplier: float  # the global step (allocation "mse") or step / RMS (allocation "sqnr")
    bits: float  # estimated total bits (payload + scales)
    sse: float  # sum of squared errors
    energy: float  # sum of squares of the inputs
    numel: int
    iterations: int

    @property
    def bits_per_param(self) -> float:
        return self.bits / max(self.numel, 1)

    @property
    def mse(self) -> float:
        return self.sse / max(self.numel, 1)

    @property
    def sqnr_db(self) -> float:
        return 10 * math.log10(self.energy / self.sse) if self.sse > 0 else math.inf


def quantize_codes(u: np.ndarray, method: str = "nearest", lam: float = LAMBDA_HIGH_RATE):
    """Integer codes (int64) for values ``u`` in units of the step.

    ``lam``: Lagrange multiplier in step² per bit, used by "rdo" and "tcq" (0 = distortion only).
    """
    u = np.asarray(u, np.float64)
    if method == "nearest":
        return np.rint(u).astype(np.int64)
    if method == "rdo":
        return rdo_round(u, lam)
    if method in ("tcq", "tcq4"):
        return tcq_codes(u.reshape(-1), lam, 8 if method == "tcq" else 4).reshape(u.shape)
    raise SpecError(f"unknown quantization method {method!r}; known: {', '.join(METHODS)}")


def rdo_round(u: np.ndarray, lam: float) -> np.ndarray:
    """Nearest rounding, then each code moves one step toward zero where ``lam`` * (bits saved) >
    (squared error added); bits are -log2 of the nearest codes' smoothed histogram."""
    c = np.rint(u).astype(np.int64)
    if lam <= 0 or c.size == 0:
        return c
    lo = int(c.min())
    h = np.bincount((c - lo).ravel()).astype(np.float64) + 0.5
    bits = -np.log2(h / h.sum())
    c1 = c - np.sign(c)
    gain = lam * (bits[c - lo] - bits[c1 - lo]) - ((u - c1) ** 2 - (u - c) ** 2)
    return np.where((c != 0) & (gain > 0), c1, c)


def _bits_for(codes: np.ndarray) -> int:
    m = max(-int(codes.min()), int(codes.max())) if codes.size else 0  # max |code|, no temporary
    b = max(2, m.bit_length() + 1)
    if b > 16:
        raise SpecError(f"step too small: codes up to {m} need {b} bits (max 16)")
    return b


def _row_len(shape: tuple[int, ...]) -> int | None:
    return int(shape[-1]) if len(shape) >= 2 and shape[-1] >= 2 else None


def quantize_tensor(
    x,
    steps,
    *,
    method: str = "nearest",
    lam: float = LAMBDA_HIGH_RATE,
    granularity: str = "tensor",
    axis: int = 0,
    scale_dtype: str = "fp32",
) -> QuantizedTensor:
    """Quantize ``x`` with the given step (a scalar, or one per channel along ``axis``)."""
    x = as_float_array(x)
    if not np.all(np.isfinite(x)):
        raise SpecError("cannot quantize a tensor with NaN or infinite values")
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    shape = tuple(x.shape)
    proto = QuantSpec(bits=16, granularity=granularity, axis=axis, scale_dtype=scale_dtype)
    sshape = scale_shape(shape, proto)
    step = np.broadcast_to(np.asarray(steps, np.float32), sshape)
    step = round_scale(np.where(step > 0, step, 1.0), scale_dtype).reshape(sshape)
    if method in ("tcq", "tcq4") and granularity == "tensor" and x.size > tcq.BLOCK:
        codes = _tcq_blocks(x, step, method, lam)
        if codes is not None:
            spec = QuantSpec(bits=_bits_for(codes), granularity=granularity, axis=axis,
                             scale_dtype=scale_dtype)
            return QuantizedTensor(codes=codes.reshape(shape), params={"scale": step}, spec=spec,
                                   shape=shape)
    u = to_blocks(x, proto).astype(np.float64)
    np.divide(u, step.reshape(-1, 1).astype(np.float64), out=u)
    if method == "nearest":  # fast path: in place, int32 directly (same codes as quantize_codes)
        np.rint(u, out=u)
        m = max(-float(u.min()), float(u.max())) if u.size else 0.0
        if m >= 1 << 15:
            raise SpecError(f"step too small: codes up to {m:.0f} need more than 16 bits")
        from ..format.spec import from_blocks

        codes = np.ascontiguousarray(from_blocks(u.astype(np.int32), shape, proto))
        spec = QuantSpec(bits=max(2, int(m).bit_length() + 1), granularity=granularity,
                         axis=axis, scale_dtype=scale_dtype)
        return QuantizedTensor(codes=codes, params={"scale": step}, spec=spec, shape=shape)
    if method in ("tcq", "tcq4") and granularity != "tensor":
        codes = np.stack([quantize_codes(row, method, lam) for row in u]) if u.size else u
    else:
        codes = quantize_codes(u, method, lam)
    from ..format.spec import from_blocks

    codes = from_blocks(np.asarray(codes, np.int64), shape, proto)
    spec = QuantSpec(
        bits=_bits_for(codes), granularity=granularity, axis=axis, scale_dtype=scale_dtype
    )
    return QuantizedTensor(codes=codes.astype(np.int32), params={"scale": step}, spec=spec,
                           shape=shape)


def _tcq_blocks(x: np.ndarray, step: np.ndarray, method: str, lam: float) -> np.ndarray | None:
    """int32 TCQ codes of ``x / step`` (one step) a block of stripes at a time: the codes of the
    whole-array path (:func:`.tcq.tcq_codes_blocks`) without its float64 copy and int64 paths of
    the tensor. None when a code could pass 2**30 (the whole-array path reports it)."""
    xf = x.reshape(-1)
    st = np.float64(step.reshape(-1)[0])
    if max(-float(xf.min()), float(xf.max())) / float(st) >= 2.0**30:
        return None
    return tcq.tcq_codes_blocks(lambda a, b: xf[a:b].astype(np.float64) / st, xf.size, lam,
                                8 if method == "tcq" else 4)


def tensor_bits(q: QuantizedTensor, models: str | Iterable[str] = "auto") -> float:
    """Estimated bits of a tensor: entropy-coded codes (+ their side info) plus its scales."""
    codes = np.asarray(q.codes).reshape(-1)
    b = cost_bits(codes, q.spec.qmin, q.spec.qmax, models=models, row_len=_row_len(q.shape))
    return b + _SCALE_BITS[q.spec.scale_dtype] * int(np.asarray(q.params["scale"]).size)


def quick_bits(q: QuantizedTensor, models: str | Iterable[str] = "auto") -> tuple[float, list[str]]:
    """A quick estimate of :func:`tensor_bits` (empirical entropy of the cheapest model, no
    fitting) and that model's name, to estimate only that one next time."""
    codes = np.asarray(q.codes).reshape(-1)
    b, name = estimate_bits(codes, q.spec.qmin, q.spec.qmax, models=models, row_len=_row_len(q.shape))
    return b + _SCALE_BITS[q.spec.scale_dtype] * int(np.asarray(q.params["scale"]).size), [name]


def _hinted_bits(q: QuantizedTensor, hint, models) -> float:
    """:func:`tensor_bits` with only the hinted model (>= with every model), or every model
    when the hint does not apply."""
    if hint is not None:
        try:
            return tensor_bits(q, hint)
        except SpecError:
            pass
    return tensor_bits(q, models)


def _bits_of(r: RateResult) -> tuple[float, RateResult]:
    return r.bits, r


def _sse_of(qs: tuple[dict, float], m: float) -> tuple[float, tuple]:
    return qs[1], (qs[0], qs[1], m)


def _rms_rows(x: np.ndarray, granularity: str, axis: int) -> np.ndarray:
    proto = QuantSpec(bits=16, granularity=granularity, axis=axis)
    b = to_blocks(x, proto).astype(np.float64)
    r = np.sqrt((b**2).mean(axis=1)) if b.size else np.zeros(b.shape[0])
    return np.where(r > 0, r, 1.0).reshape(scale_shape(x.shape, proto))


def rate_control(
    tensors: Mapping[str, object],
    *,
    bits: float | None = None,
    bits_per_param: float | None = None,
    sqnr_db: float | None = None,
    mse: float | None = None,
    method: str = "tcq",
    lam_scale: float | None = None,
    granularity: str = "tensor",
    axis: int = 0,
    allocation: str = "mse",
    scale_dtype: str = "fp32",
    models: str | Iterable[str] = "auto",
    tol: float = 0.003,
    max_iter: int = 40,
    max_step: Mapping[str, float] | None = None,
) -> RateResult:
    """Quantize every tensor so that the total meets exactly one target.

    - ``bits`` (total, payload + scales) or ``bits_per_param``: the largest total <= target,
      within ``tol`` (relative) when the rate curve allows it.
    - ``sqnr_db`` (10 log10 of input energy / squared error) or ``mse``: the fewest bits with
      SQNR >= target (MSE <= target).

    ``allocation``: "mse" = one step for every tensor and channel (MSE-optimal at high rate);
    "sqnr" = step proportional to each tensor's (or channel's, with granularity "channel") RMS.
    ``lam_scale`` scales the RD multiplier of "rdo"/"tcq" (in units of the high-rate slope
    :data:`LAMBDA_HIGH_RATE`; 0 = distortion-only; None = :data:`DEFAULT_LAM_SCALE`).
    ``max_step``: per-tensor upper bounds on the step (e.g. the tensor's RMS, so that no tensor
    rounds to all zeros under a step chosen for the others).
    Search (:mod:`.rate_search`) on the log of the step: for a bit target first on a quick
    estimate of the bits (:func:`quick_bits`), then on the entropy coder's estimate of the
    models the quick pass chose from there (the estimate over every model, reported, is never
    more);
    for an error target on the squared error alone (bits only for the step found).
    """
    given = [v is not None for v in (bits, bits_per_param, sqnr_db, mse)]
    if sum(given) != 1:
        raise SpecError("give exactly one target: bits, bits_per_param, sqnr_db or mse")
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if allocation not in ("mse", "sqnr"):
        raise SpecError(f"allocation must be 'mse' or 'sqnr', got {allocation!r}")
    arrays = {k: as_float_array(v) for k, v in tensors.items()}
    if not arrays:
        raise SpecError("rate control needs at least one tensor")
    for k, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise SpecError(f"tensor {k!r} has non-finite values")
    numel = sum(a.size for a in arrays.values())
    energy = float(sum((a.astype(np.float64) ** 2).sum() for a in arrays.values()))
    if numel == 0:  # every tensor empty: any step meets any target; report step 1
        for v in (bits, bits_per_param, sqnr_db, mse):
            if v is not None and not (math.isfinite(v) and (v > 0 or v is sqnr_db)):
                raise SpecError(f"targets must be finite and positive, got {v}")
        out = {k: quantize_tensor(a, np.ones(_rms_rows(a, granularity, axis).shape), method="nearest",
                                  granularity=granularity, axis=axis, scale_dtype=scale_dtype)
               for k, a in arrays.items()}
        return RateResult(out, 1.0, float(sum(tensor_bits(q, models) for q in out.values())), 0.0,
                          0.0, 0, 0)
    if bits_per_param is not None:
        bits = bits_per_param * numel
    if sqnr_db is not None:
        mse = energy / numel * 10 ** (-sqnr_db / 10)
    if bits is not None and bits <= 0 or mse is not None and mse <= 0:
        raise SpecError("targets must be positive")
    rms = {k: _rms_rows(a, granularity, axis) for k, a in arrays.items()}
    amax = max(float(np.abs(a).max()) if a.size else 0.0 for a in arrays.values()) or 1.0
    if lam_scale is None:
        lam_scale = DEFAULT_LAM_SCALE[method]
    lam = lam_scale * LAMBDA_HIGH_RATE

    done: dict[float, tuple[dict, float]] = {}  # the last search's first step is the quick one's best

    def quantize_all(m: float) -> tuple[dict, float]:
        if m in done:
            return done[m]
        out, sse = {}, 0.0
        for k, a in arrays.items():
            steps = m * rms[k] if allocation == "sqnr" else np.full(rms[k].shape, m)
            if max_step is not None and k in max_step:
                steps = np.minimum(steps, max_step[k])
            q = quantize_tensor(a, steps, method=method, lam=lam, granularity=granularity,
                                axis=axis, scale_dtype=scale_dtype)
            out[k] = q
            sse += float(((q.dequantize().astype(np.float64) - a) ** 2).sum())
        done.clear()
        done[m] = (out, sse)
        return out, sse

    def hinted(m: float) -> RateResult:  # the coder's estimate of the model the quick pass chose
        out, sse = quantize_all(m)
        return RateResult(out, m, float(sum(_hinted_bits(q, hints.get(k), models) for k, q in out.items())),
                          sse, energy, numel, 0)

    hints: dict = {}

    def quick(m: float) -> RateResult:  # empirical entropy of one model per tensor, no fitting
        out, sse = quantize_all(m)
        tb = 0.0
        for k, q in out.items():
            b, hints[k] = quick_bits(q, hints.get(k, models))
            tb += b
        return RateResult(out, m, tb, sse, energy, numel, 0)

    # x = log2(multiplier): small step = many bits / low error
    if allocation == "sqnr":
        lo, hi = -16.0, 4.0
    else:
        lo, hi = math.log2(amax) - 15.5, math.log2(amax) + 2
    logs = {k: float(np.log2(rms[k]).mean()) for k in arrays}
    mean_log = sum(logs[k] * a.size for k, a in arrays.items()) / numel
    trellis = 1.0 if method in ("tcq", "tcq4") else 0.0  # TCQ's step is about half rounding's
    if bits is not None:  # high-rate Gaussian guess: bits ~ n (log2 rms + 2.05 - log2 step)
        x0 = mean_log + 2.05 - bits / numel - trellis - (mean_log if allocation == "sqnr" else 0.0)
    else:  # rounding: mse ~ step^2 / 12
        x0 = 0.5 * math.log2(12 * mse) - 0.5 * trellis - (mean_log if allocation == "sqnr" else 0.0)
    x0 = min(max(x0, lo + 0.5), hi - 0.5)
    if bits is not None:  # slope guesses: d ln(bits) / d log2(step) = -numel / bits at high rate
        first = search(lambda x: (quick(2.0**x).bits, None), bits, lo, hi, x0, rising=False, tol=tol,
                       max_iter=max_iter, slope=-numel / bits)
        x1 = first.x if first.x is not None else x0
        found = search(lambda x: _bits_of(hinted(2.0**x)), bits, lo, hi, x1, rising=False, tol=tol,
                       max_iter=max_iter, slope=first.slope)
        it = first.evaluations + found.evaluations
        if found.result is not None:  # every model tried: never more than the hinted ones
            r = found.result
            found = replace(found, result=replace(r, bits=float(sum(tensor_bits(q, models)
                                                                    for q in r.tensors.values()))))
    else:  # the squared error needs no bit estimate: bits only for the step found
        found = search(lambda x: _sse_of(quantize_all(2.0**x), 2.0**x), mse * numel, lo, hi, x0,
                       rising=True, tol=tol, max_iter=max_iter, slope=2 * math.log(2))
        it = found.evaluations
    best = found.result
    if best is None:
        if bits is not None:
            raise SpecError(f"bit target of {bits:,.0f} bits is not reachable: even the coarsest allowed "
                            "steps need more")
        raise SpecError("target not reachable with codes of at most 16 bits")
    if bits is None:
        out, sse, m = best
        best = RateResult(out, m, float(sum(tensor_bits(q, models) for q in out.values())), sse, energy,
                          numel, 0)
    return RateResult(best.tensors, best.multiplier, best.bits, best.sse, energy, numel, it)

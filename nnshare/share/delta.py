"""Model-update coding: W_new - W_base against a base both sides hold, with the previous
update's codes as temporal context for the next.

An update is an ``NNSH`` v2 stream of kind "update" (:mod:`nnshare.format.container`): the header
carries the base fingerprint (u64 of the base's values, what the receiver must hold) and, for a
chained update, the chain fingerprint (u64 of the previous update's codes); each tensor is an
ordinary affine record (symmetric, per tensor, scale = the step, entropy-coded with the previous
codes as temporal context). Agreed mode by default: the base supplies names and shapes.

The receiver rebuilds ``base + step * codes`` (float32; integer tensors exactly, in their own
dtype). A receiver holding another base, or another previous update, gets FormatError: never a
wrong model. The chain state both sides keep
(:class:`nnshare.format.chain.ChainState`) is a compact v2 stream of the codes. Version-1 ``NNSU``
streams and ``NNSS`` state files still decode (:mod:`.legacy_update`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..format.chain import ChainState, fingerprint_arrays, fingerprint_codes
from ..format.container import read_stream, write_stream
from ..format.errors import FormatError, SpecError
from ..format.records import Section
from ..quant.affine import as_float_array
from ..quant.fine import fine_step, is_fine
from ..quant.rate import DEFAULT_LAM_SCALE, LAMBDA_HIGH_RATE, quantize_tensor, rate_control
from . import legacy_update
from .receive import is_update  # noqa: F401  (re-exported: its former home)

#: The chain state an update leaves behind (compact: an NNSH stream of kind "state").
UpdateState = ChainState

__all__ = [
    "ChainState",
    "EncodedUpdate",
    "UpdateState",
    "decode_update",
    "encode_update",
    "fingerprint_arrays",
    "fingerprint_codes",
    "is_update",
    "load_state",
]


def load_state(data: bytes | bytearray | memoryview) -> ChainState:
    """A chain state from its bytes: a v2 state stream, or a version-1 ``NNSS`` file."""
    if bytes(data[:4]) == legacy_update.STATE_MAGIC:
        return ChainState.from_codes(legacy_update.read_state(data))
    return ChainState.from_bytes(data)


@dataclass(frozen=True)
class EncodedUpdate:
    """An encoded update: the stream, the state for the next round, what the receiver rebuilds
    (base + decoded delta, float32), the step and the entropy model chosen per tensor, and the
    stream's accounting (sections adding up to 8 x ``len(data)``)."""

    data: bytes
    state: ChainState
    reconstruction: dict[str, np.ndarray]
    steps: dict[str, float]
    models: dict[str, str]
    sections: tuple[Section, ...] = ()


def _arrays(d: Mapping[str, object], what: str) -> dict[str, np.ndarray]:
    if not isinstance(d, Mapping):
        raise SpecError(f"{what} must be a mapping of names to arrays")
    return {str(k): as_float_array(v) for k, v in d.items()}


def encode_update(
    new: Mapping[str, object],
    base: Mapping[str, object],
    *,
    state: ChainState | None = None,
    step: float | None = None,
    sqnr_db: float | None = None,
    bits_per_param: float | None = None,
    method: str = "tcq",
    lam_scale: float | None = None,
    models: str | Iterable[str] = "auto",
    mode: str = "agreed",
) -> EncodedUpdate:
    """Encode ``new - base`` tensor by tensor, each at its own step:

    - weight deltas (rank >= 2): a step per tensor chosen by rate control so that every weight
      delta meets the update SQNR target (dB) on its own, or (a step proportional to each delta's
      RMS) all of them together the bits-per-parameter target; or the one given ``step``;
    - 1-D float deltas (biases, norms, BatchNorm statistics): their own fine step
      (:func:`nnshare.quant.fine.fine_step`);
    - integer / bool tensors (counters, position ids): exactly, step 1.

    ``state``: the previous update's chain state (both sides hold it) for temporal context; None
    starts a chain. ``mode``: "agreed" (names and shapes come from the base) or "self".
    ``models``: "auto" (each record's entropy coder picks the cheapest model)."""
    if models != "auto":
        raise SpecError("update records choose their entropy model themselves: models='auto'")
    new_a, base_a = _arrays(new, "new"), _arrays(base, "base")
    if set(new_a) != set(base_a):
        raise SpecError(f"new and base differ in tensors: {sorted(set(new_a) ^ set(base_a))}")
    for k in new_a:
        if new_a[k].shape != base_a[k].shape:
            raise SpecError(f"tensor {k!r}: shape {new_a[k].shape} vs base {base_a[k].shape}")
    names = sorted(new_a)
    exact = {k for k in names if _is_integer(new[k]) or _is_integer(base[k])}
    delta = {k: new_a[k].astype(np.float64) - base_a[k] for k in names}
    for k in exact:
        delta[k] = np.asarray(new[k]).astype(np.int64) - np.asarray(base[k]).astype(np.int64)
    for k in names:
        if k not in exact and np.any(np.abs(delta[k]) > np.finfo(np.float32).max):
            raise SpecError(f"tensor {k!r}: new - base overflows float32")
    if sum(x is not None for x in (step, sqnr_db, bits_per_param)) != 1:
        raise SpecError("give exactly one of step, sqnr_db, bits_per_param")
    if lam_scale is None:
        lam_scale = DEFAULT_LAM_SCALE[method] if method in DEFAULT_LAM_SCALE else 0.0
    weights = [k for k in names if k not in exact and not is_fine(delta[k].shape) and np.any(delta[k])]
    steps: dict[str, float] = {k: 1.0 for k in exact}
    for k in names:
        if k not in exact and k not in weights:
            steps[k] = fine_step(delta[k])
    if step is not None:
        if not (np.isfinite(step) and step > 0):
            raise SpecError(f"step must be a positive number, got {step}")
        steps.update({k: float(step) for k in weights})
    elif weights:
        models_ = {"tcq": ("iid", "tcq8"), "tcq4": ("iid", "tcq")}.get(method, ("iid",))
        # an SQNR target holds for every weight delta on its own; a rate target for them together
        groups = [[k] for k in weights] if sqnr_db is not None else [weights]
        for group in groups:
            rc = rate_control(
                {k: delta[k].astype(np.float32) for k in group},
                sqnr_db=sqnr_db,
                bits_per_param=bits_per_param,
                method=method,
                lam_scale=lam_scale,
                allocation="sqnr",
                models=models_,
            )
            steps.update({k: float(rc.tensors[k].params["scale"]) for k in group})
    prev = state.codes if state is not None else None
    if prev is not None and not set(prev) <= set(names):
        raise SpecError("the previous update's state covers other tensors")
    tensors, codes_out, recon = {}, {}, {}
    for k in names:
        kind = method if k in weights else "nearest"
        q = quantize_tensor(delta[k].astype(np.float32) if k not in exact else delta[k].astype(np.float64),
                            steps[k], method=kind, lam=lam_scale * LAMBDA_HIGH_RATE)
        if prev is not None and k in prev and prev[k].size != q.numel:
            raise SpecError(f"tensor {k!r}: the previous update has another size")
        tensors[k] = q
        c = q.codes.reshape(-1).astype(np.int32)
        codes_out[k] = c
        steps[k] = float(q.params["scale"])
        recon[k] = _rebuild(np.asarray(base[k]), base_a[k], steps[k], c)
    _check_finite(recon, SpecError)  # what the receiver would refuse is never written
    data, secs = write_stream(
        tensors, mode, entropy="auto", kind="update", base_fingerprint=fingerprint_arrays(base_a),
        chain_fingerprint=state.fingerprint if state is not None else None, contexts=prev,
    )
    chosen = {k: "packed" for k in names}
    for sec in secs:
        if sec.note.startswith("ec:"):
            chosen[sec.name] = sec.note[3:]
    return EncodedUpdate(data, _chain(codes_out, base), recon, steps, chosen, tuple(secs))


def _chain(codes: dict[str, np.ndarray], base: Mapping[str, object]) -> ChainState:
    """The chain state: the codes the next round's temporal contexts use, i.e. those of the
    float tensors of rank >= 2 with a nonzero update (1-D tensors and integers are coded
    without temporal context; both sides apply this rule to the same codes)."""
    keep = {k: c for k, c in codes.items()
            if not is_fine(np.shape(base[k])) and not _is_integer(base[k]) and c.any()}
    return ChainState.from_codes(keep)


def _is_integer(v: object) -> bool:
    dt = getattr(v, "dtype", None)
    if dt is None:
        return False
    if hasattr(v, "is_floating_point"):  # torch
        return not v.is_floating_point()
    return np.dtype(dt).kind in "iub"


def _rebuild(base_orig: np.ndarray, base_f: np.ndarray, step: float, codes: np.ndarray) -> np.ndarray:
    """``base + step * codes``: float32 for float tensors; integer / bool tensors exactly, in
    their own dtype."""
    if _is_integer(base_orig):
        d = np.rint(np.float64(step) * codes).astype(np.int64).reshape(base_f.shape)
        return (np.asarray(base_orig).astype(np.int64) + d).astype(np.asarray(base_orig).dtype)
    with np.errstate(over="ignore"):  # an overflow is refused by _check_finite
        return (base_f + np.float32(step) * codes.astype(np.float32).reshape(base_f.shape)).astype(
            np.float32)


def base_layout(base: Mapping[str, object]) -> list[tuple[str, tuple[int, ...]]]:
    """The layout an agreed-mode update is read with: the base's names and shapes."""
    return [(k, tuple(np.shape(v))) for k, v in base.items()]


def decode_update(
    data: bytes | bytearray | memoryview,
    base: Mapping[str, object] | None,
    *,
    state: ChainState | None = None,
) -> tuple[dict[str, np.ndarray], ChainState]:
    """Rebuild ``base + delta`` (float32 per tensor) and the chain state for the next update.

    FormatError when the stream is corrupted, when ``base`` is missing or is not the base the
    update was made against, or when the update continues a chain the receiver's ``state``
    does not match.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    if base is None:
        raise FormatError("this is a model update: the receiver must supply the base model")
    try:
        base_a = _arrays(base, "base")
    except SpecError as e:
        raise FormatError(f"unusable base: {e}") from None
    if bytes(data[:4]) == legacy_update.MAGIC:
        out, codes, steps = legacy_update.decode_v1(data, base_a, state.codes if state else None)
        for k in out:  # integer tensors exactly, in their own dtype
            if _is_integer(base[k]):
                out[k] = _rebuild(np.asarray(base[k]), base_a[k], steps[k], codes[k])
        _check_finite(out, FormatError)
        return out, ChainState.from_codes(codes)  # a v1 chain fingerprints every tensor
    st = read_stream(data, base_layout(base_a), chain=state,
                     base_fingerprint=fingerprint_arrays(base_a))
    if st.kind != "update":
        raise FormatError(f"not a model update: a {st.kind} stream")
    if set(st.tensors) != set(base_a):
        raise FormatError(
            f"update and base differ in tensors: {sorted(set(st.tensors) ^ set(base_a))[:5]}"
        )
    out, codes = {}, {}
    for k in sorted(base_a):
        t = st.tensors[k]
        if t.shape != base_a[k].shape or not hasattr(t, "codes") or t.spec.scheme != "affine" \
                or not t.spec.symmetric or t.spec.granularity != "tensor":
            raise FormatError(f"update record {k!r} is not a per-tensor delta of the base's shape")
        c = np.asarray(t.codes, np.int32).reshape(-1)
        step = float(np.asarray(t.params["scale"]).reshape(-1)[0])
        out[k] = _rebuild(np.asarray(base[k]), base_a[k], step, c)
        codes[k] = c
    _check_finite(out, FormatError)
    return out, _chain(codes, base)


def _check_finite(arrays: Mapping[str, np.ndarray], error) -> None:
    """``error`` naming the first tensor whose rebuilt values overflow (base + step x codes)."""
    for k, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise error(f"update of {k!r}: base + step x codes is not finite (overflow)")

"""Whole-model encode / decode: state dict -> plan -> quantized tensors -> stream, and back."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FormatError, NNShareWarning, SpecError
from ..format import container
from ..format.meta import with_meta
from ..format.records import Tensor
from ..format.spec import QuantSpec
from ..outputs import atomic_write  # noqa: F401  (re-exported: its former home)
from ..plan import Plan, preset
from ..state import ModelState, model_state
from .quality import Quality, assess, warn_damage
from .receive import Decoded, decode_model  # noqa: F401  (re-exported: their former home)

PlanLike = Plan | str | Mapping[str, "QuantSpec | str"]


def tensors_of(model_or_state: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Named numpy arrays of a model (tied aliases once) and each tensor's owning module class
    name: a thin view of :func:`nnshare.state.model_state`."""
    st = model_state(model_or_state)
    return dict(st.arrays), dict(st.module_types)


def as_plan(plan: PlanLike) -> Plan:
    """A Plan from a Plan, a preset name or an explicit {name: spec | float dtype}
    (:meth:`Plan.from_choices`)."""
    if isinstance(plan, str):
        return preset(plan)
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, Mapping):
        return Plan.from_choices(plan)
    raise SpecError(f"plan must be a Plan, a preset name or a mapping, got {type(plan).__name__}")


def quantize_model(model_or_state: Any, plan: PlanLike = "ptq-t8", *,
                   counters: bool = False) -> dict[str, Tensor]:
    """Quantize every tensor the plan names; the rest become float (or raw integer) tensors
    (:meth:`nnshare.plan.Plan.apply`)."""
    return as_plan(plan).apply(model_or_state, counters=counters)


@dataclass(frozen=True, eq=False)
class Encoded:
    """An encoded model: the stream, what was written, and what it cost the model."""

    data: bytes
    tensors: dict[str, Tensor]
    quality: Quality
    state: ModelState


def encode_tensors(
    tensors: Mapping[str, Tensor],
    mode: str = "self",
    *,
    entropy: str = "none",
    base_fingerprint: int | None = None,
    dtypes: Mapping[str, str] | None = None,
    ties: Mapping[str, str] | None = None,
) -> bytes:
    """Serialise already-quantized tensors (e.g. from QAT's convert or an allocator).

    ``dtypes`` / ``ties`` (self mode only): original float dtypes and tied aliases the receiver
    restores (:mod:`nnshare.share.meta`)."""
    if mode not in ("self", "agreed"):
        raise SpecError(f"mode must be 'self' or 'agreed', got {mode!r}")
    if entropy not in ("none", "auto"):
        raise SpecError(f"entropy must be 'none' or 'auto', got {entropy!r}")
    tensors = with_meta(dict(tensors), mode, dtypes, ties)
    data, _ = container.write_stream(tensors, mode, entropy=entropy, base_fingerprint=base_fingerprint)
    return data


def encode_model(
    model_or_state: Any, plan: PlanLike = "ptq-t8", mode: str = "self", *, entropy: str = "none",
    counters: bool = False, warn: bool = True,
) -> Encoded:
    """Quantize and encode a model; also return the tensors and the per-tensor quality (worst
    SQNR, tensors decoding to zeros), warned about as NNShareWarning unless ``warn=False``."""
    st = model_state(model_or_state)
    tensors = quantize_model(st, plan, counters=counters)
    data = encode_tensors(tensors, mode, entropy=entropy, dtypes=st.dtypes, ties=st.ties)
    q = assess(st.arrays, tensors, st.roles)
    if warn:
        warn_damage(q)
    return Encoded(data, tensors, q, st)


def encode(
    model_or_state: Any, plan: PlanLike = "ptq-t8", mode: str = "self", *, entropy: str = "none",
    counters: bool = False,
) -> bytes:
    """Quantize a model (``nn.Module`` or state dict) with ``plan`` and return the stream bytes.

    ``mode``: "self" (names and shapes in the header) or "agreed" (a 32-bit architecture
    fingerprint only; the receiver must hold the same architecture). ``counters``: also send
    integer bookkeeping counters (``num_batches_tracked``). Tied tensors are sent once.
    Warns (NNShareWarning) when a tensor decodes to all zeros or loses much of its energy.
    """
    return encode_model(model_or_state, plan, mode, entropy=entropy, counters=counters).data


def layout_of(model_or_state: Any, *, counters: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """Ordered (name, shape) of a model or state dict as :func:`encode` sends it (tied aliases
    and, unless ``counters``, bookkeeping counters left out): what agreed mode fingerprints."""
    st = model_state(model_or_state)
    return (st if counters else st.without_counters()).layout()


def decode(data: bytes, into: Any = None, *, layout=None, state_dict: bool = False):
    """Rebuild tensors from a stream.

    - ``into=None``: returns ``{name: numpy array}`` (float32 for quantized and float tensors,
      integers in their own dtype; tied aliases share one array), or with ``state_dict=True`` a
      ``{name: torch.Tensor}`` state dict in the original dtypes (bf16 stays bf16).
    - ``into=nn.Module``: loads the tensors into it and returns the module. Bookkeeping counters
      the stream does not carry keep the module's values (with a warning); tied tensors load
      once.
    - ``into=`` a state dict: used for its layout (agreed mode); returns the arrays.
    Agreed-mode streams need ``into`` or ``layout``. Raises FormatError on a bad stream.
    """
    if layout is None and into is not None:
        try:
            dec = decode_model(data, layout_of(into))
        except FormatError as e:  # an agreed stream that carries the counters too
            if "fingerprint mismatch" not in str(e):
                raise
            dec = decode_model(data, layout_of(into, counters=True))
    else:
        dec = decode_model(data, layout)
    arrays = dec.arrays
    if into is None or not hasattr(into, "load_state_dict"):
        if state_dict:
            return _torch_state(dec)
        return arrays
    import torch

    st = model_state(into)
    current = into.state_dict()
    need = set(st.arrays)
    missing = need - set(arrays)
    filled = sorted(n for n in missing if st.roles[n] == "counter")
    missing -= set(filled)
    if missing:
        raise FormatError(f"stream lacks tensors the model needs: {sorted(missing)[:5]}")
    extra = set(arrays) - set(current)
    if extra:
        raise FormatError(f"stream holds tensors the model does not have: {sorted(extra)[:5]}")
    if filled:
        warnings.warn(
            f"the stream does not carry {len(filled)} bookkeeping counter(s) "
            f"({', '.join(filled[:3])}{' ...' if len(filled) > 3 else ''}); kept the model's values",
            NNShareWarning, stacklevel=2,
        )
    new_state = {}
    for name in st.arrays:
        if name in filled:
            continue
        ref = current[name]
        arr = arrays[name]
        if tuple(arr.shape) != tuple(ref.shape):
            raise FormatError(f"tensor {name!r}: stream shape {arr.shape}, model {tuple(ref.shape)}")
        new_state[name] = torch.from_numpy(np.asarray(arr, order="C").copy()).to(ref.dtype)
    with torch.no_grad():
        for name, value in into.state_dict(keep_vars=True).items():
            if name in new_state:
                value.copy_(new_state[name])
    return into


def _torch_state(dec: Decoded) -> dict:
    import torch

    names = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}
    out: dict = {}
    for n, a in dec.arrays.items():
        if n in dec.ties:
            continue
        t = torch.from_numpy(np.asarray(a, order="C").copy())
        out[n] = t.to(names[dec.dtypes[n]]) if dec.dtypes.get(n) in names else t
    for alias, canon in dec.ties.items():
        out[alias] = out[canon]
    return out



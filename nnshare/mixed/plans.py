"""Plans from chosen bit widths, and the exact size of the stream a plan gives."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from ..format.container import write_stream
from ..format.meta import with_meta
from ..format.spec import QuantSpec
from ..plan import Plan, Rule
from ..state import model_state
from .tensors import TensorInfo


def plan_from_widths(
    tensors: list[TensorInfo] | tuple[TensorInfo, ...],
    widths: dict[str, np.ndarray],
    base: QuantSpec,
    float_dtype: str = "fp32",
) -> Plan:
    """One exact-name rule per quantized tensor; a tensor whose channels differ in width gets
    ``channel_bits``; everything else stays in ``float_dtype``."""
    rules = []
    for t in tensors:
        w = np.asarray(widths[t.name]).reshape(-1)
        if w.size > 1 and np.any(w != w[0]):
            cb = tuple(int(x) for x in w)
            spec = dataclasses.replace(base, bits=max(cb), channel_bits=cb)
        else:
            spec = dataclasses.replace(base, bits=int(w[0]), channel_bits=())
        rules.append(Rule(spec=spec, name=re.escape(t.name)))
    return Plan(rules=tuple(rules), default_float=float_dtype)


def exact_stream_bits(
    arrays,
    plan: Plan,
    mode: str = "self",
    module_types=None,
    entropy: str = "none",
) -> int:
    """Bits of the real stream for ``plan``, written by the format itself (nnshare.format), as
    ``nnshare.encode`` writes it (dtypes / ties record included). ``arrays``: a model, a state
    dict or a :class:`~nnshare.state.ModelState`."""
    st = model_state(arrays)
    tensors = with_meta(plan.apply(st, module_types), mode, st.dtypes, st.ties)
    data, _ = write_stream(tensors, mode, entropy=entropy)
    return 8 * len(data)


def keep_list(sd_all: dict, quant_names: set[str], float_dtype: str):
    """(name, shape, how) of every tensor the allocator does not quantize: ``float_dtype`` for
    float tensors, the numpy dtype name for integer ones (sent raw)."""
    keep = []
    for name, arr in sd_all.items():
        if name in quant_names:
            continue
        how = float_dtype if arr.dtype.kind == "f" else str(arr.dtype)
        keep.append((name, tuple(int(s) for s in arr.shape), how))
    return keep

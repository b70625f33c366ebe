"""Plans from chosen bit widths, and the exact size of the stream a plan gives."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

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
    return 8 * len(plan_stream(arrays, plan, mode, module_types, entropy)[0])


def plan_stream(arrays, plan: Plan, mode: str = "self", module_types=None, entropy: str = "none",
                counters: bool = False):
    """``(stream bytes, Quality)`` of ``plan``: the same bytes as :func:`nnshare.encode`, written
    one tensor at a time (memory ~ one tensor's codes, not the whole model's)."""
    from ..share.quality import Quality

    st = model_state(arrays)
    if module_types:
        st = dataclasses.replace(st, module_types={**st.module_types, **module_types})
    meta = with_meta({}, mode, st.dtypes, st.ties)
    lazy = _OneAtATime(st if counters else st.without_counters(), plan, meta)
    data, _ = write_stream(lazy, mode, entropy=entropy)
    return data, Quality(tuple(lazy.quality[n] for n in lazy if n in lazy.quality))


class _OneAtATime(Mapping):
    """``plan.apply(state)`` (then ``extra``) as a mapping that quantizes one tensor at a time
    and keeps only the last one: the stream writer visits each tensor twice (its shape, then its
    record), so the codes of the whole model are never held at once (memory ~ one tensor).
    ``quality[name]``: the SQNR of each float tensor produced."""

    def __init__(self, st, plan: Plan, extra: dict):
        self._st, self._extra = st, extra
        choices = plan.resolve(st.shapes, st.module_types, st.roles)  # checks the plan once
        self._plans = {n: Plan(default_float=c) if isinstance(c, str) and c != "raw"
                       else Plan() if c == "raw" else Plan.from_choices({n: c}) for n, c in choices.items()}
        self._names = [*st.arrays, *extra]
        self._last: tuple = (None, None)
        self.quality: dict = {}

    def __getitem__(self, name: str):
        from ..share.quality import assess

        if name in self._extra:
            return self._extra[name]
        if self._last[0] != name:
            if name not in self._st.arrays:
                raise KeyError(name)
            self._last = (None, None)
            one = self._st.select([name])
            t = self._plans[name].apply(one, counters=True)[name]
            if name not in self.quality:
                self.quality.update({q.name: q for q in assess(one.arrays, {name: t}, one.roles).tensors})
            self._last = (name, t)
        return self._last[1]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


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

"""Whole-model rate control: the weight matrices share one step chosen for a bit, bits-per-
parameter or SQNR target (the SQNR over those weights); 1-D tensors get their own fine step
(:mod:`nnshare.quant.fine`); integer tensors travel raw; the stream is entropy-coded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..format.container import write_stream
from ..format.meta import with_meta
from ..format.spec import RawTensor
from ..quant.fine import fine_step, is_fine, step_cap
from ..quant.rate import RateResult, quantize_tensor, rate_control, tensor_bits
from ..state import ModelState, model_state
from .quality import Dequantized, Quality, assess, warn_damage


@dataclass(frozen=True, eq=False)
class RatedModel:
    """The stream, the rate-control result over the weight matrices, the tensors and their quality."""

    data: bytes
    result: RateResult
    tensors: dict
    quality: Quality
    state: ModelState


def encode_rate(
    model_or_state: Any, *, bits: float | None = None, bits_per_param: float | None = None,
    sqnr_db: float | None = None, method: str = "tcq", mode: str = "self", scale_dtype: str = "fp32",
    counters: bool = False, warn: bool = True, processes: int = 1,
) -> RatedModel:
    """Rate-control a model and write its entropy-coded stream.

    ``bits`` / ``bits_per_param``: the whole payload (weights, 1-D tensors, scales) within the
    target; ``sqnr_db``: SQNR of the weight matrices (rank >= 2) >= target, 1-D tensors at
    :data:`~nnshare.quant.fine.FINE_SQNR_DB` each. No weight tensor is given a step above half
    its largest magnitude, so none decodes to all zeros. ``processes``: records encoded in up
    to this many forked processes (the same bytes for any count).
    """
    st = model_state(model_or_state)
    if not counters:
        st = st.without_counters()
    floats = {n: a for n, a in st.arrays.items() if a.dtype.kind == "f"}
    fine = {n: quantize_tensor(a, fine_step(a), scale_dtype=scale_dtype)
            for n, a in floats.items() if is_fine(a.shape)}
    bulk = {n: a for n, a in floats.items() if n not in fine}
    if not bulk:
        raise SpecError("rate control needs at least one weight matrix (a float tensor of rank >= 2)")
    fine_bits = sum(tensor_bits(q) for q in fine.values())
    numel = sum(a.size for a in floats.values())
    if bits_per_param is not None:
        bits, bits_per_param = bits_per_param * numel, None
    if bits is not None:
        if bits - fine_bits <= 0:
            raise SpecError(f"the bit target leaves nothing for the weights: the 1-D tensors alone "
                            f"need about {fine_bits:,.0f} bits")
        bits = bits - fine_bits
    res = rate_control(bulk, bits=bits, sqnr_db=sqnr_db, method=method, scale_dtype=scale_dtype,
                       max_step={n: step_cap(a) for n, a in bulk.items()})
    tensors = {}
    for n, a in st.arrays.items():
        tensors[n] = res.tensors[n] if n in res.tensors else fine[n] if n in fine else RawTensor(a)
    data, _ = write_stream(with_meta(tensors, mode, st.dtypes, st.ties), mode, entropy="auto",
                           processes=processes)
    q = assess(st.arrays, Dequantized(tensors), st.roles)
    if warn:
        warn_damage(q)
    return RatedModel(data, res, tensors, q, st)

"""Rate control with learned rounding: the steps come from rate control
(:func:`nnshare.quant.rate.rate_control`, one symmetric step per channel or tensor chosen for a
bit / bits-per-parameter / SQNR target with nearest rounding), then GPTQ or AdaRound choose the
integer codes on exactly those steps and code ranges. The tensors are ordinary affine
QuantizedTensors, entropy-coded like any other; only the codes (hence their entropy) differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..format.errors import SpecError
from ..format.spec import QuantizedTensor
from ..quant.fine import step_cap
from ..quant.rate import RateResult, rate_control, tensor_bits
from .adaround import AdaRoundConfig, adaround
from .gptq import GPTQConfig, gptq
from .patterns import check_layer, get_module, layers
from .weights import grid_of, set_weight, weight_of

METHODS = ("nearest", "gptq", "adaround")


@dataclass(frozen=True, eq=False)
class RatedRounding:
    """Tensors at rate-control steps with the method's codes, and the nearest codes at the same
    steps; bits are the entropy coder's estimates (payload + scales) over the layer weights."""

    tensors: dict[str, QuantizedTensor]  # weight name -> tensor (the method's codes)
    nearest: dict[str, QuantizedTensor]  # weight name -> tensor (nearest codes, same steps)
    rate: RateResult
    bits: float
    nearest_bits: float
    numel: int

    @property
    def bits_per_param(self) -> float:
        return self.bits / max(self.numel, 1)


def rated_rounding(
    model: nn.Module,
    batches,
    *,
    bits: float | None = None,
    bits_per_param: float | None = None,
    sqnr_db: float | None = None,
    method: str = "gptq",
    forward: Callable | None = None,
    config: GPTQConfig | AdaRoundConfig | None = None,
    names: list[str] | None = None,
    granularity: str = "channel",
    allocation: str = "sqnr",
    scale_dtype: str = "fp32",
    rate: RateResult | None = None,
) -> RatedRounding:
    """Rate-control the weights of the model's layers (all Linear / Conv, or ``names``) for one
    target, then round them with ``method`` on the chosen steps, in place (the model holds the
    dequantized weights). ``allocation`` / ``granularity`` as in rate control; the target is met
    by the nearest codes, the method's codes usually cost a little more or less (reported).
    ``rate``: the rate control of an earlier call on the same weights (e.g. ``other.rate``), reused
    instead of a new search (then give no target)."""
    if method not in METHODS:
        raise SpecError(f"unknown rounding method {method!r}; known: {', '.join(METHODS)}")
    if method == "gptq" and not isinstance(config, GPTQConfig | None):
        raise SpecError("method 'gptq' takes a GPTQConfig")
    if method == "adaround" and not isinstance(config, AdaRoundConfig | None):
        raise SpecError("method 'adaround' takes an AdaRoundConfig")
    found = layers(model) if names is None else [(n, get_module(model, n)) for n in names]
    if not found:
        raise SpecError("the model has no Linear or Conv layer to rate-control")
    for n, m in found:
        check_layer(m, n)
    wname = {n: f"{n}.weight" if n else "weight" for n, _ in found}
    weights = {wname[n]: weight_of(m) for n, m in found}
    if rate is None:
        rate = rate_control(
            weights, bits=bits, bits_per_param=bits_per_param, sqnr_db=sqnr_db, method="nearest",
            granularity=granularity, axis=0, allocation=allocation, scale_dtype=scale_dtype,
            max_step={k: step_cap(a) for k, a in weights.items()},
        )
    elif any(v is not None for v in (bits, bits_per_param, sqnr_db)):
        raise SpecError("give either a target or an earlier rate control, not both")
    elif set(rate.tensors) != set(weights) or any(
        tuple(rate.tensors[k].shape) != a.shape for k, a in weights.items()
    ):
        raise SpecError("the given rate control is for other tensors than these layers' weights")
    near = dict(rate.tensors)
    grids = {n: grid_of(near[wname[n]]) for n, _ in found}
    specs = {n: near[wname[n]].spec for n, _ in found}
    layer_names = [n for n, _ in found]
    if method == "gptq":
        out = gptq(model, specs, batches, forward=forward, config=config or GPTQConfig(),
                   names=layer_names, grids=grids)
    elif method == "adaround":
        out = adaround(model, specs, batches, forward=forward, config=config or AdaRoundConfig(),
                       names=layer_names, grids=grids)
    else:
        out = near
        for n, m in found:
            set_weight(m, near[wname[n]])
    numel = sum(a.size for a in weights.values())
    return RatedRounding(
        tensors=out, nearest=near, rate=rate, bits=sum(tensor_bits(q) for q in out.values()),
        nearest_bits=sum(tensor_bits(q) for q in near.values()), numel=numel,
    )

"""``prepare``: put a model's planned tensors into fake quantization for QAT (no graph tracing).

Every parameter the plan quantizes (weights of Linear, Conv1d/2d/3d, Embedding, or any other
module) gets a :class:`~nnshare.qat.quantizer.WeightFakeQuant` parametrization
(``torch.nn.utils.parametrize``); tensors the plan sends as fp16/bf16 get a
:class:`~nnshare.qat.quantizer.FloatRound`. The module code is untouched, so any ``nn.Module``
works; ``module.weight`` is the fake-quantized value, the trained latent weight lives at
``module.parametrizations.weight.original``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..format.errors import SpecError
from ..format.spec import QuantSpec
from ..plan import Plan, preset
from ..state import model_state
from .activations import ActFakeQuant, attach_activation_quant
from .quantizer import RANGES, FloatRound, WeightFakeQuant

QAT_ATTR = "_nnshare_qat"


def as_plan(plan: Plan | str) -> Plan:
    """A Plan from a Plan or a preset name."""
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, str):
        return preset(plan)
    raise SpecError(f"plan must be a Plan or a preset name, got {type(plan).__name__}")


def module_types(model: nn.Module) -> dict[str, str]:
    """Tensor name -> class name of the module that owns it (for plan rules on module types)."""
    return dict(model_state(model).module_types)


def in_prefixes(name: str, prefixes: Iterable[str]) -> bool:
    """True when tensor or module ``name`` lies inside a module named by one of ``prefixes``."""
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def prepare(
    model: nn.Module,
    plan: Plan | str = "w4-channel",
    ranges: str = "minmax",
    freeze: Iterable[str] | None = None,
    activations: bool | int = False,
    *,
    quantize_frozen: bool = False,
    inplace: bool = False,
) -> nn.Module:
    """Wrap the planned weights of ``model`` in fake quantization with learnable ranges.

    - ``plan``: a Plan or preset name; ``Plan.resolve`` gives each tensor's QuantSpec or float
      dtype (per-tensor, per-channel or per-group; symmetric or asymmetric).
    - ``ranges``: ``"minmax"``, ``"scale_offset"``, ``"beta_gamma"``, ``"lsq"`` or ``"lsq+"``.
    - ``freeze``: module-name prefixes (e.g. ``["decoder"]`` or ``["1"]`` in an ``nn.Sequential``)
      whose parameters get ``requires_grad=False`` and stay in float32 (not quantized) unless
      ``quantize_frozen=True``, in which case they are fake-quantized with fixed PTQ ranges.
    - ``activations``: False, or a bit width (True = 8): the input of every module with a
      quantized weight (except Embedding) is fake-quantized, asymmetric per tensor, with
      min/max ranges calibrated on the first batch and then learned. The receiver of the
      bitstream gets weights only; activation quantization simulates integer inference.

    Returns the prepared model (a deep copy unless ``inplace``). Raises SpecError on a bad plan,
    an unknown parameterization or a freeze prefix that names no module.
    """
    if ranges not in RANGES:
        raise SpecError(f"unknown range parameterization {ranges!r}; known: {', '.join(RANGES)}")
    if not isinstance(model, nn.Module):
        raise SpecError(f"prepare needs an nn.Module, got {type(model).__name__}")
    if getattr(model, QAT_ATTR, None) is not None:
        raise SpecError("model is already prepared for QAT")
    plan = as_plan(plan)
    freeze = [str(p) for p in (freeze or [])]
    module_names = {n for n, _ in model.named_modules()}
    for p in freeze:
        if p not in module_names:
            raise SpecError(f"freeze prefix {p!r} names no module of the model")
    if not inplace:
        model = copy.deepcopy(model)

    state = model.state_dict(keep_vars=True)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    st = model_state(model)
    roles = {n: st.roles.get(n, "vector") for n in shapes}
    resolved = plan.resolve(shapes, st.module_types, roles)
    param_names = {n for n, _ in model.named_parameters()}
    quantized_modules: list[tuple[str, nn.Module]] = []
    final: dict[str, QuantSpec | str] = {}
    owners: dict[int, str] = {}
    for mname, mod in list(model.named_modules()):
        for pname, param in list(mod.named_parameters(recurse=False)):
            full = f"{mname}.{pname}" if mname else pname
            choice = resolved.get(full, plan.default_float)
            frozen = in_prefixes(full, freeze)
            if frozen and not quantize_frozen:
                choice = "fp32"
            final[full] = choice
            if id(param) in owners:
                if choice != "fp32" or final[owners[id(param)]] != "fp32":
                    raise SpecError(
                        f"parameter {full!r} is tied to {owners[id(param)]!r}; QAT of tied "
                        "parameters is not supported (untie them first)"
                    )
                continue
            owners[id(param)] = full
            if isinstance(choice, QuantSpec):
                if param.dim() == 0:
                    raise SpecError(f"cannot quantize 0-d parameter {full!r}")
                fq = WeightFakeQuant(param.detach(), choice, ranges)
                fq.to(device=param.device, dtype=param.dtype)
                parametrize.register_parametrization(mod, pname, fq, unsafe=True)
                if pname == "weight" and not isinstance(mod, nn.Embedding):
                    quantized_modules.append((mname, mod))
                if frozen:
                    for p in fq.parameters():
                        p.requires_grad_(False)
            elif choice in ("fp16", "bf16") and not frozen:
                parametrize.register_parametrization(mod, pname, FloatRound(choice), unsafe=True)
    for name in resolved:
        if name not in param_names:  # buffers: sent as planned, not trained
            final[name] = resolved[name]
    for mname, mod in model.named_modules():
        if in_prefixes(mname, freeze):
            for p in mod.parameters(recurse=False):
                p.requires_grad_(False)
            if parametrize.is_parametrized(mod):
                for plist in mod.parametrizations.values():
                    plist.original.requires_grad_(False)
    if activations:
        bits = 8 if activations is True else int(activations)
        attach_activation_quant(
            [(n, m) for n, m in quantized_modules if not in_prefixes(n, freeze)], bits
        )
    final = {name: final[name] for name in state}  # the original state-dict order
    setattr(model, QAT_ATTR, {"resolved": final, "ranges": ranges, "freeze": tuple(freeze)})
    return model


def range_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable range parameters (scales, offsets, min/max, beta/gamma) of a prepared model."""
    out = []
    for mod in model.modules():
        if isinstance(mod, WeightFakeQuant | ActFakeQuant):
            out.extend(p for p in mod.parameters() if p.requires_grad)
    return out


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every trainable parameter of a prepared model that is not a range parameter."""
    rp = {id(p) for p in range_parameters(model)}
    return [p for p in model.parameters() if p.requires_grad and id(p) not in rp]


def quantizers(model: nn.Module) -> dict[str, WeightFakeQuant]:
    """Tensor name -> its WeightFakeQuant, for a prepared model."""
    out: dict[str, WeightFakeQuant] = {}
    for mname, mod in model.named_modules():
        if not parametrize.is_parametrized(mod):
            continue
        for pname, plist in mod.parametrizations.items():
            for fq in plist:
                if isinstance(fq, WeightFakeQuant):
                    out[f"{mname}.{pname}" if mname else pname] = fq
    return out


def set_quant_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch weight fake quantization on or off (off: the float latent weights are used)."""
    for fq in quantizers(model).values():
        fq.enabled = enabled


@torch.no_grad()
def latent_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Tensor name -> the float latent tensor a parametrization is applied to."""
    out = {}
    for mname, mod in model.named_modules():
        if parametrize.is_parametrized(mod):
            for pname, plist in mod.parametrizations.items():
                out[f"{mname}.{pname}" if mname else pname] = plist.original
    return out

"""``convert``: what a prepared model was trained with, as the tensors the encoder sends.

``convert(model)`` returns ``{tensor name: QuantizedTensor | FloatTensor}`` under the original
(unprepared) state-dict names. Each QuantizedTensor is built from the latent weight with the
learned scale and zero point, so ``dequantize()`` equals the weight the fake-quant forward used,
bit for bit; :func:`to_float_model` loads exactly those values into a plain copy of the model.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ConvertError, SpecError
from ..format.spec import FloatTensor, QuantizedTensor, QuantSpec, RawTensor
from ..plan import Plan, Rule
from ..quant.affine import quantize
from .activations import detach_activation_quant
from .prepare import QAT_ATTR, quantizers


def _info(model: nn.Module) -> dict:
    info = getattr(model, QAT_ATTR, None)
    if info is None:
        raise SpecError("model was not prepared with nnshare.qat.prepare")
    return info


def _plain_name(key: str) -> str:
    """State-dict key of a prepared model -> the original tensor name."""
    return re.sub(r"parametrizations\.(\w+)\.original$", r"\1", key)


@torch.no_grad()
def convert(
    model: nn.Module, verify: bool = True, submodule: str | None = None
) -> dict[str, QuantizedTensor | FloatTensor | RawTensor]:
    """Export a prepared model: QuantizedTensor per quantized tensor, FloatTensor for float
    tensors, RawTensor for integer buffers (e.g. BatchNorm counters).

    Names are the original state-dict names, in state-dict order (buffers included).
    ``verify`` checks that every QuantizedTensor dequantizes to the fake-quant forward value
    exactly and raises ConvertError otherwise. ``submodule`` (e.g. ``"encoder"`` or ``"0"``)
    keeps only that module's tensors, named relative to it, so the result loads into the
    submodule alone (the part that is shared).
    """
    info = _info(model)
    resolved: dict[str, QuantSpec | str] = info["resolved"]
    fqs = quantizers(model)
    values = {}
    for key, value in model.state_dict().items():
        if ".parametrizations." in key and not key.endswith(".original"):
            continue  # range parameters of a quantizer
        if ".input_quant." in key or key.startswith("input_quant."):
            continue  # activation quantizers are not sent
        values[_plain_name(key)] = value
    out: dict[str, QuantizedTensor | FloatTensor | RawTensor] = {}
    names = list(resolved)  # the original state-dict order (agreed mode fingerprints it)
    if submodule is not None:
        names = [n for n in names if n.startswith(submodule + ".")]
        if not names:
            raise SpecError(f"submodule {submodule!r} holds no tensor of the model")
    for name in names:
        value = values[name]
        if name in fqs:
            fq = fqs[name]
            qt = fq.export(value)
            if verify:
                expect = fq(value).detach().cpu().float().numpy()
                if not np.array_equal(qt.dequantize().view(np.uint32), expect.view(np.uint32)):
                    raise ConvertError(f"export of {name!r} does not match its fake-quant value")
            out[name] = qt
            continue
        choice = resolved[name]
        if not value.is_floating_point():
            out[name] = RawTensor(np.array(value.detach().cpu().numpy(), order="C"))
            continue
        arr = value.detach().cpu().float().numpy()
        if isinstance(choice, QuantSpec):  # a planned buffer: post-training quantization
            out[name] = quantize(arr, choice)
        else:
            out[name] = FloatTensor(arr, choice)
    if submodule is not None:
        out = {n[len(submodule) + 1 :]: t for n, t in out.items()}
    return out


def encode(model: nn.Module, mode: str = "self", *, submodule: str | None = None,
           entropy: str = "none") -> bytes:
    """The bitstream of a prepared model: ``nnshare.encode_tensors(convert(model), mode)``.

    ``mode``: "self" or "agreed" (see ``nnshare.encode``); ``submodule`` as in :func:`convert`.
    """
    from ..format.container import write_stream

    if mode not in ("self", "agreed"):
        raise SpecError(f"mode must be 'self' or 'agreed', got {mode!r}")
    if entropy not in ("none", "auto"):
        raise SpecError(f"entropy must be 'none' or 'auto', got {entropy!r}")
    return write_stream(convert(model, submodule=submodule), mode, entropy=entropy)[0]


def qat_plan(model: nn.Module) -> Plan:
    """A Plan with one exact-name rule per tensor that reproduces what ``prepare`` did."""
    info = _info(model)
    rules = []
    for name, choice in info["resolved"].items():
        pattern = re.escape(name)
        if isinstance(choice, QuantSpec):
            rules.append(Rule(spec=choice, name=pattern))
        elif choice == "raw":  # integer buffers: always sent raw, no rule applies
            continue
        else:
            rules.append(Rule(spec=None, name=pattern, float_dtype=choice))
    return Plan(rules=tuple(rules))


@torch.no_grad()
def to_float_model(model: nn.Module) -> nn.Module:
    """A plain copy of a prepared model whose weights are the fake-quant values (no
    parametrizations, no activation quantizers): what a receiver loads after decoding."""
    _info(model)
    m = copy.deepcopy(model)
    for mod in list(m.modules()):
        if parametrize.is_parametrized(mod):
            _strip_parametrizations(mod)
        detach_activation_quant(mod)
    delattr(m, QAT_ATTR)
    for p in m.parameters():
        p.requires_grad_(True)
    return m


def _strip_parametrizations(mod: nn.Module) -> None:
    """Replace each parametrized tensor by a plain Parameter holding its parametrized value.

    (``parametrize.remove_parametrizations`` edits the generated class, which a deep copy shares
    with the original model, so it would break the original.)
    """
    values = {name: getattr(mod, name).detach().clone() for name in mod.parametrizations}
    mod.__class__ = mod.__class__.__bases__[0]
    del mod._modules["parametrizations"]
    for name, v in values.items():
        mod.register_parameter(name, nn.Parameter(v))

"""Optional activation fake quantization: a layer's input, asymmetric per tensor, learnable min/max.

The range is calibrated on the first batch the module sees (its min and max) and then trained
like the min/max weight parameterization. Activations are not part of the bitstream; this
simulates a receiver that runs integer arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn

from ..format.spec import QuantSpec
from .fakequant import fake_quant, round_ste
from .parameterizations import asym_from_range


class ActFakeQuant(nn.Module):
    """Asymmetric per-tensor fake quantizer with learnable (lo, hi), set on the first call."""

    def __init__(self, bits: int = 8):
        super().__init__()
        self.spec = QuantSpec(bits=bits, symmetric=False)
        self.lo = nn.Parameter(torch.zeros(1, 1))
        self.hi = nn.Parameter(torch.ones(1, 1))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if not bool(self.calibrated):
            with torch.no_grad():
                self.lo.fill_(min(float(x.min()), 0.0))
                self.hi.fill_(max(float(x.max()), 0.0))
                self.calibrated.fill_(True)
        s, z = asym_from_range(self.lo, self.hi, self.spec.qmax, "fp32", round_ste)
        out = fake_quant(x.reshape(1, -1), s, z, self.spec.qmin, self.spec.qmax)
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.spec.bits} bit, asym, per tensor"


def _pre_hook(module: nn.Module, args):
    if not args:
        return None
    return (module.input_quant(args[0]),) + tuple(args[1:])


def attach_activation_quant(modules: list[tuple[str, nn.Module]], bits: int) -> None:
    """Give each module an ``input_quant`` ActFakeQuant applied to its first input."""
    for _, mod in modules:
        mod.input_quant = ActFakeQuant(bits)
        mod._nnshare_act_hook = mod.register_forward_pre_hook(_pre_hook).id


def detach_activation_quant(mod: nn.Module) -> None:
    """Remove the input quantizer and its hook from ``mod`` (no-op when absent)."""
    hook_id = getattr(mod, "_nnshare_act_hook", None)
    if hook_id is not None:
        mod._forward_pre_hooks.pop(hook_id, None)
        del mod._nnshare_act_hook
    if isinstance(getattr(mod, "input_quant", None), ActFakeQuant):
        del mod.input_quant

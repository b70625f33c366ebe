"""Parametrizations that put a tensor through what the receiver will rebuild.

:class:`WeightFakeQuant` is registered with ``torch.nn.utils.parametrize`` on a parameter: the
module then sees ``fake_quant(original)`` and the optimiser trains ``original`` (through the STE)
and the range parameters. :meth:`WeightFakeQuant.export` turns the same computation into a
``QuantizedTensor`` whose ``dequantize()`` equals the forward value bit for bit.

:class:`FloatRound` does the same for tensors sent in fp16/bf16.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from ..format.spec import FloatTensor, QuantizedTensor, scale_shape
from ..quant.affine import quantize
from ..quant.spec import QuantSpec
from .fakequant import fake_quant, from_blocks, round_ste, to_blocks
from .lsq import LSQRange
from .parameterizations import BetaGammaRange, MinMaxRange, RangeParam, ScaleOffsetRange

RANGES = ("minmax", "scale_offset", "beta_gamma", "lsq", "lsq+")


def make_range(kind: str, spec: QuantSpec, blocks: torch.Tensor) -> RangeParam:
    """The learnable range module named ``kind`` (one of ``RANGES``), initialised on ``blocks``."""
    if kind == "minmax":
        return MinMaxRange(spec, blocks)
    if kind == "scale_offset":
        return ScaleOffsetRange(spec, blocks)
    if kind == "beta_gamma":
        return BetaGammaRange(spec, blocks)
    if kind in ("lsq", "lsq+"):
        return LSQRange(spec, blocks, plus=kind == "lsq+")
    raise SpecError(f"unknown range parameterization {kind!r}; known: {', '.join(RANGES)}")


def check_spec(spec: QuantSpec) -> None:
    """QAT trains affine ranges (a QuantSpec) with nearest rounding; other schemes are refused."""
    if not isinstance(spec, QuantSpec):
        name = getattr(spec, "scheme", type(spec).__name__)
        raise SpecError(f"QAT trains affine ranges (a QuantSpec) only, got the {name!r} scheme")
    if spec.rounding != "nearest":
        raise SpecError("QAT needs rounding='nearest' (stochastic rounding is not trainable)")


class WeightFakeQuant(nn.Module):
    """Fake-quantize a tensor of fixed shape with ``spec`` and a learnable range ``kind``."""

    def __init__(self, weight: torch.Tensor, spec: QuantSpec, kind: str = "minmax"):
        super().__init__()
        check_spec(spec)
        self.spec = spec
        self.shape = tuple(int(s) for s in weight.shape)
        scale_shape(self.shape, spec)  # validates axis / granularity against the shape
        self.range = make_range(kind, spec, to_blocks(weight.detach(), spec))
        self.round_fn = round_ste
        self.enabled = True

    def qparams(self, w: torch.Tensor):
        """(blocks (n, L), scale (n, 1), zero point (n, 1) or None) for weight ``w``."""
        blocks = to_blocks(w, self.spec)
        s, z = self.range.qparams(blocks, self.round_fn)
        return blocks, s, z

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return w
        blocks, s, z = self.qparams(w)
        out = fake_quant(blocks, s, z, self.range.qmin, self.range.qmax, self.round_fn)
        return from_blocks(out, self.shape, self.spec)

    @torch.no_grad()
    def export(self, w: torch.Tensor) -> QuantizedTensor:
        """The QuantizedTensor of ``w`` with the learned scale and zero point."""
        _, s, z = self.qparams(w)
        if not (torch.isfinite(s).all() and torch.isfinite(w).all()):
            raise SpecError("QAT diverged: the weight or its learned scale is not finite")
        sshape = scale_shape(self.shape, self.spec)
        scale = s.detach().cpu().float().numpy().reshape(sshape)
        zp = None if z is None else z.detach().cpu().numpy().astype(np.int32).reshape(sshape)
        return quantize(w.detach().cpu().float(), self.spec, scale=scale, zero_point=zp)

    def extra_repr(self) -> str:
        sp = self.spec
        sym = "sym" if sp.symmetric else "asym"
        return f"{self.range.kind}, {sp.bits} bit, {sym}, {sp.granularity}"


class FloatRound(nn.Module):
    """Round a float tensor to the precision it is sent in (fp16/bf16), gradient 1 (STE)."""

    def __init__(self, dtype: str):
        super().__init__()
        self.dtype = dtype

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        r = w.detach().to(torch.float16 if self.dtype == "fp16" else torch.bfloat16).to(w.dtype)
        return w + (r - w).detach()

    def export(self, w: torch.Tensor) -> FloatTensor:
        return FloatTensor(w.detach().cpu().float().numpy(), self.dtype)

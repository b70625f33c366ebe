"""The split-learning cut: a device computes the first layers, sends the activations to the
server through a feature codec, the server returns the gradient at the cut through another.

``SplitBoundary(forward, backward)`` is a module that sits at the cut: its forward pass encodes
the activations into a "features" stream and continues with what the server decodes; its
backward pass encodes the incoming gradient the same way and hands the device what it decodes.
Every stream is a real nnshare stream; :class:`CutTraffic` counts its bytes per step and
direction (and keeps the last stream of each for inspection). A codec may be any
:class:`~.feature_codecs.FeatureCodec` or any update codec of :mod:`.codecs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..format.errors import SpecError
from .codecs import Codec
from .feature_codecs import FeatureCodec, Lossless, UpdateCodec


@dataclass
class CutTraffic:
    """Bytes of every stream that crossed the cut, per call: ``forward`` (device -> server
    activations) and ``backward`` (server -> device gradients); the last stream of each."""

    forward: list[int] = field(default_factory=list)
    backward: list[int] = field(default_factory=list)
    last_forward: bytes = b""
    last_backward: bytes = b""

    @property
    def total(self) -> int:
        """All bytes both ways."""
        return sum(self.forward) + sum(self.backward)

    def per_step(self) -> float:
        """Mean bytes per training step (one forward and one backward stream)."""
        steps = max(len(self.backward), 1)
        return (sum(self.forward[: len(self.backward)]) + sum(self.backward)) / steps

    def reset(self) -> None:
        self.forward.clear()
        self.backward.clear()


def as_feature_codec(codec) -> FeatureCodec:
    """A feature codec from a feature codec, an update codec, or None (lossless)."""
    if codec is None:
        return Lossless()
    if isinstance(codec, FeatureCodec):
        return codec
    if isinstance(codec, Codec):
        return UpdateCodec(codec=codec)
    raise SpecError(f"not a codec: {type(codec).__name__}")


def _seed(seed: int, step: int, direction: int) -> int:
    return (int(seed) * 1_000_003 + 2 * int(step) + direction) & 0x7FFFFFFF


class _Cut(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cut):
        ctx.cut, ctx.step = cut, cut.step
        cut.step += 1
        a = x.detach().cpu().float().numpy()
        data = cut.forward_codec.encode(a, _seed(cut.seed, ctx.step, 0), cut.weight)
        cut.traffic.forward.append(len(data))
        cut.traffic.last_forward = data
        out = torch.from_numpy(np.array(cut.forward_codec.decode(data, tuple(a.shape)), np.float32))
        if cut.mask_zeros:
            ctx.save_for_backward(out == 0)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        cut = ctx.cut
        g = grad.detach().cpu().float()
        if cut.mask_zeros:
            g = g.masked_fill(ctx.saved_tensors[0], 0.0)
        g = g.numpy()
        data = cut.backward_codec.encode(g, _seed(cut.seed, ctx.step, 1))
        cut.traffic.backward.append(len(data))
        cut.traffic.last_backward = data
        out = cut.backward_codec.decode(data, tuple(g.shape))
        if getattr(cut.forward_codec, "weighted", False):  # both sides know the decoded gradient
            w = np.square(out, dtype=np.float64).mean(axis=(0, *range(3, out.ndim)))
            d = cut.weight_decay if cut.weight is not None else 0.0
            cut.weight = d * cut.weight + (1 - d) * w if d else w
        return torch.from_numpy(np.array(out, np.float32)).to(grad.dtype), None


class SplitBoundary(torch.nn.Module):
    """The cut layer: identity in value up to the codecs. ``forward`` codes the activations,
    ``backward`` the gradients (default lossless float32 both ways); ``seed`` drives stochastic
    rounding (a different stream per step and direction).

    ``mask_zeros``: the server zeroes the gradient wherever the activation it decoded is exactly
    0 before coding it (cheap to entropy-code). Exact when the device part ends in ReLU (or
    ReLU + max-pool) and the forward codec keeps zeros: the device's ReLU drops those gradients
    anyway; a positive activation the forward codec rounds to 0 loses its gradient.

    With a weighted forward codec (``SGQ(weighted=True)``) the boundary keeps ``weight``: the
    running mean (decay ``weight_decay`` per step) of the squared decoded gradient per channel and
    row, which both sides know, and codes each forward with the weight of the steps before it (None,
    equal weights, before the first backward; set it to reuse a trained boundary's weight)."""

    def __init__(self, forward=None, backward=None, seed: int = 0, mask_zeros: bool = False):
        super().__init__()
        self.forward_codec = as_feature_codec(forward)
        self.backward_codec = as_feature_codec(backward)
        self.seed = int(seed)
        self.mask_zeros = bool(mask_zeros)
        self.step = 0
        self.traffic = CutTraffic()
        self.weight: np.ndarray | None = None
        self.weight_decay = 0.9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise SpecError("the split boundary takes a floating-point tensor")
        return _Cut.apply(x, self)

    def extra_repr(self) -> str:
        return (f"forward={self.forward_codec!r}, backward={self.backward_codec!r}, "
                f"mask_zeros={self.mask_zeros}")

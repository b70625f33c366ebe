"""Activation quantization for deployment: calibrated per-tensor ranges on a simulated model.

Sites are layer inputs (``"<module>:in"``, default every Linear / Conv) or module outputs
(``"<module>:out"``). Calibration runs the float model once, keeping each site's exact min/max and
a random sample of at most ``max_samples`` values, then picks the clipping range:

- ``"minmax"``: the observed range;
- ``"mse"``: the min-max range shrunk by the factor minimising the squared error (grid search);
- ``"percentile"``: the ``percentile`` % tails;
- ``"entropy"``: TensorRT-style KL calibration: the clipping threshold on a 2048-bin histogram
  of |x| whose quantized distribution has the smallest KL divergence to the clipped reference.

The range becomes an asymmetric (or symmetric) per-tensor grid (:func:`nnshare.quant.params_from_range`,
fp32 scale) and an :class:`~nnshare.format.act_ranges.ActRange`; :func:`attach` installs the
quantizers as hooks. The ranges travel as float records (see :mod:`nnshare.format.act_ranges`),
and a receiver that attaches the decoded ranges to the decoded model reproduces the simulated
outputs bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..format.act_ranges import ActRange
from ..format.errors import SpecError
from ..format.spec import QuantSpec
from ..quant import ranges as wranges
from ..quant.affine import params_from_range
from .patterns import get_module, layers
from .weights import run

METHODS = ("minmax", "mse", "percentile", "entropy")


def default_sites(model: nn.Module) -> list[str]:
    """The input of every Linear / Conv layer."""
    return [f"{n}:in" for n, _ in layers(model)]


def _site(site: str) -> tuple[str, str]:
    mod, _, where = site.rpartition(":")
    if where not in ("in", "out"):
        raise SpecError(f"activation site {site!r} must end in ':in' or ':out'")
    return mod, where


def _hook(model: nn.Module, site: str, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    mod, where = _site(site)
    m = get_module(model, mod)
    if where == "in":

        def pre(_m, args):
            y = fn(args[0])
            return None if y is None else (y, *args[1:])

        return m.register_forward_pre_hook(pre)

    def post(_m, _inp, out):
        return fn(out)

    return m.register_forward_hook(post)


class _Observer:
    def __init__(self, max_samples: int, seed: int):
        self.lo, self.hi = np.inf, -np.inf
        self.parts: list[np.ndarray] = []
        self.max_samples = max_samples
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def __call__(self, x: torch.Tensor) -> None:
        v = x.detach().float().reshape(-1).numpy()
        if v.size == 0:
            return None
        if not np.all(np.isfinite(v)):
            raise SpecError("an activation holds NaN or Inf; its range cannot be calibrated")
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        take = min(v.size, self.max_samples)
        self.parts.append(v[self.rng.choice(v.size, take, replace=False)] if take < v.size else v.copy())
        self.n += v.size
        return None

    def sample(self) -> np.ndarray:
        s = np.concatenate(self.parts)
        if s.size > self.max_samples:
            s = s[self.rng.choice(s.size, self.max_samples, replace=False)]
        return s.astype(np.float32)


def kl_threshold(x: np.ndarray, bits: int, signed: bool, bins: int = 2048, stride: int = 8) -> float:
    """Clipping threshold of |x| minimising KL(reference || quantized) (TensorRT's calibration)."""
    a = np.abs(x.astype(np.float64))
    amax = float(a.max()) if a.size else 0.0
    if amax == 0:
        return 0.0
    hist, edges = np.histogram(a, bins=bins, range=(0, amax))
    levels = 2 ** (bits - 1) if signed else 2**bits
    best, best_i = np.inf, bins
    for i in range(max(levels, stride), bins + 1, stride):
        p = hist[:i].astype(np.float64).copy()
        p[-1] += hist[i:].sum()  # the reference: outliers clip into the last bin
        # the candidate: the bins without outliers merged into `levels` groups, each group's mass
        # spread over its non-empty bins
        h = hist[:i].astype(np.float64)
        idx = np.minimum((np.arange(i) * levels) // i, levels - 1)
        mass = np.bincount(idx, weights=h, minlength=levels)
        count = np.bincount(idx, weights=(h > 0).astype(np.float64), minlength=levels)
        q = np.where(h > 0, mass[idx] / np.maximum(count[idx], 1), 0.0)
        nz = p > 0
        pn = p[nz] / p.sum()
        qn = np.maximum(q[nz] / max(q.sum(), 1e-300), 1e-12)  # smoothed where p > 0 = q
        kl = float(np.sum(pn * np.log(pn / qn)))
        if kl < best:
            best, best_i = kl, i
    return float(edges[best_i]) if best_i < len(edges) else amax


def choose_range(
    sample: np.ndarray,
    lo: float,
    hi: float,
    spec: QuantSpec,
    method: str,
    percentile: float = 99.99,
) -> tuple[float, float]:
    """Clipping range (lo, hi) of one site's activations by ``method`` (see module docstring)."""
    if method == "minmax":
        return lo, hi
    blocks = sample.reshape(1, -1)
    if method == "percentile":
        a, b = wranges.percentile(blocks, percentile, spec.symmetric)
        return float(a[0]), float(b[0])
    if method == "mse":
        a, b = wranges.mse(blocks, spec, n_grid=100)
        return float(a[0]), float(b[0])
    if method == "entropy":
        t = kl_threshold(sample, spec.bits, signed=lo < 0)
        return max(lo, -t), min(hi, t)
    raise SpecError(f"activation range method must be one of {', '.join(METHODS)}, got {method!r}")


def to_range(lo: float, hi: float, spec: QuantSpec) -> ActRange:
    """The ActRange (fp32 scale, integer zero point) of a clipping range."""
    s, z = params_from_range(np.array([lo]), np.array([hi]), spec)
    return ActRange(float(s[0]), int(z[0]), spec.qmin, spec.qmax)


def calibrate(
    model: nn.Module,
    batches,
    *,
    bits: int = 8,
    method: str = "mse",
    symmetric: bool = False,
    sites: list[str] | None = None,
    forward: Callable | None = None,
    percentile: float = 99.99,
    max_samples: int = 1 << 16,
    seed: int = 0,
) -> dict[str, ActRange]:
    """Ranges of the activations at ``sites`` (default: every layer input) on ``batches``.
    Run it on the model whose activations the deployed model sees (weights already quantized,
    earlier quantizers attached, or the float model)."""
    if method not in METHODS:
        raise SpecError(f"activation range method must be one of {', '.join(METHODS)}, got {method!r}")
    spec = QuantSpec(bits=bits, symmetric=symmetric, scale_dtype="fp32")
    sites = default_sites(model) if sites is None else list(sites)
    obs = {s: _Observer(max_samples, seed + i) for i, s in enumerate(sites)}
    handles = [_hook(model, s, obs[s]) for s in sites]
    try:
        with torch.no_grad():
            for b in batches:
                run(model, b, forward)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for s, o in obs.items():
        if o.n == 0:
            raise SpecError(f"activation site {s!r} never ran on the calibration batches")
        out[s] = to_range(*choose_range(o.sample(), o.lo, o.hi, spec, method, percentile), spec)
    return out


def fake_quant(x: torch.Tensor, r: ActRange) -> torch.Tensor:
    """Torch twin of :func:`nnshare.format.act_ranges.fake_quantize` (same float32 operations)."""
    if x.dtype != torch.float32:
        raise SpecError(f"activation quantization runs in float32, got {x.dtype}")
    lo, hi = r.bounds()
    s = torch.tensor(r.scale, dtype=torch.float32)
    return (torch.round(torch.clamp(x / s, float(lo), float(hi))) + 0.0) * s


def attach(model: nn.Module, act_ranges: Mapping[str, ActRange]) -> list:
    """Install a quantizer at every site (replacing earlier ones); returns the hook handles."""
    detach(model)
    handles = [_hook(model, s, lambda x, r=r: fake_quant(x, r)) for s, r in act_ranges.items()]
    model._nnshare_act_hooks = handles
    return handles


def detach(model: nn.Module) -> None:
    """Remove the quantizers :func:`attach` installed (no-op without)."""
    for h in getattr(model, "_nnshare_act_hooks", []):
        h.remove()
    model._nnshare_act_hooks = []

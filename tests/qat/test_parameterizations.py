"""Gradients of each parameterization against finite differences of the STE surrogate.

The surrogate replaces every rint(u) by u + r with r = rint(u0) - u0 frozen at the evaluation
point; its exact derivative is what the STE gradient claims to be.
"""

import numpy as np
import pytest
import torch

from nnshare.format.spec import QuantSpec
from nnshare.qat.quantizer import WeightFakeQuant
from nnshare.quant.affine import quantize


class FrozenRounding:
    """round_fn that records rounding residuals, then replays them (the STE surrogate)."""

    def __init__(self):
        self.residuals, self.replay, self.i = [], False, 0

    def __call__(self, u):
        if not self.replay:
            r = (torch.round(u) - u).detach()
            self.residuals.append(r)
            return u + r
        r = self.residuals[self.i]
        self.i += 1
        return u + r


def surrogate_check(fq: WeightFakeQuant, w: torch.Tensor, h: float = 1e-6):
    """Max |autograd - central difference| relative to the gradient scale, over range params."""
    c = torch.randn(w.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    rec = FrozenRounding()
    fq.round_fn = rec
    loss = (fq(w) * c).sum()
    params = list(fq.range.parameters())
    grads = torch.autograd.grad(loss, params)
    rec.replay = True
    worst, scale = 0.0, 1e-12
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            for k in range(p.numel()):
                old = p.view(-1)[k].item()
                vals = []
                for sign in (1, -1):
                    p.view(-1)[k] = old + sign * h
                    rec.i = 0
                    vals.append(float((fq(w) * c).sum()))
                p.view(-1)[k] = old
                fd = (vals[0] - vals[1]) / (2 * h)
                worst = max(worst, abs(fd - float(g.view(-1)[k])))
                scale = max(scale, abs(fd))
    return worst / scale, grads


KINDS = ["minmax", "scale_offset", "beta_gamma", "lsq", "lsq+"]
SPECS = [
    QuantSpec(bits=3, symmetric=False),
    QuantSpec(bits=4, symmetric=True),
    QuantSpec(bits=2, symmetric=False, granularity="channel"),
    QuantSpec(bits=3, symmetric=True, granularity="channel", axis=1),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.bits}b-{s.symmetric}-{s.granularity}")
def test_gradients_match_finite_differences_of_surrogate(kind, spec):
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(4, 9, generator=g) * 0.3 + 0.05).double()
    fq = WeightFakeQuant(w.float(), spec, kind).double()
    with torch.no_grad():  # move off the initial range so some values clip and some don't
        for p in fq.range.parameters():
            p.mul_(0.8).add_(0.0137)
    if kind.startswith("lsq"):
        fq.range.g = 1.0
    err, grads = surrogate_check(fq, w)
    assert err < 1e-6
    assert any(float(gr.abs().max()) > 1e-3 for gr in grads)  # not a vacuous zero gradient


@pytest.mark.parametrize("kind", ["minmax", "scale_offset", "beta_gamma"])
@pytest.mark.parametrize(
    "spec",
    [
        QuantSpec(bits=3, symmetric=False, granularity="channel"),
        QuantSpec(bits=4),
        QuantSpec(bits=5, symmetric=False, scale_dtype="bf16", granularity="group",
                  group_size=8, axis=1),
        QuantSpec(bits=4, symmetric=False, range_method="mse"),
    ],
)
def test_fresh_quantizer_equals_post_training_quantization(kind, spec):
    w = torch.randn(6, 20, generator=torch.Generator().manual_seed(1)) * 0.2 + 0.03
    fq = WeightFakeQuant(w, spec, kind)
    ptq = quantize(w.numpy(), spec)
    out = fq(w).detach().numpy()
    if spec.range_method == "mse" and kind == "beta_gamma":
        # beta = lo / min(w) may be one ulp off after multiplying back: allow one step
        assert np.abs(out - ptq.dequantize()).max() <= ptq.params["scale"].max() * 1.0001
    else:
        np.testing.assert_array_equal(out, ptq.dequantize())
        np.testing.assert_array_equal(fq.export(w).codes, ptq.codes)


def test_beta_gamma_follows_the_weights_range():
    spec = QuantSpec(bits=4, symmetric=False)
    w = torch.tensor([[-1.0, 0.0, 2.0]])
    fq = WeightFakeQuant(w, spec, "beta_gamma")
    s, _ = fq.range.qparams(w * 3, torch.round)
    assert torch.allclose(s, torch.tensor([[9.0 / 15]]))


def test_minmax_gradient_on_clipped_values_is_one():
    spec = QuantSpec(bits=4, symmetric=False)
    w = torch.tensor([[-1.0, 0.0, 2.0]])
    fq = WeightFakeQuant(w, spec, "minmax")
    with torch.no_grad():
        fq.range.lo.fill_(-0.5)
        fq.range.hi.fill_(1.0)
    w2 = torch.tensor([[-1.0, 0.2, 3.0]])
    out = fq(w2)
    out[0, 0].backward()
    assert fq.range.lo.grad.item() == pytest.approx(1.0, abs=1e-6)
    assert fq.range.hi.grad.item() == pytest.approx(0.0, abs=1e-6)

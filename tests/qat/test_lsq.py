import math

import numpy as np
import pytest
import torch

from nnshare.format.errors import SpecError
from nnshare.format.spec import QuantSpec
from nnshare.qat.lsq import lsq_grad_factor, lsq_init_step, lsqplus_init_step
from nnshare.qat.quantizer import WeightFakeQuant


def test_step_gradient_is_lsqs_piecewise_formula_times_g():
    spec = QuantSpec(bits=4)  # codes -8..7
    w = torch.tensor([[0.26, -10.0, 10.0, 0.04]])
    fq = WeightFakeQuant(w, spec, "lsq")
    with torch.no_grad():
        fq.range.scale.fill_(0.1)
    fq(w).sum().backward()
    inside = (3 - 2.6) + (0 - 0.4)  # rint(w/s) - w/s for 0.26 and 0.04
    expect = (inside + (-8) + 7) * lsq_grad_factor(4, spec)
    assert fq.range.scale.grad.item() == pytest.approx(expect, rel=1e-5)
    assert lsq_grad_factor(4, spec) == pytest.approx(1 / math.sqrt(4 * 7))


def test_lsq_gradient_scale_factor_multiplies_step_gradient():
    spec = QuantSpec(bits=4)
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    fq = WeightFakeQuant(w, spec, "lsq")
    fq(w).sum().backward()
    g_scaled = fq.range.scale.grad.clone()
    fq.range.scale.grad = None
    fq.range.g = 1.0
    fq(w).sum().backward()
    assert torch.allclose(g_scaled, fq.range.scale.grad / np.sqrt(128 * 7))



def test_initial_steps_follow_the_papers():
    spec = QuantSpec(bits=3)  # Q_P = 3
    b = np.array([[1.0, -1.0, 2.0, -2.0]], np.float32)
    assert lsq_init_step(b, spec)[0] == pytest.approx(2 * 1.5 / math.sqrt(3))
    sd = b.std()
    assert lsqplus_init_step(b, spec)[0] == pytest.approx(3 * sd / 4)


def test_lsq_offset_gradient_is_zero_inside_and_one_outside():
    spec = QuantSpec(bits=3, symmetric=False)
    w = torch.tensor([[-0.5, 0.1, 0.3]])
    fq = WeightFakeQuant(w, spec, "lsq+")
    fq.range.g = 1.0
    with torch.no_grad():
        fq.range.scale.fill_(0.1)
        fq.range.offset.fill_(-0.3)  # range [-0.3, 0.4]: -0.5 clips below
    out = fq(w)
    g_in = torch.autograd.grad(out[0, 1], fq.range.offset, retain_graph=True)[0]
    g_out = torch.autograd.grad(out[0, 0], fq.range.offset)[0]
    assert g_in.item() == pytest.approx(0.0, abs=1e-6)
    assert g_out.item() == pytest.approx(1.0, abs=1e-6)


def test_symmetric_lsq_needs_two_bits():
    with pytest.raises(SpecError, match="symmetric 1-bit"):
        WeightFakeQuant(torch.ones(2, 2), QuantSpec(bits=1), "lsq")

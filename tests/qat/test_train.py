"""QAT on a small real task (sklearn digits): it must beat post-training quantization."""

import pytest
import torch
import torch.nn.functional as F

from nnshare.digits import accuracy
from nnshare.format.errors import SpecError
from nnshare.plan import uniform
from nnshare.qat import prepare
from nnshare.qat.train import evaluate, fit, make_optimizer


@pytest.mark.parametrize("ranges", ["minmax", "scale_offset", "beta_gamma", "lsq"])
def test_qat_at_2_bits_beats_ptq_on_digits(digits_float, ranges):
    model, (xtr, ytr, xte, yte) = digits_float
    plan = uniform(2)  # 2-bit symmetric per tensor: PTQ breaks the model
    ptq = prepare(model, plan, "minmax")  # a fresh min/max quantizer is exactly PTQ
    ptq_acc = accuracy(ptq, xte, yte)
    q = prepare(model, plan, ranges)
    res = fit(q, xtr, ytr, F.cross_entropy, epochs=4, lr=1e-3, seed=0)
    assert not res.diverged
    qat_acc = accuracy(q, xte, yte)
    assert ptq_acc < 0.6
    assert qat_acc > 0.88 and qat_acc > ptq_acc + 0.3


def test_qat_at_4_bits_lowers_test_loss_below_ptq(digits_float):
    model, (xtr, ytr, xte, yte) = digits_float
    plan = uniform(4, "channel", symmetric=False)
    ptq_loss = evaluate(prepare(model, plan), xte, yte, F.cross_entropy)
    q = prepare(model, plan, "beta_gamma")
    fit(q, xtr, ytr, F.cross_entropy, epochs=4, lr=1e-3, seed=0)
    assert evaluate(q, xte, yte, F.cross_entropy) < ptq_loss


def test_fit_reports_divergence_instead_of_returning_nan():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    q = prepare(model, uniform(2), "scale_offset")
    x = torch.randn(32, 4)
    res = fit(q, x, x * 1e30, F.mse_loss, epochs=3, lr=1e3)
    assert res.diverged


def test_make_optimizer_separates_range_learning_rate():
    q = prepare(torch.nn.Sequential(torch.nn.Linear(4, 4)), uniform(4), "lsq")
    opt = make_optimizer(q, lr=1e-3, range_lr=1e-5)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-5]
    assert len(opt.param_groups[1]["params"]) == 1
    with pytest.raises(SpecError, match="optimizer"):
        make_optimizer(q, lr=1e-3, kind="lbfgs")


def test_separate_range_optimizer_steps_both():
    torch.manual_seed(0)
    q = prepare(torch.nn.Sequential(torch.nn.Linear(4, 4)), uniform(3), "minmax")
    opt = make_optimizer(q, lr=1e-2, range_lr=1e-2, range_kind="sgd")
    assert [type(o).__name__ for o in opt.optimizers] == ["Adam", "SGD"]
    before = [p.detach().clone() for p in q.parameters()]
    seen = []
    x = torch.randn(16, 4)
    fit(q, x, x, F.mse_loss, epochs=2, optimizer=opt, on_epoch=lambda e, v: seen.append(e))
    assert seen == [0, 1]
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, q.parameters(), strict=True))


def test_digits_demo_reports_decoded_equal_to_qat():
    from nnshare.qat.demo import digits_qat

    r = digits_qat(bits=2, ranges="minmax", granularity="tensor", epochs=3)
    assert r["decoded"] == r["qat"] and r["qat"] > r["ptq"] + 0.2
    assert r["stream_bits_agreed"] < r["float32_bits"] / 8

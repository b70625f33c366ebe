import copy

import pytest
import torch
import torch.nn.functional as F

from nnshare.digits import accuracy
from nnshare.format.errors import SpecError
from nnshare.plan import uniform
from nnshare.qat import kd_loss, prepare, qkd_train


def test_kd_loss_limits_and_temperature_scaling():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    assert torch.allclose(kd_loss(s, t, y, alpha=0.0), F.cross_entropy(s, y))
    assert float(kd_loss(s, s, y, alpha=1.0)) == pytest.approx(0.0, abs=1e-6)
    temp = 3.0
    p = F.softmax(t / temp, 1)
    manual = (p * (p.log() - F.log_softmax(s / temp, 1))).sum(1).mean() * temp**2
    assert torch.allclose(kd_loss(s, t, y, temperature=temp, alpha=1.0), manual, atol=1e-6)
    with pytest.raises(SpecError):
        kd_loss(s, t, y, temperature=0.0)


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_qkd_phases_train_the_teacher_only_while_co_studying(digits_float):
    model, (xtr, ytr, xte, yte) = digits_float
    x, y = xtr[:256], ytr[:256]
    student, teacher = prepare(model, uniform(2), "lsq"), copy.deepcopy(model)
    t0 = _params(teacher)
    qkd_train(student, teacher, x, y, phases=(1, 0, 1))
    assert _same(t0, _params(teacher))  # SS and TU leave the teacher alone
    qkd_train(student, teacher, x, y, phases=(0, 1, 0))
    assert not _same(t0, _params(teacher))


def test_qkd_student_beats_ptq_at_2_bits(digits_float):
    model, (xtr, ytr, xte, yte) = digits_float
    student = prepare(model, uniform(2), "minmax")
    ptq_acc = accuracy(student, xte, yte)
    res = qkd_train(student, copy.deepcopy(model), xtr, ytr, phases=(2, 1, 1), lr=1e-3)
    assert set(res.losses) == {"ss", "cs", "tu"} and len(res.losses["cs"]) == 1
    assert accuracy(student, xte, yte) > ptq_acc + 0.3


def test_qkd_rejects_bad_phases(digits_float):
    model, (xtr, ytr, _, _) = digits_float
    with pytest.raises(SpecError, match="phases"):
        qkd_train(prepare(model, uniform(4)), model, xtr, ytr, phases=(1, 2))

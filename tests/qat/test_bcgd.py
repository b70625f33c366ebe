import copy

import pytest
import torch
import torch.nn.functional as F

from nnshare.digits import accuracy
from nnshare.format.errors import SpecError
from nnshare.plan import uniform
from nnshare.qat import BCGD, latent_weights, prepare, quantizers
from nnshare.qat.train import fit, make_optimizer


def _prepared():
    torch.manual_seed(0)
    return prepare(torch.nn.Sequential(torch.nn.Linear(6, 5)), uniform(2), "minmax")


def test_step_blends_latent_weight_toward_its_quantization():
    q = _prepared()
    w = latent_weights(q)["0.weight"]
    w0 = w.detach().clone()
    qw = quantizers(q)["0.weight"](w0).detach()
    opt = BCGD(q, torch.optim.SGD(q.parameters(), lr=0.0), rho=0.25)
    opt.step()
    assert torch.allclose(w, 0.75 * w0 + 0.25 * qw, atol=1e-7)
    assert not torch.equal(w, w0)


def test_rho_one_puts_latent_weights_on_the_grid():
    q = _prepared()
    opt = BCGD(q, torch.optim.SGD(q.parameters(), lr=0.0), rho=1.0)
    opt.step()
    w = latent_weights(q)["0.weight"]
    assert torch.equal(quantizers(q)["0.weight"](w), w)


def test_rho_grows_per_epoch_up_to_its_cap():
    opt = BCGD(_prepared(), torch.optim.SGD(_prepared().parameters(), lr=0.1), rho=1e-3,
               rho_rate=10.0, rho_max=0.05)
    opt.epoch_end()
    assert opt.rho == pytest.approx(1e-2)
    opt.epoch_end()
    assert opt.rho == 0.05


@pytest.mark.parametrize("kw", [{"rho": -0.1}, {"rho": 1.5}, {"rho_rate": 0.5}])
def test_bad_blending_parameters_raise(kw):
    q = _prepared()
    with pytest.raises(SpecError, match="BCGD"):
        BCGD(q, torch.optim.SGD(q.parameters(), lr=0.1), **kw)


def test_bcgd_trains_digits_at_2_bits(digits_float):
    model, (xtr, ytr, xte, yte) = digits_float
    q = prepare(model, uniform(2), "minmax")
    ptq_acc = accuracy(q, xte, yte)
    plain = copy.deepcopy(q)
    opt = BCGD(q, make_optimizer(q, lr=1e-3), rho=1e-3)
    res = fit(q, xtr, ytr, F.cross_entropy, epochs=4, optimizer=opt, seed=0)
    assert not res.diverged and accuracy(q, xte, yte) > ptq_acc + 0.3
    fit(plain, xtr, ytr, F.cross_entropy, epochs=4, lr=1e-3, seed=0)
    # the blending pulls latent weights toward the grid: closer than plain STE training
    @torch.no_grad()
    def gap(m):
        w = latent_weights(m)["0.weight"]
        return float((quantizers(m)["0.weight"](w) - w).abs().mean())

    assert gap(q) < gap(plain)

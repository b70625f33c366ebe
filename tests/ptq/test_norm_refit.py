import copy

import pytest
import torch
from torch import nn

from nnshare import SpecError
from nnshare.ptq.norm_refit import refit_layernorm


class Emb(nn.Module):
    """Token + position + type tables summed into a LayerNorm, then a Linear (BERT's embedding shape)."""

    def __init__(self):
        super().__init__()
        self.tok, self.pos, self.typ = nn.Embedding(50, 16), nn.Embedding(12, 16), nn.Embedding(2, 16)
        self.norm = nn.LayerNorm(16)
        self.out = nn.Linear(16, 8)

    def forward(self, ids):
        p = torch.arange(ids.shape[1])[None]
        return self.out(self.norm(self.tok(ids) + self.pos(p) + self.typ(torch.zeros_like(ids))))


def _batches(seed, n=4):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 50, (16, 12), generator=g) for _ in range(n)]


def test_refit_absorbs_a_shared_table_error_and_never_raises_the_calibration_error():
    torch.manual_seed(0)
    ref = Emb().eval()
    with torch.no_grad():
        ref.norm.weight.uniform_(0.5, 1.5)
        ref.norm.bias.normal_(0, 0.3)
    q = copy.deepcopy(ref)
    with torch.no_grad():
        q.typ.weight[0] += 0.3 * torch.randn(16)  # an error every token shares
        q.tok.weight += 0.02 * torch.randn_like(q.tok.weight)
    calib, test = _batches(1), _batches(2)

    def err(m):
        with torch.no_grad():
            return float(sum(((m(b) - ref(b)) ** 2).mean() for b in test))

    e0 = err(q)
    r = refit_layernorm(q, ref, "norm", calib)
    assert r.mse_after <= r.mse_before
    assert r.mse_after < 0.5 * r.mse_before
    assert err(q) < 0.5 * e0  # held-out tokens too
    assert q.norm.weight.shape == (16,) and q.norm.bias.shape == (16,)
    # the float model refitted against itself stays put
    same = copy.deepcopy(ref)
    r2 = refit_layernorm(same, ref, "norm", calib)
    assert r2.mse_before == pytest.approx(0.0, abs=1e-12) and r2.mse_after <= 1e-12
    assert torch.allclose(same.norm.weight, ref.norm.weight, atol=1e-5)
    assert torch.allclose(same.norm.bias, ref.norm.bias, atol=1e-5)


def test_refit_refusals():
    ref = Emb().eval()
    with pytest.raises(SpecError, match="not a LayerNorm"):
        refit_layernorm(copy.deepcopy(ref), ref, "out", _batches(0, 1))
    with pytest.raises(SpecError, match="no module"):
        refit_layernorm(copy.deepcopy(ref), ref, "nope", _batches(0, 1))
    with pytest.raises(SpecError, match="no calibration tokens"):
        refit_layernorm(copy.deepcopy(ref), ref, "norm", [])

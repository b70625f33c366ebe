"""A zoo of small models through every preset, rate target and budget path: every tensor role
encodes and decodes, integers come back exact, and no tensor decodes to zeros unless it was."""

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare.mixed import Budget, search
from nnshare.plan import PRESETS
from nnshare.share.model import encode_model
from nnshare.share.quality import sqnr_db
from nnshare.share.rated import encode_rate
from nnshare.state import model_state


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, ids):
        return self.head(self.layer(self.emb(ids)).mean(1))


class PositionEmbedder(nn.Module):
    """Like a BERT embedding block: word + position embeddings, position_ids buffer, LayerNorm."""

    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(30, 12)
        self.position_embeddings = nn.Embedding(10, 12)
        self.LayerNorm = nn.LayerNorm(12)
        self.register_buffer("position_ids", torch.arange(10).unsqueeze(0))
        self.proj = nn.Linear(12, 6)

    def forward(self, ids):
        pos = self.position_embeddings(self.position_ids[:, : ids.shape[1]])
        return self.proj(self.LayerNorm(self.word_embeddings(ids) + pos))


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 16, batch_first=True)  # weight_ih_l0 is (48, 1): one weight per row
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        return self.out(self.gru(x)[0][:, -1])


def bn_cnn():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 8, 3),
                      nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    with torch.no_grad():  # trained-looking statistics: far from the defaults
        for bn in (m[1], m[4]):
            bn.running_mean.uniform_(-3, 3)
            bn.running_var.uniform_(0.01, 40)
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-0.5, 0.5)
            bn.num_batches_tracked.fill_(123)
    return m


ZOO = {
    "mlp": lambda: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)),
    "bn_cnn": bn_cnn,
    "gru": GRUNet,
    "transformer": TinyTransformer,
    "embedder": PositionEmbedder,
}


def make(name):
    torch.manual_seed(0)
    return ZOO[name]().eval()


def check_round_trip(model, data, counters=False):
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)  # the decode must overwrite every parameter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nnshare.NNShareWarning)
        nnshare.decode(data, into=fresh)
    st = model_state(model)
    got = model_state(fresh)
    for name, a in st.arrays.items():
        b = got.arrays[name]
        if a.dtype.kind != "f":
            assert b.dtype == a.dtype and np.array_equal(a, b), name  # raw and exact
        elif np.any(a != 0):
            assert np.any(b != 0), f"{name} ({st.roles[name]}) decoded to all zeros"
        if st.roles[name] in ("norm", "bn_stat", "bias"):  # float, or their own fine step
            assert sqnr_db(a, b) >= 40, name
    return fresh


@pytest.mark.parametrize("name", sorted(ZOO))
def test_roles_of_the_zoo(name):
    st = model_state(make(name))
    roles = set(st.roles.values())
    assert "weight" in roles or "embedding" in roles
    if name == "bn_cnn":
        assert {"bn_stat", "norm", "counter", "bias"} <= roles
    if name == "transformer":
        assert st.roles["layer.self_attn.in_proj_weight"] == "weight"
        assert st.roles["layer.norm1.weight"] == "norm" and st.roles["emb.weight"] == "embedding"
    if name == "embedder":
        assert st.roles["position_ids"] == "index" and st.roles["LayerNorm.bias"] == "norm"
    if name == "gru":
        assert st.roles["gru.weight_ih_l0"] == "weight" and st.roles["gru.bias_hh_l0"] == "bias"


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_preset(name, preset):
    model = make(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nnshare.NNShareWarning)
        enc = encode_model(model, preset)
    assert not enc.quality.zeroed
    check_round_trip(model, enc.data)
    if name == "gru" and preset == "w4-channel":  # one element per channel: per-tensor scale
        assert enc.tensors["gru.weight_ih_l0"].spec.granularity == "tensor"


@pytest.mark.parametrize("target", [{"sqnr_db": 20}, {"bits_per_param": 5}])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_rate_target(name, target):
    model = make(name)
    enc = encode_rate(model, method="rdo", warn=False, **target)
    assert not enc.quality.zeroed
    if "sqnr_db" in target:
        assert enc.result.sqnr_db >= 20
    else:
        params = sum(a.size for a in enc.state.arrays.values() if a.dtype.kind == "f")
        assert enc.result.bits <= 5 * params
    check_round_trip(model, enc.data)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_budget_path(name):
    model = make(name)
    w8 = 8 * len(nnshare.encode(model, "w8-channel"))
    budget = Budget(bits=int(0.75 * w8))
    alloc = search(model, budget, "weight", granularity="channel", candidates=(2, 3, 4, 6, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nnshare.NNShareWarning)
        enc = encode_model(model, alloc.plan)
    assert 8 * len(enc.data) <= budget.total_bits
    assert not enc.quality.zeroed
    check_round_trip(model, enc.data)

"""The two BatchNorm cases of issue 10: rate control keeps a BN CNN's accuracy; an update whose
counter moved codes every weight delta to its target and the counter exactly."""

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare.digits import accuracy, digits_data
from nnshare.share.delta import decode_update, encode_update
from nnshare.share.quality import sqnr_db
from nnshare.share.rated import encode_rate


def bn_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
    )


def train(model, x, y, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()
    return model


@pytest.fixture(scope="module")
def trained():
    xtr, ytr, xte, yte = digits_data()
    model = train(bn_cnn(), xtr, ytr, 300)
    # BatchNorm statistics far from 1: the case where one global step zeroed running_var
    return model, (xtr, ytr, xte, yte)


def test_bn_cnn_under_target_sqnr_keeps_accuracy(trained):
    model, (_, _, xte, yte) = trained
    ref = accuracy(model, xte, yte)
    assert ref >= 0.95
    enc = encode_rate(model, sqnr_db=20)
    assert enc.result.sqnr_db >= 20  # over the weight matrices
    fresh = bn_cnn(seed=5)
    with pytest.warns(nnshare.NNShareWarning, match="bookkeeping counter"):
        nnshare.decode(enc.data, into=fresh)
    fresh.eval()
    assert accuracy(fresh, xte, yte) >= ref - 0.01
    for name in ("2.running_var", "5.running_var", "2.weight", "5.bias"):  # 1-D: own fine step
        got = fresh.state_dict()[name].numpy()
        assert sqnr_db(model.state_dict()[name].numpy(), got) >= 45, name
    assert not enc.quality.zeroed


def test_update_with_moved_counter_codes_every_weight_delta(trained):
    model, (xtr, ytr, _, _) = trained
    base = {k: v.clone() for k, v in model.state_dict().items()}
    new_model = train(model, xtr, ytr, 10, seed=1)  # num_batches_tracked moves by +10
    new = {k: v.clone() for k, v in new_model.state_dict().items()}
    assert int(new["2.num_batches_tracked"]) - int(base["2.num_batches_tracked"]) == 10
    np_base = {k: v.numpy() for k, v in base.items()}
    np_new = {k: v.numpy() for k, v in new.items()}
    enc = encode_update(np_new, np_base, sqnr_db=25)
    got, _ = decode_update(enc.data, np_base)
    assert got["2.num_batches_tracked"].dtype == np.int64
    assert int(got["2.num_batches_tracked"]) == int(new["2.num_batches_tracked"])
    for k, v in np_new.items():
        if v.dtype.kind != "f":
            continue
        d_true = v.astype(np.float64) - np_base[k]
        d_got = got[k].astype(np.float64) - np_base[k]
        assert np.any(d_got != 0), f"{k}: delta decoded as zero"
        floor = 25 - 0.05 if v.ndim >= 2 else 40  # each weight delta at the target, 1-D finer
        assert sqnr_db(d_true, d_got) >= floor, k

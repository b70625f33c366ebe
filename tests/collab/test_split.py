import numpy as np
import pytest
import torch

from nnshare.collab.codecs import codec
from nnshare.collab.feature_codecs import SGQ, Lossless, Uniform, expected_bytes, rebuild_features
from nnshare.collab.split import SplitBoundary
from nnshare.format.errors import SpecError
from nnshare.share.inspect import inspect


def nets(seed=0):
    torch.manual_seed(seed)
    device = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2))
    server = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10))
    return device, server


def grads(cut, x, y, seed=0):
    device, server = nets(seed)
    h = device(x)
    out = server(cut(h) if cut is not None else h)
    torch.nn.functional.cross_entropy(out, y).backward()
    return out.detach(), [p.grad.clone() for p in device.parameters()]


def test_lossless_boundary_is_exact_both_ways_and_counts_bytes():
    torch.manual_seed(1)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    ref_out, ref_g = grads(None, x, y)
    cut = SplitBoundary(Lossless(), Lossless())
    out, g = grads(cut, x, y)
    assert torch.equal(out, ref_out)
    assert all(torch.equal(a, b) for a, b in zip(g, ref_g, strict=True))
    want = expected_bytes(Lossless(), (16, 8, 4, 4))  # header + 2 + 4 * 2048 + 4
    assert cut.traffic.forward == [want] and cut.traffic.backward == [want]
    assert cut.traffic.per_step() == 2 * want
    assert inspect(cut.traffic.last_forward).kind == "features"
    assert rebuild_features(cut.traffic.last_backward).shape == (16, 8, 4, 4)


def test_masked_gradient_is_exact_after_relu():
    torch.manual_seed(5)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    _, g_ref = grads(SplitBoundary(), x, y)
    cut = SplitBoundary(Lossless(), Lossless(), mask_zeros=True)
    _, g = grads(cut, x, y)
    assert all(torch.equal(a, b) for a, b in zip(g, g_ref, strict=True))
    h = rebuild_features(cut.traffic.last_forward)
    sent = rebuild_features(cut.traffic.last_backward)
    assert (h == 0).sum() > 100 and np.all(sent[h == 0] == 0)
    assert np.count_nonzero(sent[h != 0]) == np.count_nonzero(h)


def test_quantized_boundary_bytes_match_the_streams():
    torch.manual_seed(2)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    fwd, bwd = SGQ(4, 4, 2, entropy="none"), Uniform(4, stochastic=True, entropy="none")
    cut = SplitBoundary(fwd, bwd, seed=5)
    grads(cut, x, y)
    assert cut.traffic.forward == [expected_bytes(fwd, (16, 8, 4, 4))]
    assert cut.traffic.backward == [expected_bytes(bwd, (16, 8, 4, 4))]
    # what the server saw is what the receiver rebuilds from the stream alone
    device, _ = nets()
    h = device(x).detach().numpy()
    assert np.array_equal(rebuild_features(cut.traffic.last_forward), fwd.roundtrip(h)[0])


def test_unbiased_backward_gives_unbiased_device_gradients():
    torch.manual_seed(3)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    _, ref = grads(None, x, y)
    ref = torch.cat([g.reshape(-1) for g in ref])
    runs = {}
    for name, bwd in (("stochastic", SGQ(2, 4, 2, stochastic=True, entropy="none")),
                      ("nearest", SGQ(2, 4, 2, entropy="none"))):
        cut = SplitBoundary(Lossless(), bwd, seed=11)
        draws = []
        for _ in range(200):
            _, g = grads(cut, x, y)
            draws.append(torch.cat([t.reshape(-1) for t in g]))
        runs[name] = torch.stack(draws)
    d = runs["stochastic"]
    sd = d.std(0) / np.sqrt(len(d)) + 1e-9
    z = ((d.mean(0) - ref) / sd).abs()
    assert z.max() < 5.5
    # nearest rounding is one fixed (biased) answer, far outside the stochastic mean's noise
    assert ((runs["nearest"].mean(0) - ref) / sd).abs().max() > 10


def test_any_update_codec_at_the_cut():
    torch.manual_seed(4)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    cut = SplitBoundary(codec("qsgd", levels=3), codec("sign"))
    out, g = grads(cut, x, y)
    assert torch.isfinite(out).all() and all(torch.isfinite(t).all() for t in g)
    assert len(cut.traffic.forward) == len(cut.traffic.backward) == 1
    assert cut.traffic.forward[0] < expected_bytes(Lossless(), (8, 8, 4, 4)) / 4


def test_bad_input():
    with pytest.raises(SpecError, match="not a codec"):
        SplitBoundary("uniform")
    with pytest.raises(SpecError, match="floating-point"):
        SplitBoundary()(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(SpecError, match="does not divide"):
        SplitBoundary(SGQ(4, 3))(torch.ones(2, 8, 4, 4))


def test_boundary_keeps_the_sensitivity_of_decoded_gradients():
    torch.manual_seed(2)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    cut = SplitBoundary(SGQ(4, 2, 2, weighted=True), Lossless())
    device, server = nets(0)
    seen = []
    for _ in range(2):
        h = device(x).detach().requires_grad_(True)
        torch.nn.functional.cross_entropy(server(cut(h)), y).backward()
        seen.append(h.grad.double().square().mean(dim=(0, 3)).numpy())
    assert cut.weight.shape == (8, 4)
    assert np.allclose(cut.weight, 0.9 * seen[0] + 0.1 * seen[1])  # running mean, decay 0.9
    assert SplitBoundary(Lossless()).weight is None

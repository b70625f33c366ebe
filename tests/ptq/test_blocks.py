import numpy as np
import torch
from torch import nn

from nnshare import QuantSpec
from nnshare.ptq import GPTQConfig, gptq
from nnshare.ptq import blocks as blocks_mod
from nnshare.ptq import weights as weights_mod


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x, mask=None, *, scale=1.0):
        a = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) * scale + mask, -1) @ self.v(x)
        x = x + a
        return (x + self.down(torch.relu(self.up(x))),)  # a tuple, as transformer layers return


class Stack(nn.Module):
    def __init__(self, d=16, n=3, gap=False):
        super().__init__()
        self.inp = nn.Linear(8, d)
        self.layers = nn.ModuleList(Block(d) for _ in range(n))
        self.head = nn.Linear(d, 4)
        self.gap = gap

    def forward(self, x):
        mask = torch.zeros(x.shape[1], x.shape[1])
        h = self.inp(x)
        for blk in self.layers:
            h = blk(h, mask, scale=0.25)[0]
            if self.gap:  # something between the blocks: the cache is not valid
                h = h * 0.5
        return self.head(h)


def _run(gap, use_blocks, monkeypatch):
    torch.manual_seed(0)
    net = Stack(gap=gap).eval()
    xs = [torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    calls = []
    real = blocks_mod.run_block

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(weights_mod, "run_block", counting)
    if not use_blocks:
        monkeypatch.setattr(weights_mod, "find_blocks", lambda *a: [])
    spec = QuantSpec(bits=3, granularity="channel")
    out = gptq(net, spec, xs, config=GPTQConfig(float_target=True, bias_correct=True))
    monkeypatch.undo()
    return out, net, len(calls)


def test_block_cache_gives_the_same_codes_as_rerunning_the_prefix(monkeypatch):
    a, net_a, calls_a = _run(False, True, monkeypatch)
    b, net_b, calls_b = _run(False, False, monkeypatch)
    assert calls_a == 2 and calls_b == 0  # blocks 0 -> 1 -> 2 were chained from the cache
    assert set(a) == set(b) and len(a) == 2 + 5 * 3
    for k in a:
        assert np.array_equal(a[k].codes, b[k].codes)
    for (k, p), (_, p2) in zip(net_a.state_dict().items(), net_b.state_dict().items(), strict=True):
        assert torch.equal(p, p2), k  # biases corrected identically too


def test_block_cache_not_used_when_blocks_are_not_chained(monkeypatch):
    a, _, calls = _run(True, True, monkeypatch)
    b, _, _ = _run(True, False, monkeypatch)
    assert calls == 0
    for k in a:
        assert np.array_equal(a[k].codes, b[k].codes)


def test_find_blocks():
    net = Stack()
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    assert blocks_mod.find_blocks(net, names) == ["layers.0", "layers.1", "layers.2"]
    assert blocks_mod.find_blocks(net, ["inp", "head", "layers.0.q"]) == []

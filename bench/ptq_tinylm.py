"""A tiny causal transformer for the softmax bias correction benchmark (bench/ptq.py).

Task ("running majority"): a sequence of T tokens from a vocabulary of V symbols, drawn with
per-sequence Dirichlet frequencies; at every position the model predicts the most frequent symbol
so far. Solving it needs flat attention over the whole prefix, the regime where a quantized
softmax loses most of its mass. Metric: accuracy at positions >= ``START``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nnshare.ptq.softmax import QuantSoftmax

V, T, START = 4, 96, 16


def batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (n, T), targets (n, T)): the running majority (ties: the smallest symbol)."""
    freq = torch.distributions.Dirichlet(torch.full((V,), 1.0)).sample((n,))
    x = torch.multinomial(freq, T, replacement=True, generator=gen)
    counts = torch.nn.functional.one_hot(x, V).cumsum(1).float()
    y = (counts - torch.arange(V) * 1e-3).argmax(-1)
    return x, y


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.softmax_q = QuantSoftmax(heads, T)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.dk)
        mask = self.mask[:t, :t]
        p = torch.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        p = self.softmax_q(p, mask)
        return self.out((p @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = Attention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.att(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, d: int = 32, heads: int = 2, layers: int = 2):
        super().__init__()
        self.emb = nn.Embedding(V, d)
        self.pos = nn.Parameter(torch.randn(T, d) * 0.02)
        self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(layers)])
        self.head = nn.Linear(d, V)

    def forward(self, x):
        h = self.emb(x) + self.pos[: x.shape[1]]
        return self.head(self.blocks(h))

    def softmaxes(self) -> list[QuantSoftmax]:
        return [m for m in self.modules() if isinstance(m, QuantSoftmax)]


def train(seed: int = 0, steps: int = 600, n: int = 64) -> TinyLM:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = TinyLM()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for i in range(steps):
        x, y = batch(n, gen)
        loss = nn.functional.cross_entropy(model(x)[:, START:].reshape(-1, V), y[:, START:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i == steps * 3 // 4:
            for g in opt.param_groups:
                g["lr"] = 1e-3
    return model.eval()


def accuracy(model: TinyLM, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x)[:, START:].argmax(-1) == y[:, START:]).float().mean())

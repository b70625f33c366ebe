"""Small models shared by the QAT tests."""

import torch
from torch import nn


class MixedNet(nn.Module):
    """Embedding + Conv1d + BatchNorm1d + Conv2d + Linear: every layer kind prepare handles."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.conv1 = nn.Conv1d(6, 5, 3)
        self.bn = nn.BatchNorm1d(5)
        self.conv2 = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(5 * 6 + 4 * 16, 3)

    def forward(self, x):
        tokens, img = x
        a = self.bn(self.conv1(self.emb(tokens).transpose(1, 2))).relu().flatten(1)
        b = self.conv2(img).relu().flatten(1)
        return self.fc(torch.cat([a, b], 1))


def mixed_batch(n: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 10, (n, 8), generator=g), torch.randn(n, 1, 6, 6, generator=g))

"""Small models shared by the PTQ tests: a BatchNorm + depthwise-separable CNN and an MLP."""

import torch
from torch import nn


def mobile_cnn(seed: int = 0, act=nn.ReLU) -> nn.Sequential:
    """conv-BN-act -> depthwise-BN-act -> pointwise-BN-act -> pool -> linear, on 1x8x8 inputs,
    with randomised BN statistics (as after training)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        act(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        nn.BatchNorm2d(8),
        act(),
        nn.Conv2d(8, 16, 1, bias=False),
        nn.BatchNorm2d(16),
        act(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    g = torch.Generator().manual_seed(seed + 1)
    for m in net:
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(c, generator=g))  # some negative gammas
            m.bias.data.copy_(torch.randn(c, generator=g))
    return net.eval()


def images(n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU6(), nn.Linear(24, 5)).eval()

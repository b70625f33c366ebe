"""A small, fast reference task: an MLP on scikit-learn's bundled 8x8 digits (no download)."""

from __future__ import annotations

import numpy as np


def digits_data(seed: int = 0):
    """(x_train, y_train, x_test, y_test) as torch tensors; pixels scaled to [0, 1]; 25 % test."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    t = torch.from_numpy
    return t(xtr), t(ytr).long(), t(xte), t(yte).long()


def digits_mlp(hidden: tuple[int, ...] = (64, 32), seed: int = 0):
    """An nn.Sequential MLP 64 -> hidden -> 10 with ReLU."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list = []
    width = 64
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def train_classifier(
    model, x, y, epochs: int = 60, lr: float = 3e-3, batch: int = 64, seed: int = 0
):
    """Adam + cross entropy, full passes over (x, y) in shuffled mini-batches; returns the model."""
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    return model


def accuracy(model, x, y) -> float:
    """Top-1 accuracy in [0, 1]."""
    import torch

    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def digits_cnn(channels: tuple[int, int] = (8, 16), hidden: int = 40, seed: int = 0):
    """A small CNN for the 8x8 digits: input (N, 64) pixels, two 3x3 convs, max-pool, two linears."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(c2 * 4 * 4, hidden), nn.ReLU(),
        nn.Linear(hidden, 10),
    )

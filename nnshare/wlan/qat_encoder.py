"""QAT of the shared encoder with the AP's decoder frozen (the deployed decoder cannot change).

Uses ``nnshare.qat``: ``prepare`` puts fake quantization with learned (LSQ) ranges on the
encoder weights (straight-through estimator), the encoder is fine-tuned against the frozen
decoder with the 1 - SGCS loss, and ``convert`` exports bit-exact QuantizedTensors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..plan import uniform
from ..qat import convert, prepare
from .autoencoder import features_to_v, reconstruct, sgcs_torch


def qat_encoder(
    encoder: nn.Module,
    decoder: nn.Module,
    x: np.ndarray,
    bits: int,
    *,
    granularity: str = "tensor",
    b_lat: int = 4,
    epochs: int = 6,
    lr: float = 5e-4,
    batch: int = 256,
    seed: int = 0,
    batch_loss: Callable[[nn.Module, nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Fine-tune a copy of ``encoder`` with ``bits``-bit fake-quantized weights (biases fp32)
    on features ``x`` (N, 64); the decoder stays frozen; ``batch_loss(encoder, decoder, xb)`` (a
    scalar) replaces the SU 4x2 1 - SGCS loss when given (the MU encoder's). Returns the exported tensors
    {name: QuantizedTensor | FloatTensor} ready for ``nnshare.encode_tensors``."""
    torch.manual_seed(seed)
    model = prepare(copy.deepcopy(encoder), uniform(bits, granularity), ranges="lsq")
    dec = copy.deepcopy(decoder).eval()
    for p in dec.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(xt.shape[0], generator=gen)
        for i in range(0, xt.shape[0], batch):
            xb = xt[perm[i : i + batch]]
            if batch_loss is None:
                loss = 1 - sgcs_torch(features_to_v(xb), reconstruct(dec, model(xb), b_lat, True)).mean()
            else:
                loss = batch_loss(model, dec, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return convert(model)

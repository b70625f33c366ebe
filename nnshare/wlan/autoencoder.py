"""The CSI-feedback autoencoder: a 64->40->16 encoder at the STA (the shared model) and a
16->128->128->64 decoder with orthonormalisation at the AP, trained with a 1 - SGCS loss.

Input: V (4 x 2, phase-normalised) on 4 adjacent tones of the Ng = 4 feedback grid, as
[Re, Im] of every entry -> 64 reals. 64 feedback tones = 16 groups per 20 MHz sounding. The
latent z = tanh(.) in (-1, 1)^16 is quantized to ``b_lat`` bits per entry (the CSI feedback:
16 * b_lat bits per group, 256 * b_lat bits per sounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError

TONES_PER_GROUP = 4
NT, NSS = 4, 2
IN_DIM = TONES_PER_GROUP * NT * NSS * 2  # 64
LATENT = 16


def make_encoder() -> nn.Sequential:
    """Encoder 64 -> 40 (ReLU) -> 16 (tanh): 3,256 coefficients; names 0.weight ... 2.bias."""
    return nn.Sequential(nn.Linear(IN_DIM, 40), nn.ReLU(), nn.Linear(40, LATENT), nn.Tanh())


def make_decoder() -> nn.Sequential:
    """Decoder 16 -> 128 -> 128 -> 64 (ReLU between); the output is orthonormalised later."""
    return nn.Sequential(
        nn.Linear(LATENT, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, IN_DIM)
    )


def to_features(v: np.ndarray) -> np.ndarray:
    """(n, 64 tones, 4, 2) complex V -> (n * 16, 64) float32 encoder inputs."""
    n, k = v.shape[:2]
    if k % TONES_PER_GROUP or v.shape[2:] != (NT, NSS):
        raise SpecError(f"expected V of shape (n, 4*g, {NT}, {NSS}), got {v.shape}")
    g = v.reshape(n * k // TONES_PER_GROUP, TONES_PER_GROUP * NT * NSS)
    return np.concatenate([g.real, g.imag], axis=1).astype(np.float32)


def to_v(x: torch.Tensor) -> torch.Tensor:
    """(B, 64) real decoder outputs -> (B, 4 tones, 4, 2) complex V with orthonormal columns
    (Gram-Schmidt per tone)."""
    half = IN_DIM // 2
    a = torch.complex(x[:, :half], x[:, half:]).reshape(-1, TONES_PER_GROUP, NT, NSS)
    c0 = a[..., 0]
    c0 = c0 / torch.linalg.vector_norm(c0, dim=-1, keepdim=True).clamp_min(1e-9)
    c1 = a[..., 1]
    c1 = c1 - (c0.conj() * c1).sum(-1, keepdim=True) * c0
    c1 = c1 / torch.linalg.vector_norm(c1, dim=-1, keepdim=True).clamp_min(1e-9)
    return torch.stack([c0, c1], dim=-1)


def features_to_v(x: torch.Tensor) -> torch.Tensor:
    """Encoder inputs (B, 64) back to complex V (B, 4, 4, 2) (no orthonormalisation)."""
    half = IN_DIM // 2
    return torch.complex(x[:, :half], x[:, half:]).reshape(-1, TONES_PER_GROUP, NT, NSS)


def quantize_latent(z: torch.Tensor, bits: int, ste: bool = False) -> torch.Tensor:
    """Uniform ``bits``-bit quantizer on [-1, 1] (cell centres); straight-through if ``ste``."""
    levels = 2**bits
    q = torch.clamp(torch.floor((z + 1) * levels / 2), 0, levels - 1)
    zq = -1 + (2 * q + 1) / levels
    return z + (zq - z).detach() if ste else zq


def sgcs_torch(v: torch.Tensor, v_hat: torch.Tensor) -> torch.Tensor:
    """Per-group SGCS (B,) averaged over tones and streams (V columns have unit norm)."""
    inner = (v.conj() * v_hat).sum(-2)  # (B, tones, streams)
    return (inner.abs() ** 2).mean(dim=(-1, -2))


@dataclass(frozen=True)
class TrainConfig:
    """Training set-up. ``n_channels`` model-D channels (x16 groups each), sounding SNR drawn
    uniformly in ``snr_db`` (dB), Adam at ``lr``, ``epochs`` passes in batches of ``batch``."""

    n_channels: int = 3000
    epochs: int = 30
    batch: int = 256
    lr: float = 2e-3
    b_lat: int = 4
    snr_db: tuple[float, float] = (15.0, 40.0)
    model: str = "D"
    seed: int = 0


def reconstruct(decoder: nn.Module, z: torch.Tensor, b_lat: int | None, ste: bool = False) -> torch.Tensor:
    """AP side: quantized latent -> orthonormal V-hat (B, 4, 4, 2)."""
    if b_lat is not None:
        z = quantize_latent(z, b_lat, ste=ste)
    return to_v(decoder(z))


def train(
    x: np.ndarray,
    cfg: TrainConfig,
    *,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    progress: Callable[[int, float], None] | None = None,
    batch_loss: Callable[[nn.Module, nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[nn.Module, nn.Module, list[float]]:
    """Train encoder and decoder on features ``x`` (N, 64) with loss 1 - SGCS, or
    ``batch_loss(encoder, decoder, xb)`` (a scalar) when given; ``cfg`` needs ``seed``, ``lr``,
    ``epochs``, ``batch`` and ``b_lat``.

    Returns (encoder, decoder, mean loss per epoch). Deterministic for a given ``cfg.seed``.
    """
    if batch_loss is None:
        def batch_loss(enc: nn.Module, dec: nn.Module, xb: torch.Tensor) -> torch.Tensor:
            return 1 - sgcs_torch(features_to_v(xb), reconstruct(dec, enc(xb), cfg.b_lat, ste=True)).mean()

    torch.manual_seed(cfg.seed)
    enc = encoder if encoder is not None else make_encoder()
    dec = decoder if decoder is not None else make_decoder()
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    for ep in range(cfg.epochs):
        perm = torch.randperm(xt.shape[0], generator=gen)
        tot, nb = 0.0, 0
        for i in range(0, xt.shape[0], cfg.batch):
            loss = batch_loss(enc, dec, xt[perm[i : i + cfg.batch]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
            nb += 1
        sched.step()
        history.append(tot / max(nb, 1))
        if progress is not None:
            progress(ep, history[-1])
    return enc, dec, history


def pad_groups(v: np.ndarray, group: int = TONES_PER_GROUP) -> np.ndarray:
    """Pad V (n, k, ...) along the tone axis to a multiple of ``group`` tones by repeating the
    last tone (so any Ns works: 122 at 40 MHz -> 31 groups, 250 at 80 MHz -> 63)."""
    extra = -v.shape[1] % group
    if not extra:
        return v
    return np.concatenate([v, np.repeat(v[:, -1:], extra, axis=1)], axis=1)


def groups(ns: int) -> int:
    """AE groups (of TONES_PER_GROUP tones) for ``ns`` reported tones: ceil(ns / 4)."""
    return -(-ns // TONES_PER_GROUP)


@torch.no_grad()
def feedback(encoder: nn.Module, decoder: nn.Module, v: np.ndarray, b_lat: int) -> np.ndarray:
    """The AE feedback path for V (n, k, 4, 2), any k: encode at the STA (the last group padded
    by repeating the last tone), quantize the latent, decode at the AP. Returns V-hat of the same
    shape (complex128; the padded tones dropped)."""
    n, k = v.shape[:2]
    vp = pad_groups(v)
    x = torch.from_numpy(to_features(vp))
    v_hat = reconstruct(decoder, encoder(x), b_lat)
    return v_hat.numpy().astype(np.complex128).reshape(n, vp.shape[1], NT, NSS)[:, :k]

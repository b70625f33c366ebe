"""The CSI autoencoder for MU-MIMO stations with one antenna: the 4x1 steering vector V.

Input: V (4 x 1, phase-normalised) on 8 adjacent tones of the Ng = 4 feedback grid, [Re, Im] of
every entry -> 64 reals, so the shared encoder is the flagship's 64 -> 40 -> 16 network (3,256
coefficients; 27,456 bits as ``ptq-t8``) and the AP's decoder the 16 -> 128 -> 128 -> 64 one,
its output normalised per tone. 64 feedback tones = 8 groups per 20 MHz sounding; the latent
(16 per group, tanh) is quantized to ``b_lat`` bits: 128 * b_lat bits of V per sounding, sent
with the standard's average SNR and per-tone delta SNR on the Ng = 4 or Ng = 16 tones
(:func:`ae_report_bits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..format.errors import SpecError
from .autoencoder import LATENT, quantize_latent
from .autoencoder import train as su_train
from .beamforming import phase_normalise
from .mu_feedback import AVG_SNR_BITS, DELTA_SNR_BITS
from .ofdm import feedback_tones

TONES_PER_GROUP = 8
NT = 4
IN_DIM = TONES_PER_GROUP * NT * 2  # 64
# 1 - SGCS; log10(1 - SGCS + 1e-5) of the group (the residual interference in dB); or that log
# per tone, averaged ("tone_log": a badly coded tone costs as much as its interference)
LOSSES = ("sgcs", "log", "tone_log")


def ae_report_bits(b_lat: int, ng: int = 4, snr_ng: int = 4) -> int:
    """One station's AE report per 20 MHz sounding: 16 latents x ``b_lat`` bits per 8-tone group
    of the Ng = ``ng`` grid, plus the standard's 8-bit average SNR and 4-bit delta SNR on every
    tone of the Ng = ``snr_ng`` grid (ZF precoding uses directions only, so the SNR grid only
    affects MMSE)."""
    if snr_ng not in (4, 16):
        raise SpecError(f"snr_ng must be 4 or 16, got {snr_ng}")
    latents = feedback_tones(ng).size // TONES_PER_GROUP * LATENT * b_lat
    return latents + AVG_SNR_BITS + DELTA_SNR_BITS * feedback_tones(snr_ng).size


def align_phases(g: np.ndarray) -> np.ndarray:
    """Group of unit vectors (B, 8, 4): the first keeps its phase (802.11: last entry real >= 0),
    each next one is turned by the phase that makes its inner product with the previous one
    real and >= 0. SGCS ignores these phases; the aligned group varies smoothly over tones."""
    out = np.array(g, dtype=np.complex128, copy=True)
    for k in range(1, out.shape[1]):
        inner = np.sum(out[:, k - 1].conj() * out[:, k], axis=-1, keepdims=True)
        out[:, k] *= np.where(np.abs(inner) > 0, inner.conj() / np.maximum(np.abs(inner), 1e-300), 1.0)
    return out


def to_features(v: np.ndarray) -> np.ndarray:
    """(n, 64 tones, 4, 1) complex V -> (n * 8, 64) float32 encoder inputs, each group of 8
    tones phase-aligned (:func:`align_phases`)."""
    n, k = v.shape[:2]
    if k % TONES_PER_GROUP or v.shape[2:] != (NT, 1):
        raise SpecError(f"expected V of shape (n, 8*g, {NT}, 1), got {v.shape}")
    g = align_phases(v.reshape(n * k // TONES_PER_GROUP, TONES_PER_GROUP, NT)).reshape(
        -1, TONES_PER_GROUP * NT
    )
    return np.concatenate([g.real, g.imag], axis=1).astype(np.float32)


def features_to_v(x: torch.Tensor) -> torch.Tensor:
    """Encoder inputs or decoder outputs (B, 64) -> complex (B, 8, 4), not normalised."""
    half = IN_DIM // 2
    return torch.complex(x[:, :half], x[:, half:]).reshape(-1, TONES_PER_GROUP, NT)


def reconstruct(decoder: nn.Module, z: torch.Tensor, b_lat: int | None, ste: bool = False) -> torch.Tensor:
    """AP side: latent -> unit-norm V-hat per tone (B, 8, 4)."""
    if b_lat is not None:
        z = quantize_latent(z, b_lat, ste=ste)
    a = features_to_v(decoder(z))
    return a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(1e-9)


def sgcs_torch(v: torch.Tensor, v_hat: torch.Tensor) -> torch.Tensor:
    """Per-group SGCS (B,) averaged over the 8 tones (unit-norm rows)."""
    return ((v.conj() * v_hat).sum(-1).abs() ** 2).mean(-1)


@dataclass(frozen=True)
class MuTrainConfig:
    """``n_channels`` drops of ``n_users`` model-D stations (x 8 groups each), sounding SNR
    uniform in ``snr_db`` (dB), Adam at ``lr`` with cosine decay, ``epochs`` in batches.
    ``weight_noise_bits``: also train the encoder under uniform weight noise one per-tensor step
    of that many bits wide (max|w| / (2^(b-1) - 1), resampled every batch), the loss a mix of
    ``1 - weight_noise_mix`` clean and ``weight_noise_mix`` noisy (None: clean only)."""

    n_channels: int = 1500
    n_users: int = 2
    epochs: int = 25
    batch: int = 256
    lr: float = 2e-3
    b_lat: int = 4
    snr_db: tuple[float, float] = (15.0, 45.0)
    loss: str = "sgcs"
    weight_noise_bits: int | None = None
    weight_noise_mix: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise SpecError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.weight_noise_bits is not None and not 2 <= self.weight_noise_bits <= 16:
            raise SpecError(f"weight_noise_bits must be None or 2..16, got {self.weight_noise_bits}")
        if not 0.0 <= self.weight_noise_mix <= 1.0:
            raise SpecError(f"weight_noise_mix must be in [0, 1], got {self.weight_noise_mix}")


def make_loss(loss: str, b_lat: int) -> Callable[[nn.Module, nn.Module, torch.Tensor], torch.Tensor]:
    """The batch loss ``f(encoder, decoder, xb)`` named ``loss`` (one of LOSSES), the latent
    quantized to ``b_lat`` bits with the straight-through estimator."""
    if loss not in LOSSES:
        raise SpecError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")

    def batch_loss(enc: nn.Module, dec: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        v, v_hat = features_to_v(xb), reconstruct(dec, enc(xb), b_lat, ste=True)
        if loss == "tone_log":
            err = 1 - (v.conj() * v_hat).sum(-1).abs() ** 2  # (B, 8) per tone
        else:
            err = 1 - sgcs_torch(v, v_hat)
        return err.mean() if loss == "sgcs" else torch.log10(err.clamp_min(0) + 1e-5).mean()

    return batch_loss


def train(
    x: np.ndarray, cfg: MuTrainConfig, *, progress: Callable[[int, float], None] | None = None
) -> tuple[nn.Module, nn.Module, list[float]]:
    """Train encoder and decoder on features ``x`` (N, 64) with ``cfg.loss`` (latent quantized
    with the straight-through estimator) by the flagship's loop. Returns (encoder, decoder, mean
    loss per epoch), both in eval mode."""

    task = make_loss(cfg.loss, cfg.b_lat)
    if cfg.weight_noise_bits is None:
        batch_loss = task
    else:
        levels, mix = 2 ** (cfg.weight_noise_bits - 1) - 1, cfg.weight_noise_mix

        def batch_loss(enc: nn.Module, dec: nn.Module, xb: torch.Tensor) -> torch.Tensor:
            p = {
                n: w + (torch.rand_like(w) - 0.5) * (w.detach().abs().max() / levels)
                if n.endswith("weight") else w
                for n, w in enc.named_parameters()
            }
            noisy = task(lambda z: functional_call(enc, p, (z,)), dec, xb)
            return (1 - mix) * task(enc, dec, xb) + mix * noisy

    enc, dec, history = su_train(x, cfg, progress=progress, batch_loss=batch_loss)
    enc.eval()
    dec.eval()
    return enc, dec, history


@torch.no_grad()
def feedback(encoder: nn.Module, decoder: nn.Module, v: np.ndarray, b_lat: int) -> np.ndarray:
    """STA encodes, latent quantized, AP decodes: V (n, 64, U, 4, 1) -> V-hat (same shape),
    each tone's vector phase-normalised (last entry real >= 0) and of unit norm."""
    n, k, u = v.shape[:3]
    vv = np.moveaxis(v, 2, 1).reshape(n * u, k, NT, 1)
    out = reconstruct(decoder, encoder(torch.from_numpy(to_features(vv))), b_lat).numpy()
    out = phase_normalise(out.astype(np.complex128).reshape(n, u, k, NT, 1))
    return np.moveaxis(out, 1, 2)


@torch.no_grad()
def latent_error(reference: nn.Module, shared: nn.Module, x: np.ndarray, b_lat: int) -> dict:
    """How far ``shared``'s latents move from ``reference``'s on encoder inputs ``x`` (N, 64):
    {"rms": rms difference of the latents before quantization (tanh units; the ``b_lat``-bit
    latent quantizer's own error is 2^-b_lat / sqrt(3) rms), "flip_rate": share of latents whose
    ``b_lat``-bit code differs}."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    z_ref, z = reference(xt), shared(xt)
    flips = quantize_latent(z, b_lat) != quantize_latent(z_ref, b_lat)
    return {"rms": float((z - z_ref).pow(2).mean().sqrt()), "flip_rate": float(flips.float().mean())}

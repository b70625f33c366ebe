"""BCGD, blended coarse gradient descent (Yin et al. 2019; algorithms.md §9): an optimizer wrapper.

Each step first blends every fake-quantized latent weight toward its own quantization and then
lets the wrapped optimizer apply the coarse (STE) gradient, which was computed at Q(w_f):

    w_f <- (1 - rho) * w_f + rho * Q(w_f) - lr * grad f(Q(w_f))

rho = 0 is plain STE training (BinaryConnect style); the reference code uses rho = 1e-5, and may
grow it per epoch as rho <- min(rho_rate * rho, rho_max) (:meth:`BCGD.epoch_end`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..format.errors import SpecError
from .prepare import latent_weights, quantizers


class BCGD:
    """Wrap ``optimizer`` (built on a prepared model's parameters) with BCGD blending."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        rho: float = 1e-5,
        rho_rate: float = 1.0,
        rho_max: float = 0.01,
    ):
        if not 0.0 <= rho <= 1.0 or not 0.0 <= rho_max <= 1.0 or rho_rate < 1.0:
            raise SpecError("BCGD needs 0 <= rho, rho_max <= 1 and rho_rate >= 1")
        self.optimizer = optimizer
        self.rho, self.rho_rate, self.rho_max = float(rho), float(rho_rate), float(rho_max)
        fqs, latents = quantizers(model), latent_weights(model)
        self.pairs = [(fqs[n], latents[n]) for n in fqs if latents[n].requires_grad]
        if not self.pairs:
            raise SpecError("BCGD: the model has no trainable fake-quantized weight")

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def blend(self) -> None:
        """w_f <- (1 - rho) w_f + rho Q(w_f) for every quantized latent weight."""
        if self.rho == 0.0:
            return
        for fq, w in self.pairs:
            q = fq(w)
            w.mul_(1.0 - self.rho).add_(q, alpha=self.rho)

    def step(self, closure=None):
        """Blend, then take the wrapped optimizer's step with the gradients already computed."""
        self.blend()
        return self.optimizer.step(closure)

    def epoch_end(self) -> None:
        """rho <- min(rho_rate * rho, rho_max)."""
        self.rho = min(self.rho * self.rho_rate, self.rho_max)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "rho": self.rho}

    def load_state_dict(self, d: dict) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        self.rho = float(d["rho"])

"""Softmax bias correction (Pandey et al. 2023) for quantized attention probabilities.

The softmax output p in [0, 1] is quantized unsigned with ``s = 1 / (2^b - 1)``, ``z = 0``:
``Q(p) = s * rint(p / s)``. Over long, flat rows most ``p < s / 2`` round to 0, so a row of
``Q(p)`` no longer sums to 1 and the attention output ``sum_j Q(p_j) v_j`` is biased. The
offline correction estimates ``beta = E[p - Q(p)]`` on calibration data and deploys
``Q(p) + beta`` on the attended (unmasked) positions: a constant offset absorbed into the
quantizer's zero point (``z' = -beta / s``), no extra compute. ``beta`` is kept per head
(``granularity="head"``) or per head and query position (``"position"``, which follows the row
length of a causal mask).

:class:`QuantSoftmax` is the module an attention layer calls on its probabilities; modes
``"float"``, ``"calibrate"`` (float output, statistics gathered) and ``"quant"``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..format.errors import SpecError

GRANULARITIES = ("head", "position")


def quantize_probs(p: torch.Tensor, bits: int) -> torch.Tensor:
    """``s * rint(p / s)`` with ``s = 1 / (2^bits - 1)`` (float32, codes 0..2^bits - 1)."""
    if not 1 <= bits <= 16:
        raise SpecError(f"softmax bits must be in 1..16, got {bits}")
    s = torch.tensor(1.0 / (2**bits - 1), dtype=torch.float32)
    return torch.round(torch.clamp(p / s, 0, 2**bits - 1)) * s


class QuantSoftmax(nn.Module):
    """Quantizer for attention probabilities ``p`` of shape (B, H, T_q, T_k); ``mask`` (T_q, T_k)
    or broadcastable, True where attended. ``beta`` (a buffer) has shape (H, 1, 1) per head or
    (H, T_q, 1) per position; zeros until calibrated."""

    def __init__(self, heads: int, max_len: int, bits: int = 8, granularity: str = "head"):
        super().__init__()
        if granularity not in GRANULARITIES:
            raise SpecError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
        self.bits, self.granularity, self.mode = bits, granularity, "float"
        rows = 1 if granularity == "head" else max_len
        self.register_buffer("beta", torch.zeros(heads, rows, 1))
        self._sum = torch.zeros(heads, rows, 1, dtype=torch.float64)
        self._n = torch.zeros(heads, rows, 1, dtype=torch.float64)

    def start_calibration(self) -> None:
        self.mode = "calibrate"
        self._sum.zero_()
        self._n.zero_()

    def finish_calibration(self) -> torch.Tensor:
        """Set ``beta`` from the gathered statistics and switch to ``"quant"``; returns beta."""
        if not bool((self._n > 0).any()):
            raise SpecError("softmax bias correction saw no calibration data")
        self.beta.copy_((self._sum / self._n.clamp(min=1)).float())
        self.mode = "quant"
        return self.beta

    def forward(self, p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "float":
            return p
        q = quantize_probs(p, self.bits)
        m = mask.to(p.dtype).expand_as(p)
        if self.mode == "calibrate":
            d = ((p - q) * m).double()
            t = p.shape[2]
            if self.granularity == "head":
                self._sum += d.sum(dim=(0, 2, 3)).view(-1, 1, 1)
                self._n += m.double().sum(dim=(0, 2, 3)).view(-1, 1, 1)
            else:
                self._sum[:, :t] += d.sum(dim=(0, 3)).unsqueeze(-1)
                self._n[:, :t] += m.double().sum(dim=(0, 3)).unsqueeze(-1)
            return p
        beta = self.beta[:, : p.shape[2]] if self.granularity == "position" else self.beta
        return q + beta * m

"""Output-aware 8-bit rounding of the shared encoder: GPTQ on the float encoder's latents.

The seed's ``ptq-t8`` rounds every weight to its nearest step on the per-tensor grid
(max|w| / 127); the rounding errors add up in the latents, and the AP's latent quantizer turns a
small latent shift into a flipped code near its cell edges. ``gptq_encoder`` keeps the same grid
(the same 27,456-bit layout: 8-bit per-tensor codes, one fp32 scale per weight, fp32 biases) but
chooses the codes layer by layer (64 -> 40, then 40 -> 16 on the already-rounded first layer's
outputs) with ``nnshare.ptq.gptq``: the float layer's output on the float inputs is the target
(``float_target``), and the mean output error goes into the fp32 bias (``bias_correct``).
Calibration: training soundings. Cost: about 0.1 s CPU.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..format.errors import SpecError
from ..plan import uniform
from ..ptq.gptq import GPTQConfig, gptq
from ..ptq.weights import model_tensors

CONFIG = GPTQConfig(float_target=True, bias_correct=True)


def gptq_encoder(
    encoder: nn.Module, x: np.ndarray, bits: int = 8, *, n_calib: int = 16384, batch: int = 4096
) -> dict:
    """GPTQ-rounded ``bits``-bit per-tensor weights of a copy of ``encoder``, calibrated on the
    first ``n_calib`` rows of ``x`` (N, 64) encoder inputs. Returns {name: QuantizedTensor |
    FloatTensor} in the encoder's state-dict order, ready for ``sharing.share_tensors``."""
    if x.ndim != 2 or x.shape[0] < 1:
        raise SpecError(f"calibration inputs must be (N >= 1, features), got {x.shape}")
    if n_calib < 1 or batch < 1:
        raise SpecError("n_calib and batch must be >= 1")
    xc = np.ascontiguousarray(x[:n_calib], dtype=np.float32)
    batches = [torch.from_numpy(xc[i : i + batch]) for i in range(0, xc.shape[0], batch)]
    model = copy.deepcopy(encoder).eval()
    q = gptq(model, uniform(bits), batches, config=CONFIG)
    return model_tensors(model, q)

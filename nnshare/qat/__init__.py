"""Quantization-aware training: fake quantization with learnable ranges, exported bit-exactly.

    >>> q = nnshare.qat.prepare(model, nnshare.uniform(3, "channel"), ranges="beta_gamma",
    ...                         freeze=["decoder"])          # decoder: frozen, kept in fp32
    >>> nnshare.qat.train.fit(q, x, y, loss_fn, epochs=5, lr=1e-3)   # or any training loop
    >>> tensors = nnshare.qat.convert(q)                     # {name: QuantizedTensor | ...}
    >>> data = nnshare.encode_tensors(tensors, mode="agreed")  # = nnshare.qat.encode(q, ...)
    >>> nnshare.decode(data, into=fresh_model)               # outputs == q's, bit for bit

Ranges: "minmax", "scale_offset", "beta_gamma", "lsq", "lsq+" (see ``parameterizations`` and
``lsq``); ``BCGD`` wraps an optimizer; ``qkd_train`` runs quantization-aware distillation.
"""

from .bcgd import BCGD
from .convert import convert, encode, qat_plan, to_float_model
from .distill import kd_loss, qkd_train
from .prepare import (
    latent_weights,
    prepare,
    quantizers,
    range_parameters,
    set_quant_enabled,
    weight_parameters,
)
from .quantizer import RANGES

__all__ = [
    "BCGD",
    "RANGES",
    "convert",
    "encode",
    "kd_loss",
    "latent_weights",
    "prepare",
    "qat_plan",
    "qkd_train",
    "quantizers",
    "range_parameters",
    "set_quant_enabled",
    "to_float_model",
    "weight_parameters",
]

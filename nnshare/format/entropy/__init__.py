"""Entropy-coded payloads of integer codes (receiver side: numpy only, + numba for speed).

Decoding (:func:`decode_codes`, :func:`decode_values`: dequantized, :func:`describe`) lives
here, in modules by job: the payload header (:mod:`.header`), contexts (:mod:`.contexts`),
distribution records (:mod:`.dists`), integer tables (:mod:`.tables`), back ends (:mod:`.rans`,
:mod:`.range_coder`), and the writer of a chosen model (:mod:`.encode`). Choosing the model is
the sender's job and lives in :mod:`nnshare.quant.entropy_model`; :func:`encode_codes`,
:func:`cost_bits` and :func:`model_costs` are re-exported from there on first use (so importing
this package, as every receiver does, loads no model-choice code).
"""

from .decode import decode_codes, decode_values, describe
from .header import MODEL_NAMES, MODELS

_SENDER = ("cost_bits", "encode_codes", "model_costs")


def __getattr__(name: str):
    if name in _SENDER:
        from ...quant import entropy_model

        return getattr(entropy_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "cost_bits",
    "decode_codes",
    "decode_values",
    "describe",
    "encode_codes",
    "model_costs",
]

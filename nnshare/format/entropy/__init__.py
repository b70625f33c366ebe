"""Entropy coding of integer codes: context models + constriction's range coder (no torch)."""

from .coder import (
    MODEL_NAMES,
    MODELS,
    cost_bits,
    decode_codes,
    describe,
    encode_codes,
    model_costs,
)

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "cost_bits",
    "decode_codes",
    "describe",
    "encode_codes",
    "model_costs",
]

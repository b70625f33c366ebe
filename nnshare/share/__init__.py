"""Encode and decode whole models; exact accounting."""

from .inspect import Inspection, TensorRow, inspect
from .model import (
    atomic_write,
    decode,
    encode,
    encode_tensors,
    layout_of,
    quantize_model,
    tensors_of,
)

__all__ = [
    "Inspection",
    "TensorRow",
    "atomic_write",
    "decode",
    "encode",
    "encode_tensors",
    "inspect",
    "layout_of",
    "quantize_model",
    "tensors_of",
]

"""Encode and decode whole models; exact accounting.

Names load on first use (PEP 562), so ``nnshare inspect`` reads a stream without importing the
sender side (quantizers, scipy, numba).
"""

from importlib import import_module

from .inspect import Inspection, TensorRow, inspect

_HOMES = {
    "atomic_write": "model",
    "decode": "model",
    "encode": "model",
    "encode_tensors": "model",
    "layout_of": "model",
    "quantize_model": "model",
    "tensors_of": "model",
}

__all__ = ["Inspection", "TensorRow", "inspect", *sorted(_HOMES)]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nnshare.share' has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value

"""nnshare: quantize a PyTorch model, encode it into a compact bit-exact stream, rebuild it anywhere.

>>> data = nnshare.encode(model, "ptq-t8", mode="agreed")
>>> nnshare.decode(data, into=fresh_model)

Names are imported on first use, so ``import nnshare.format`` (the numpy-only receiver) and the
command line's ``inspect`` / ``decode`` never pay for torch.
"""

from __future__ import annotations

import importlib

from .errors import FormatError, NNShareError, NNShareWarning, SpecError  # noqa: F401

__version__ = "0.1.0"

_LAZY = {
    "FloatTensor": "nnshare.format.spec",
    "QuantizedTensor": "nnshare.format.spec",
    "QuantSpec": "nnshare.quant.spec",
    "RawTensor": "nnshare.format.spec",
    "Budget": "nnshare.mixed",
    "allocate": "nnshare.mixed",
    "compress": "nnshare.mixed",
    "PRESETS": "nnshare.plan",
    "Plan": "nnshare.plan",
    "Rule": "nnshare.plan",
    "preset": "nnshare.plan",
    "uniform": "nnshare.plan",
    "quantize": "nnshare.quant",
    "decode": "nnshare.share",
    "encode": "nnshare.share",
    "encode_tensors": "nnshare.share",
    "inspect": "nnshare.share",
    "layout_of": "nnshare.share",
    "quantize_model": "nnshare.share",
    "model_state": "nnshare.state",
    "ModelState": "nnshare.state",
}

__all__ = sorted([*_LAZY, "FormatError", "NNShareError", "NNShareWarning", "SpecError"])


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'nnshare' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__

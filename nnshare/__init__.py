"""nnshare: quantize a PyTorch model, encode it into a compact bit-exact stream, rebuild it anywhere.

>>> data = nnshare.encode(model, "ptq-t8", mode="agreed")
>>> nnshare.decode(data, into=fresh_model)
"""

from .format.errors import FormatError, NNShareError, SpecError
from .format.spec import FloatTensor, QuantizedTensor, RawTensor
from .mixed import Budget, allocate
from .plan import PRESETS, Plan, Rule, preset, uniform
from .quant import quantize
from .quant.spec import QuantSpec
from .share import decode, encode, encode_tensors, inspect, layout_of, quantize_model

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "Budget",
    "allocate",
    "FloatTensor",
    "FormatError",
    "NNShareError",
    "Plan",
    "QuantSpec",
    "QuantizedTensor",
    "RawTensor",
    "Rule",
    "SpecError",
    "decode",
    "encode",
    "encode_tensors",
    "inspect",
    "layout_of",
    "preset",
    "quantize",
    "quantize_model",
    "uniform",
]

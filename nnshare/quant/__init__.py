"""Tensor quantizers and range estimators."""

from ..format.errors import SpecError
from ..format.spec import FloatTensor, QuantizedTensor, QuantSpec, scale_shape
from .affine import fake_quantize, params_from_range, quantize

__all__ = [
    "FloatTensor",
    "QuantSpec",
    "QuantizedTensor",
    "SpecError",
    "fake_quantize",
    "params_from_range",
    "quantize",
    "scale_shape",
]

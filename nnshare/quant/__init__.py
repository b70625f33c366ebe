"""Sender-side quantizers, one per scheme, each registered with its typed config.

``quantize(x, config)`` dispatches on the config's scheme (:mod:`.registry`): a
:class:`QuantSpec` (affine) or a :class:`CodebookConfig`.
"""

from ..format.errors import SpecError
from ..format.spec import FloatTensor, QuantizedTensor, scale_shape
from . import affine, codebook
from .affine import fake_quantize, params_from_range
from .codebook import CodebookConfig
from .registry import config_from_dict, quantize, register_quantizer, sender_schemes
from .spec import AffineConfig, QuantSpec

register_quantizer("affine", QuantSpec, affine.quantize)
register_quantizer("codebook", CodebookConfig, codebook.quantize)

__all__ = [
    "AffineConfig",
    "CodebookConfig",
    "FloatTensor",
    "QuantSpec",
    "QuantizedTensor",
    "SpecError",
    "config_from_dict",
    "fake_quantize",
    "params_from_range",
    "quantize",
    "register_quantizer",
    "scale_shape",
    "sender_schemes",
]

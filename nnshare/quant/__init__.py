"""Sender-side quantizers, one per scheme, each registered with its typed config.

``quantize(x, config)`` dispatches on the config's scheme (:mod:`.registry`): a
:class:`QuantSpec` (affine), a :class:`CodebookConfig` or a :class:`RotatedConfig`.
"""

from ..format.errors import SpecError
from ..format.spec import FloatTensor, QuantizedTensor, scale_shape
from . import affine, codebook, lloyd, lplr, minifloat, multipoint, rotated, sigma_delta
from .affine import fake_quantize, params_from_range
from .codebook import CodebookConfig
from .lloyd import ChannelCodebookConfig
from .lplr import LPLRConfig
from .minifloat import MinifloatConfig
from .multipoint import MultipointConfig
from .registry import config_from_dict, quantize, register_quantizer, sender_schemes
from .rotated import RotatedConfig
from .sigma_delta import SigmaDeltaConfig
from .spec import AffineConfig, QuantSpec

register_quantizer("affine", QuantSpec, affine.quantize)
register_quantizer("codebook", CodebookConfig, codebook.quantize)
register_quantizer("rotated", RotatedConfig, rotated.quantize)
register_quantizer("minifloat", MinifloatConfig, minifloat.quantize)
register_quantizer("channel_codebook", ChannelCodebookConfig, lloyd.quantize)
register_quantizer("multipoint", MultipointConfig, multipoint.quantize)
register_quantizer("sigma_delta", SigmaDeltaConfig, sigma_delta.quantize)
register_quantizer("lplr", LPLRConfig, lplr.quantize)

__all__ = [
    "AffineConfig",
    "ChannelCodebookConfig",
    "CodebookConfig",
    "LPLRConfig",
    "MinifloatConfig",
    "MultipointConfig",
    "FloatTensor",
    "QuantSpec",
    "QuantizedTensor",
    "RotatedConfig",
    "SigmaDeltaConfig",
    "SpecError",
    "config_from_dict",
    "fake_quantize",
    "params_from_range",
    "quantize",
    "register_quantizer",
    "scale_shape",
    "sender_schemes",
]

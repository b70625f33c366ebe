"""Receiver-side quantization schemes: one module per scheme's record body, and the registry.

A new scheme is a subclass of :class:`Scheme` in its own module here plus one line below that
registers an instance (docs/architecture.md, "Add a scheme in five steps").
"""

from .affine import AffineScheme, AffineWire
from .base import Coding, Pending, Scheme
from .channel_codebook import ChannelCodebookScheme, ChannelCodebookWire
from .codebook import CodebookScheme, CodebookWire
from .lplr import LPLRScheme, LPLRWire
from .minifloat import MinifloatScheme, MinifloatWire
from .multipoint import MultipointScheme, MultipointWire
from .registry import all_schemes, get_scheme, register_scheme, scheme_by_id, scheme_of
from .rotated import RotatedScheme
from .sigma_delta import SigmaDeltaScheme, SigmaDeltaWire

register_scheme(AffineScheme())
register_scheme(CodebookScheme())
register_scheme(RotatedScheme())
register_scheme(MinifloatScheme())
register_scheme(ChannelCodebookScheme())
register_scheme(MultipointScheme())
register_scheme(SigmaDeltaScheme())
register_scheme(LPLRScheme())

__all__ = [
    "AffineScheme",
    "AffineWire",
    "ChannelCodebookScheme",
    "ChannelCodebookWire",
    "CodebookScheme",
    "CodebookWire",
    "LPLRScheme",
    "LPLRWire",
    "MinifloatScheme",
    "MinifloatWire",
    "MultipointScheme",
    "MultipointWire",
    "Coding",
    "Pending",
    "RotatedScheme",
    "Scheme",
    "SigmaDeltaScheme",
    "SigmaDeltaWire",
    "all_schemes",
    "get_scheme",
    "register_scheme",
    "scheme_by_id",
    "scheme_of",
]
